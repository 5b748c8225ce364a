// Package helm_test renders the chart with the real helm binary.
package helm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/client-go/kubernetes/fake"
	psaapi "k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/halt"
	"github.com/drillbot-io/drillbot/internal/rbac"
	"github.com/drillbot-io/drillbot/internal/scenarios"
)

// tool is the binary make test builds and names in env: the test fails
// without it under make test (DRILLBOT_REQUIRE_CLUSTER) and skips elsewhere.
func tool(t *testing.T, env, name string) string {
	t.Helper()
	bin := os.Getenv(env)
	if bin == "" {
		if os.Getenv("DRILLBOT_REQUIRE_CLUSTER") != "" {
			t.Fatalf("%s is not set (make test builds %s)", env, name)
		}
		t.Skipf("no %s binary (run through make test)", name)
	}
	return bin
}

func helm(t *testing.T, args ...string) []byte {
	t.Helper()
	bin := tool(t, "DRILLBOT_HELM", "helm")
	var out, errOut bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm %v: %v\n%s", args, err, errOut.String())
	}
	return out.Bytes()
}

func TestChartLints(t *testing.T) {
	helm(t, "lint", "--strict", "drillbot")
}

func TestDashboardConfigMap(t *testing.T) {
	out := helm(t, "template", "dr", "drillbot", "--namespace", "monitoring", "--show-only", "templates/grafana-dashboard.yaml")
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict(out, &cm); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if cm.Labels["grafana_dashboard"] != "1" || cm.Labels["app.kubernetes.io/name"] != "drillbot" || cm.Namespace != "monitoring" {
		t.Errorf("labels %v namespace %q", cm.Labels, cm.Namespace)
	}
	want, err := os.ReadFile("drillbot/dashboards/drillbot.json")
	if err != nil {
		t.Fatal(err)
	}
	if got := cm.Data["drillbot.json"]; got != string(bytes.TrimRight(want, "\n")) {
		t.Errorf("the ConfigMap does not hold the dashboard file as it is (%d bytes, want %d)", len(got), len(want))
	}
	if off := helm(t, "template", "dr", "drillbot", "--set", "grafanaDashboard.enabled=false"); bytes.Contains(off, []byte("dr-drillbot-dashboard")) {
		t.Error("disabled dashboard still rendered")
	}
}

// allDrills are --set flags enabling every catalog drill.
func allDrills(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, d := range catalog(t) {
		out = append(out, "--set", "drills."+d.Name+".enabled=true")
	}
	return out
}

func catalog(t *testing.T) []drill.Definition {
	t.Helper()
	defs, err := drill.LoadPaths([]string{"../../drills"}, scenarios.Registry(scenarios.Deps{}))
	if err != nil {
		t.Fatal(err)
	}
	return defs
}

// render renders the chart and decodes every document by kind.
func render(t *testing.T, args ...string) map[string][]map[string]any {
	t.Helper()
	out := helm(t, append([]string{"template", "dr", "drillbot", "--namespace", "drillbot-system"}, args...)...)
	docs := map[string][]map[string]any{}
	for _, doc := range strings.Split(string(out), "\n---\n") {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatalf("%v\n%s", err, doc)
		}
		if kind, _ := m["kind"].(string); kind != "" {
			docs[kind] = append(docs[kind], m)
		}
	}
	return docs
}

func decode[T any](t *testing.T, m map[string]any) T {
	t.Helper()
	var out T
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestChartLintsWithEveryDrill(t *testing.T) {
	helm(t, append([]string{"lint", "--strict", "drillbot"}, allDrills(t)...)...)
}

// TestPodSecurityRestricted evaluates the rendered pod with the Pod Security
// admission library the API server itself uses, at "restricted".
func TestPodSecurityRestricted(t *testing.T) {
	docs := render(t)
	if len(docs["Deployment"]) != 1 {
		t.Fatalf("%d Deployments", len(docs["Deployment"]))
	}
	dep := decode[appsv1.Deployment](t, docs["Deployment"][0])
	eval, err := psapolicy.NewEvaluator(psapolicy.DefaultChecks())
	if err != nil {
		t.Fatal(err)
	}
	res := eval.EvaluatePod(psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}, &dep.Spec.Template.ObjectMeta, &dep.Spec.Template.Spec)
	if agg := psapolicy.AggregateCheckResults(res); !agg.Allowed {
		t.Errorf("pod violates restricted: %s", agg.ForbiddenDetail())
	}
	c := dep.Spec.Template.Spec.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("root filesystem is writable")
	}
	if !slices.Contains(c.Args, "--leader-elect") || *dep.Spec.Replicas != 2 {
		t.Errorf("args %v replicas %d: replicas without leader election would all run drills", c.Args, *dep.Spec.Replicas)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Error("no readiness probe on /readyz")
	}
	if out, err := helmErr("template", "dr", "drillbot", "--set", "replicas=5"); err == nil || !strings.Contains(out, "replicas") {
		t.Errorf("replicas=5 accepted by the schema: %v %s", err, out)
	}
}

func helmErr(args ...string) (string, error) {
	out, err := exec.Command(os.Getenv("DRILLBOT_HELM"), args...).CombinedOutput()
	return string(out), err
}

// TestRBACLeastPrivilege renders the chart with every drill enabled and
// checks the rules: no wildcard, no privilege-granting verb, no write to
// RBAC, namespaces deleted only by name, no Secret listed or read but by
// name, NetworkPolicies deleted only by name.
func TestRBACLeastPrivilege(t *testing.T) {
	docs := render(t, allDrills(t)...)
	var rules []rbacv1.PolicyRule
	for _, m := range docs["ClusterRole"] {
		rules = append(rules, decode[rbacv1.ClusterRole](t, m).Rules...)
	}
	for _, m := range docs["Role"] {
		rules = append(rules, decode[rbacv1.Role](t, m).Rules...)
	}
	if len(rules) < 10 {
		t.Fatalf("only %d rules", len(rules))
	}
	if err := rbac.Check(rules); err != nil {
		t.Error(err)
	}
	for _, r := range rules {
		for _, res := range r.Resources {
			if res == "namespaces" && slices.Contains(r.Verbs, "delete") && len(r.ResourceNames) == 0 {
				t.Errorf("namespaces may be deleted by any name: %v", r)
			}
			if res == "secrets" && (slices.Contains(r.Verbs, "list") || slices.Contains(r.Verbs, "watch")) {
				t.Errorf("secrets listable: %v", r)
			}
			if res == "secrets" && slices.Contains(r.Verbs, "get") && len(r.ResourceNames) == 0 {
				t.Errorf("any Secret readable by name: %v", r)
			}
			if res == "networkpolicies" && slices.Contains(r.Verbs, "delete") && len(r.ResourceNames) == 0 {
				t.Errorf("NetworkPolicies deletable by any name: %v", r)
			}
			if (res == "pods" || res == "configmaps") && slices.Contains(r.Verbs, "delete") && slices.Contains(r.APIGroups, "") {
				// Allowed only in a Role (namespaced), checked below.
				continue
			}
		}
	}
	for _, m := range docs["ClusterRole"] {
		for _, r := range decode[rbacv1.ClusterRole](t, m).Rules {
			for _, v := range r.Verbs {
				// RBAC cannot limit create by name; failover-restore creates
				// its copy's namespace (labelled with the run, the only one
				// its undo deletes, by name).
				if v == "create" && slices.Equal(r.Resources, []string{"namespaces"}) {
					continue
				}
				if (v == "create" || v == "update" || v == "patch" || v == "delete") && len(r.ResourceNames) == 0 {
					t.Errorf("ClusterRole %s: cluster-wide %s on %v", m["metadata"].(map[string]any)["name"], v, r.Resources)
				}
			}
		}
	}
	// Disabled drills grant nothing.
	base := render(t, "--set", "drills.unsigned-image.enabled=true")
	for _, m := range base["Role"] {
		if ns := m["metadata"].(map[string]any)["namespace"]; ns != "drillbot-system" && ns != "drill-demo" {
			t.Errorf("a disabled drill's Role in %s", ns)
		}
	}
}

// TestRBACTemplateIsCurrent: the chart's RBAC is what the scenario code
// declares (regenerate with make chart).
func TestRBACTemplateIsCurrent(t *testing.T) {
	want, err := rbac.Helm(catalog(t), scenarios.Registry(scenarios.Deps{}))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("drillbot/templates/rbac.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("drillbot/templates/rbac.yaml is stale: run make chart")
	}
}

func TestChartCatalogAndCRD(t *testing.T) {
	values, err := os.ReadFile("drillbot/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range catalog(t) {
		if !bytes.Contains(values, []byte("\n  "+d.Name+":\n    enabled: ")) {
			t.Errorf("values.yaml has no drills.%s.enabled", d.Name)
		}
	}
	crd, err := os.ReadFile("drillbot/crds/drillbot.io_drillruns.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(crd, v1alpha1.DrillRunCRD) {
		t.Error("the chart's CRD differs from the one drillbot embeds (make chart)")
	}
	docs := render(t, "--set", "drills.kill-kyverno.enabled=true", "--set-string", "customDrills.mine=kind: Drill")
	cm := decode[corev1.ConfigMap](t, docs["ConfigMap"][0])
	var keys []string
	for k := range cm.Data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if strings.Join(keys, ",") != "custom-mine.yaml,kill-kyverno.yaml,unsigned-image.yaml" {
		t.Errorf("drills ConfigMap holds %v", keys)
	}
	if out, err := helmErr("template", "dr", "drillbot", "--set", "drills.unsigned-image.enabled=false"); err == nil || !strings.Contains(out, "no drill enabled") {
		t.Errorf("a chart with no drill rendered: %v", err)
	}
}

func TestPrometheusRule(t *testing.T) {
	docs := render(t, "--set", "metrics.prometheusRule.enabled=true", "--set", "metrics.serviceMonitor.enabled=true")
	if len(docs["ServiceMonitor"]) != 1 || len(docs["PrometheusRule"]) != 1 {
		t.Fatalf("ServiceMonitor %d PrometheusRule %d", len(docs["ServiceMonitor"]), len(docs["PrometheusRule"]))
	}
	out, _ := json.Marshal(docs["PrometheusRule"][0])
	for _, alert := range []string{"DrillbotDrillFailed", "DrillbotRTOOverTarget", "DrillbotFaultPastDeadline", "DrillbotNoSuccessfulDrill", "DrillbotNeverSucceeded", "DrillbotNotificationFailed"} {
		if !bytes.Contains(out, []byte(`"alert":"`+alert+`"`)) {
			t.Errorf("no alert %s", alert)
		}
	}
	if !bytes.Contains(out, []byte("35 * 86400")) {
		t.Error("no-success window is not 35 days")
	}
	sm, _ := json.Marshal(docs["ServiceMonitor"][0])
	if bytes.Contains(sm, []byte("relabelings")) {
		t.Errorf("a cluster label without clusterLabel: %s", sm)
	}
	docs = render(t, "--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.serviceMonitor.clusterLabel=prod-eu")
	sm, _ = json.Marshal(docs["ServiceMonitor"][0])
	if !bytes.Contains(sm, []byte(`"relabelings":[{"replacement":"prod-eu","targetLabel":"cluster"}]`)) {
		t.Errorf("clusterLabel not a relabeling: %s", sm)
	}
}

// The chart as an HA workload: a PodDisruptionBudget when there is a
// standby, replicas kept apart (soft by default), ephemeral-storage
// requests, and drillbot's own NetworkPolicy on demand.
func TestChartHighAvailability(t *testing.T) {
	cases := []struct {
		name     string
		set      []string
		pdb      bool
		affinity string // "preferred", "required" or ""
	}{
		{"defaults", nil, true, "preferred"},
		{"one replica has no budget", []string{"replicas=1"}, false, "preferred"},
		{"hard anti-affinity", []string{"podAntiAffinity=hard"}, true, "required"},
		{"no anti-affinity", []string{"podAntiAffinity=none", "podDisruptionBudget.enabled=false"}, false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"template", "dr", "drillbot", "--namespace", "drillbot-system"}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			out := string(helm(t, args...))
			if got := strings.Contains(out, "kind: PodDisruptionBudget"); got != tc.pdb {
				t.Errorf("PodDisruptionBudget rendered: %v, want %v", got, tc.pdb)
			}
			var dep appsv1.Deployment
			for _, doc := range strings.Split(out, "\n---\n") {
				if strings.Contains(doc, "kind: Deployment") {
					if err := yaml.UnmarshalStrict([]byte(doc[strings.Index(doc, "apiVersion:"):]), &dep); err != nil {
						t.Fatal(err)
					}
				}
			}
			aa := dep.Spec.Template.Spec.Affinity
			got := ""
			switch {
			case aa == nil || aa.PodAntiAffinity == nil:
			case len(aa.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) > 0:
				got = "required"
			case len(aa.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) > 0:
				got = "preferred"
			}
			if got != tc.affinity {
				t.Errorf("pod anti-affinity %q, want %q", got, tc.affinity)
			}
			res := dep.Spec.Template.Spec.Containers[0].Resources
			if res.Requests.StorageEphemeral().IsZero() || res.Limits.StorageEphemeral().IsZero() {
				t.Errorf("no ephemeral-storage request and limit: %v", res)
			}
		})
	}
	t.Run("network policy needs the API server's addresses", func(t *testing.T) {
		if out, err := helmErr("template", "dr", "drillbot", "--set", "networkPolicy.enabled=true"); err == nil || !strings.Contains(out, "networkPolicy.egress.apiServer.cidrs is required") {
			t.Errorf("want the missing cidrs named, got %v: %s", err, out)
		}
		out := string(helm(t, "template", "dr", "drillbot", "--set", "networkPolicy.enabled=true", "--set", "networkPolicy.egress.apiServer.cidrs={10.0.0.1/32}"))
		for _, want := range []string{"kind: NetworkPolicy", "cidr: 10.0.0.1/32", "port: 6443", "port: metrics"} {
			if !strings.Contains(out, want) {
				t.Errorf("rendered NetworkPolicy lacks %q", want)
			}
		}
	})
}

// kubeScoreExceptions are kube-score's advice the chart does not follow,
// on purpose (also in the README), as kube-score's flags.
var kubeScoreExceptions = []string{
	// CFS throttling would stretch the timings drillbot measures; the
	// CPU request guarantees its share.
	"--ignore-container-cpu-limit",
	// A pinned tag (the chart's appVersion) with IfNotPresent: a drillbot
	// pod must restart while the registry is down, which is the kind of
	// disaster it drills.
	"--ignore-test=container-image-pull-policy",
}

// The rendered chart passes kube-score (built from the Go module proxy),
// with every advice not followed written down above.
func TestKubeScore(t *testing.T) {
	bin := tool(t, "DRILLBOT_KUBE_SCORE", "kube-score")
	out := helm(t, "template", "dr", "drillbot", "--namespace", "drillbot-system", "--set", "image.tag=1.0.0",
		"--set", "networkPolicy.enabled=true", "--set", "networkPolicy.egress.apiServer.cidrs={10.0.0.1/32}")
	score := func(ignore ...string) (string, error) {
		args := append([]string{"score", "--output-format", "ci"}, ignore...)
		cmd := exec.Command(bin, append(args, "-")...)
		cmd.Stdin = bytes.NewReader(out)
		report, err := cmd.CombinedOutput()
		var bad []string
		for _, l := range strings.Split(string(report), "\n") {
			if strings.HasPrefix(l, "[CRITICAL]") || strings.HasPrefix(l, "[WARNING]") {
				bad = append(bad, l)
			}
		}
		return strings.Join(bad, "\n"), err
	}
	all := kubeScoreExceptions
	if bad, err := score(all...); err != nil {
		t.Fatalf("kube-score: %v\n%s", err, bad)
	}
	// Each exception must still be needed: without it, kube-score fails.
	for _, test := range all {
		others := slices.DeleteFunc(slices.Clone(all), func(s string) bool { return s == test })
		if _, err := score(others...); err == nil {
			t.Errorf("exception %s is stale: kube-score passes without it", test)
		}
	}
}

// TestChartPolicy: stop conditions, freeze windows and the Alertmanager's
// URL become the cluster's policy ConfigMap (drillbot-policy, read from the
// API server by serve, run and plan), which drillbot's own loader accepts;
// the Alertmanager's URL, poll interval and HTTP config reach serve's flags.
func TestChartPolicy(t *testing.T) {
	docs := render(t, "--set", "drills.kill-kyverno.enabled=true", "--set-json", `stopWhen=["{severity=\"critical\"}"]`,
		"--set-json", `freezeWindows=[{"name":"year-end","start":"2026-12-20T00:00:00Z","end":"2027-01-04T00:00:00Z"},{"name":"fridays","schedule":"0 12 * * 5","timeZone":"Europe/Berlin","duration":"12h"}]`,
		"--set", "alertmanager.url=http://alertmanager.monitoring:9093", "--set", "alertmanager.httpConfigSecret=am-auth")
	var policy *corev1.ConfigMap
	for _, m := range docs["ConfigMap"] {
		if cm := decode[corev1.ConfigMap](t, m); cm.Name == halt.PolicyName {
			policy = &cm
		}
	}
	if policy == nil {
		t.Fatal("no policy ConfigMap")
	}
	cp, err := halt.Policies{Kube: fake.NewClientset(policy), Namespace: policy.Namespace}.Load(context.Background())
	if err != nil {
		t.Fatalf("the rendered policy is refused by drillbot: %v\n%s", err, policy.Data[halt.PolicyKey])
	}
	p := cp.Policy
	if len(p.StopWhen) != 1 || len(p.Freeze) != 2 || cp.AlertmanagerURL != "http://alertmanager.monitoring:9093" {
		t.Errorf("policy %+v", cp)
	}
	if _, _, frozen := p.Frozen(time.Date(2026, 12, 24, 0, 0, 0, 0, time.UTC)); !frozen {
		t.Error("Christmas Eve is not in the year-end freeze")
	}
	dep := decode[appsv1.Deployment](t, docs["Deployment"][0])
	args := strings.Join(dep.Spec.Template.Spec.Containers[0].Args, " ")
	for _, want := range []string{"--alertmanager-url=http://alertmanager.monitoring:9093", "--alert-poll-interval=10s",
		"--alertmanager-http-config=/etc/drillbot/alertmanager/http-config.yaml"} {
		if !strings.Contains(args, want) {
			t.Errorf("args lack %s: %s", want, args)
		}
	}
	var mounts []string
	for _, m := range dep.Spec.Template.Spec.Containers[0].VolumeMounts {
		mounts = append(mounts, m.MountPath)
	}
	if slices.Contains(mounts, "/etc/drillbot/policy") || !slices.Contains(mounts, "/etc/drillbot/alertmanager") {
		t.Errorf("mounts %v", mounts)
	}
	// Without them: no flag, no ConfigMap.
	plain := render(t, "--set", "drills.kill-kyverno.enabled=true")
	if len(plain["ConfigMap"]) != 2 { // drills and the dashboard
		t.Errorf("%d ConfigMaps without a policy", len(plain["ConfigMap"]))
	}
	if a := strings.Join(decode[appsv1.Deployment](t, plain["Deployment"][0]).Spec.Template.Spec.Containers[0].Args, " "); strings.Contains(a, "--policy") || strings.Contains(a, "--alertmanager") {
		t.Errorf("args without alerting: %s", a)
	}
	if out, err := helmErr("template", "dr", "drillbot", "--set", "drills.kill-kyverno.enabled=true", "--set", "alertmanager.url=alertmanager:9093"); err == nil {
		t.Errorf("an Alertmanager URL without scheme rendered:\n%s", out)
	}
}
