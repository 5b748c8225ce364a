package helm_test

// The in-cluster daemon on the real node: drillbot's image installed by the
// chart, two replicas electing a leader, scheduled drills against a sample
// app whose containers really run, metrics through the Service (kube-proxy),
// Slack at a server pods reach, and the leader pod killed by the kubelet in
// the middle of a fault.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/test/localcluster"
	"github.com/drillbot-io/drillbot/test/testharness"
)

// The two drills target different namespaces: drillbot runs one drill at
// a time per target namespace.
const (
	appNS         = "e2e-app"
	configNS      = "e2e-config"
	podKillDrill  = "e2e-pod-kill"
	corruptDrill  = "e2e-corrupt-config"
	appConfig     = "app-config"
	appConfigKey  = "settings"
	appConfigData = "mode: steady\n"
)

// Both drills run every minute (the explicit minInterval override), so the
// daemon starts them within a minute of its install.
var e2eDrills = map[string]string{
	podKillDrill: `apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata:
  name: ` + podKillDrill + `
spec:
  scenario: pod-kill
  schedule: "* * * * *"
  minInterval: 1m
  objectives:
    rto: 2m
  timeouts:
    recover: 3m
  target:
    namespace: ` + appNS + `
    selector:
      app: web
`,
	// The sample app never reads its ConfigMap, so the corruption is never
	// detected: the fault stays active until the detection window ends,
	// which leaves time to kill the leader in the middle of it.
	corruptDrill: `apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata:
  name: ` + corruptDrill + `
spec:
  scenario: corrupt-config
  schedule: "* * * * *"
  minInterval: 1m
  objectives:
    rto: 2m
  timeouts:
    recover: 3m
  target:
    namespace: ` + configNS + `
  params:
    configMap: ` + appConfig + `
    key: ` + appConfigKey + `
    daemonSet: agent
`,
}

type inCluster struct {
	values string
	slack  *slackSink
}

// setUpInClusterDrills imports drillbot's image into the real node, creates
// the release namespace (Pod Security restricted enforced), the sample app,
// the Slack Secret and the custom drills' RBAC (drillbot rbac, as the
// README tells users), and writes the chart values.
func setUpInClusterDrills(ctx context.Context, t *testing.T) *inCluster {
	t.Helper()
	if err := cluster.ImportImage(ctx, "drillbot"); err != nil {
		t.Fatal(err)
	}
	for ns, labels := range map[string]map[string]string{
		releaseNS: {"pod-security.kubernetes.io/enforce": "restricted"},
		appNS:     {"pod-security.kubernetes.io/enforce": "restricted", v1alpha1.LabelAllowDisaster: "true"},
		configNS:  {"pod-security.kubernetes.io/enforce": "restricted", v1alpha1.LabelAllowDisaster: "true"},
	} {
		if _, err := cluster.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	createSampleApp(ctx, t)

	sink := newSlackSink(t)
	if _, err := cluster.Kube.CoreV1().Secrets(releaseNS).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "slack"},
		StringData: map[string]string{"webhook-url": sink.url}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	custom := map[string]string{}
	for name, doc := range e2eDrills {
		if err := os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		custom[name] = doc
	}
	rbac, err := exec.Command(testharness.Binary(t), "rbac", "-f", dir, "--namespace", releaseNS, "--service-account", sa, "--name", "dr-e2e").Output()
	if err != nil {
		t.Fatalf("drillbot rbac: %v", err)
	}
	applyYAML(ctx, t, rbac, false)

	// The chart's own NetworkPolicy, enforced by the node's kube-router:
	// the API server's endpoint, and the Slack sink as the one extra
	// destination (no HTTPS anywhere: nothing outside is reachable here).
	apiPort, err := apiServerPort(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sinkPort := sink.port()
	node := localcluster.NodeIP + "/32"
	values, err := yaml.Marshal(map[string]any{
		"image":        map[string]any{"repository": "drillbot.local/drillbot", "tag": "dev", "pullPolicy": "Never"},
		"slack":        map[string]any{"existingSecret": "slack"},
		"customDrills": custom,
		"networkPolicy": map[string]any{"enabled": true, "egress": map[string]any{
			"apiServer": map[string]any{"cidrs": []string{node}, "port": apiPort},
			"https":     []string{},
			"extra": []any{map[string]any{"to": []any{map[string]any{"ipBlock": map[string]any{"cidr": node}}},
				"ports": []any{map[string]any{"protocol": "TCP", "port": sinkPort}}}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "values.yaml")
	if err := os.WriteFile(path, values, 0o600); err != nil {
		t.Fatal(err)
	}
	return &inCluster{values: path, slack: sink}
}

// apiServerPort is the API server's port as pods reach it (the endpoint of
// default/kubernetes).
func apiServerPort(ctx context.Context) (int32, error) {
	sl, err := cluster.Kube.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=kubernetes"})
	if err != nil {
		return 0, err
	}
	for _, s := range sl.Items {
		for _, p := range s.Ports {
			if p.Port != nil {
				return *p.Port, nil
			}
		}
	}
	return 0, errors.New("default/kubernetes has no endpoint port")
}

func (s *slackSink) port() int {
	u, _ := url.Parse(s.url)
	p, _ := strconv.Atoi(u.Port())
	return p
}

// testNetworkPolicy: drillbot runs (the other subtests) under its chart's
// NetworkPolicy, enforced by kube-router; from a drillbot pod's network
// namespace the Slack sink (allowed) answers and another port of the same
// address does not.
func (e *inCluster) testNetworkPolicy(t *testing.T) {
	ctx := context.Background()
	other, err := net.Listen("tcp", net.JoinHostPort(localcluster.NodeIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	pods, err := cluster.Kube.CoreV1().Pods(releaseNS).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=drillbot"})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("drillbot pods: %v %d", err, len(pods.Items))
	}
	pid, err := cluster.ContainerPID(ctx, pods.Items[0].Status.ContainerStatuses[0].ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	dial := func(port int) error {
		out, err := exec.CommandContext(ctx, "nsenter", "-n", "-t", strconv.Itoa(pid), "--", "timeout", "3",
			"bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/%s/%d", localcluster.NodeIP, port)).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	}
	if err := dial(e.slack.port()); err != nil {
		t.Errorf("the Slack sink, allowed by the chart's policy, is not reachable from drillbot's pod: %v", err)
	}
	if err := dial(other.Addr().(*net.TCPAddr).Port); err == nil {
		t.Errorf("a port the chart's policy does not allow was reachable from drillbot's pod: the policy is not enforced")
	}
}

// createSampleApp runs, on the real node, the pod-kill target (a
// Deployment of two) and the corrupt-config target (a DaemonSet and its
// ConfigMap), and waits until their pods are Ready.
func createSampleApp(ctx context.Context, t *testing.T) {
	t.Helper()
	web := map[string]string{"app": "web"}
	agent := map[string]string{"app": "agent"}
	if _, err := cluster.Kube.AppsV1().Deployments(appNS).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2), Selector: &metav1.LabelSelector{MatchLabels: web}, Template: localcluster.SampleApp(web)}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.Kube.AppsV1().DaemonSets(configNS).Create(ctx, &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent"},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: agent}, Template: localcluster.SampleApp(agent)}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.Kube.CoreV1().ConfigMaps(configNS).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: appConfig},
		Data: map[string]string{appConfigKey: appConfigData}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pollT(t, "sample app Ready on the real node", 2*time.Minute, func() (bool, error) {
		web, err := cluster.Kube.CoreV1().Pods(appNS).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		agent, err := cluster.Kube.CoreV1().Pods(configNS).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		return len(web.Items) == 2 && len(agent.Items) == 1 && allReady(append(web.Items, agent.Items...)), nil
	})
}

func allReady(pods []corev1.Pod) bool {
	for _, p := range pods {
		if p.DeletionTimestamp != nil || readyAt(p) == nil {
			return false
		}
	}
	return true
}

// readyAt is when the kubelet reported the pod Ready, or nil.
func readyAt(p corev1.Pod) *metav1.Time {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return &c.LastTransitionTime
		}
	}
	return nil
}

func pollT(t *testing.T, what string, timeout time.Duration, cond func() (bool, error)) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 500*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		ok, err := cond()
		if err != nil {
			last = err
		}
		return ok, nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v (last error: %v)", what, err, last)
	}
}

func (e *inCluster) testPods(t *testing.T) {
	ctx := context.Background()
	pods, err := cluster.Kube.CoreV1().Pods(releaseNS).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=drillbot"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 2 || !allReady(pods.Items) {
		t.Fatalf("want 2 Ready drillbot pods, got %s", localcluster.JSON(podSummary(pods.Items)))
	}
	for _, p := range pods.Items {
		if p.Spec.NodeName != localcluster.NodeName {
			t.Errorf("pod %s on node %q, want the real node", p.Name, p.Spec.NodeName)
		}
		cs := p.Status.ContainerStatuses
		if len(cs) != 1 || cs[0].State.Running == nil || cs[0].ImageID == "" {
			t.Errorf("pod %s: container not running from a real image: %s", p.Name, localcluster.JSON(cs))
		}
	}
	// The disruption controller computes the budget: with both replicas
	// Ready, one may be evicted.
	pollT(t, "the chart's PodDisruptionBudget to allow one disruption of two", 30*time.Second, func() (bool, error) {
		pdb, err := cluster.Kube.PolicyV1().PodDisruptionBudgets(releaseNS).Get(ctx, release+"-drillbot", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return pdb.Status.ExpectedPods == 2 && pdb.Status.DisruptionsAllowed == 1, fmt.Errorf("expected %d, allowed %d", pdb.Status.ExpectedPods, pdb.Status.DisruptionsAllowed)
	})
	ns, err := cluster.Kube.CoreV1().Namespaces().Get(ctx, releaseNS, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("release namespace does not enforce restricted: %v", ns.Labels)
	}
}

func podSummary(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, fmt.Sprintf("%s %s node=%s ready=%v", p.Name, p.Status.Phase, p.Spec.NodeName, readyAt(p) != nil))
	}
	return out
}

// runStore reads the release's DrillRuns as drillbot stores them.
func runStore() *engine.KubeStore {
	return &engine.KubeStore{Client: cluster.Dynamic, Namespace: releaseNS}
}

// runsOf lists the drill's DrillRuns, oldest first.
func runsOf(ctx context.Context, drill string) ([]v1alpha1.DrillRun, error) {
	runs, err := runStore().List(ctx, v1alpha1.LabelDrill+"="+drill)
	slices.SortFunc(runs, func(a, b v1alpha1.DrillRun) int { return a.CreationTimestamp.Compare(b.CreationTimestamp.Time) })
	return runs, err
}

func (e *inCluster) testScheduledPodKill(t *testing.T) {
	ctx := context.Background()
	var run v1alpha1.DrillRun
	pollT(t, "a scheduled "+podKillDrill+" run Completed by the in-cluster daemon", 3*time.Minute, func() (bool, error) {
		runs, err := runsOf(ctx, podKillDrill)
		if err != nil {
			return false, err
		}
		for _, r := range runs {
			if r.Status.Phase == v1alpha1.PhaseCompleted {
				run = r
				return true, nil
			}
		}
		return false, nil
	})
	if run.Status.Verdict != v1alpha1.VerdictPass {
		t.Fatalf("verdict %s (%s), want PASS: %s", run.Status.Verdict, run.Status.Reason, localcluster.JSON(run.Status))
	}
	host, _, _ := strings.Cut(run.Status.Holder, "/")
	if !strings.HasPrefix(host, release+"-drillbot-") {
		t.Errorf("run held by %q, want a drillbot pod of the release", run.Status.Holder)
	}
	rto, err := time.ParseDuration(run.Status.RTO)
	if err != nil || run.Status.DisasterAt == nil {
		t.Fatalf("RTO %q disasterAt %v: %v", run.Status.RTO, run.Status.DisasterAt, err)
	}
	// The replacements really started after the kill, and drillbot's RTO
	// is never shorter than the kubelet's own account of it (its Ready
	// transitions, to the second).
	pods, err := cluster.Kube.CoreV1().Pods(appNS).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	disaster := run.Status.DisasterAt.Time
	var kubelet time.Duration
	replaced := 0
	for _, p := range pods.Items {
		if p.CreationTimestamp.Time.Before(disaster.Truncate(time.Second)) {
			continue // not a replacement of this run (a later run may have replaced it again)
		}
		replaced++
		cs := p.Status.ContainerStatuses
		if len(cs) == 0 || cs[0].State.Running == nil || cs[0].State.Running.StartedAt.Time.Before(disaster.Truncate(time.Second)) {
			t.Errorf("replacement %s: container not started after the kill: %s", p.Name, localcluster.JSON(cs))
		}
		if r := readyAt(p); r != nil && r.Sub(disaster) > kubelet {
			kubelet = r.Sub(disaster)
		}
	}
	if replaced == 0 {
		t.Fatalf("no pod of app=web was created after the kill at %s: %s", disaster, localcluster.JSON(podSummary(pods.Items)))
	}
	if rto < kubelet-time.Second {
		t.Errorf("drillbot's RTO %s is shorter than the kubelet's Ready transitions (%s after the kill)", rto, kubelet)
	}
	t.Logf("pod-kill on the real node: RTO %s (kubelet's Ready transitions: %s, to the second)", rto, kubelet)

	msg := e.slack.waitFor(t, podKillDrill, 30*time.Second)
	if !strings.Contains(msg, "PASS") {
		t.Errorf("Slack message for %s does not say PASS: %s", podKillDrill, msg)
	}
}

func (e *inCluster) testMetricsService(t *testing.T) {
	ctx := context.Background()
	svc, err := cluster.Kube.CoreV1().Services(releaseNS).Get(ctx, release+"-drillbot", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("http://%s/metrics", net.JoinHostPort(svc.Spec.ClusterIP, fmt.Sprint(svc.Spec.Ports[0].Port)))
	want := `drillbot_runs_total{drill="` + podKillDrill + `"`
	// kube-proxy balances each new connection over both replicas: only
	// the leader ran drills.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	pollT(t, want+" at "+url, time.Minute, func() (bool, error) {
		resp, err := client.Get(url)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return strings.Contains(string(body), want), err
	})
}

func (e *inCluster) testLeaderKilledMidFault(t *testing.T) {
	ctx := context.Background()
	cms := cluster.Kube.CoreV1().ConfigMaps(configNS)
	var run v1alpha1.DrillRun
	pollT(t, corruptDrill+" with its fault active", 3*time.Minute, func() (bool, error) {
		cm, err := cms.Get(ctx, appConfig, metav1.GetOptions{})
		if err != nil || cm.Data[appConfigKey] == appConfigData {
			return false, err
		}
		runs, err := runsOf(ctx, corruptDrill)
		if err != nil {
			return false, err
		}
		for _, r := range runs {
			if r.Status.Phase == v1alpha1.PhaseRecovering && r.Status.OpenFaults() > 0 {
				run = r
				return true, nil
			}
		}
		return false, nil
	})
	leader, _, _ := strings.Cut(run.Status.Holder, "/")
	t.Logf("killing the leader pod %s while run %s holds a corrupted ConfigMap", leader, run.Name)
	// The kubelet sends SIGTERM (the pod's grace period), as on a node
	// drain or a rollout.
	if err := cluster.Kube.CoreV1().Pods(releaseNS).Delete(ctx, leader, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	pollT(t, "the corrupted ConfigMap restored", 2*time.Minute, func() (bool, error) {
		cm, err := cms.Get(ctx, appConfig, metav1.GetOptions{})
		return err == nil && cm.Data[appConfigKey] == appConfigData, err
	})
	pollT(t, "run "+run.Name+" Completed with its fault reverted", 2*time.Minute, func() (bool, error) {
		r, err := runStore().Get(ctx, run.Name)
		if err != nil {
			return false, err
		}
		run = *r
		return r.Status.Phase == v1alpha1.PhaseCompleted, nil
	})
	if n := run.Status.OpenFaults(); n != 0 {
		t.Errorf("run %s Completed with %d open faults: %s", run.Name, n, localcluster.JSON(run.Status.Journal))
	}
	if run.Status.Verdict == v1alpha1.VerdictPass {
		t.Errorf("run %s interrupted by its leader's death says PASS", run.Name)
	}
	pollT(t, "a new leader", 2*time.Minute, func() (bool, error) {
		l, err := cluster.Kube.CoordinationV1().Leases(releaseNS).Get(ctx, release+"-drillbot", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		h := ptr.Deref(l.Spec.HolderIdentity, "")
		return h != "" && !strings.HasPrefix(h, leader), nil
	})
	t.Logf("run %s after its leader died: %s %s (%s)", run.Name, run.Status.Phase, run.Status.Verdict, run.Status.Reason)
}

// checkNothingLeft runs after the chart is uninstalled (its pods got
// SIGTERM mid-drill, perhaps): no fault of the drills may remain.
func (e *inCluster) checkNothingLeft(t *testing.T) {
	ctx := context.Background()
	cm, err := cluster.Kube.CoreV1().ConfigMaps(configNS).Get(ctx, appConfig, metav1.GetOptions{})
	if err != nil {
		t.Error(err)
	} else if cm.Data[appConfigKey] != appConfigData {
		t.Errorf("after uninstall the ConfigMap still holds a drill's corruption: %q", cm.Data[appConfigKey])
	}
	for _, d := range []string{podKillDrill, corruptDrill} {
		runs, err := runsOf(ctx, d)
		if err != nil {
			t.Error(err)
		}
		for _, r := range runs {
			if r.Status.OpenFaults() > 0 {
				t.Errorf("after uninstall run %s (%s) has open faults: %s", r.Name, r.Status.Phase, localcluster.JSON(r.Status.Journal))
			}
		}
	}
}

// slackSink is a Slack incoming webhook on the node's address, where pods
// reach it.
type slackSink struct {
	url  string
	mu   sync.Mutex
	msgs []string
}

func newSlackSink(t *testing.T) *slackSink {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(cluster.Host(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	s := &slackSink{url: "http://" + l.Addr().String() + "/hook"}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.msgs = append(s.msgs, string(body))
		s.mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

func (s *slackSink) waitFor(t *testing.T, substr string, timeout time.Duration) string {
	t.Helper()
	var found string
	pollT(t, "a Slack message about "+substr, timeout, func() (bool, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, m := range s.msgs {
			if strings.Contains(m, substr) {
				found = m
				return true, nil
			}
		}
		return false, nil
	})
	return found
}

// applyYAML server-side applies every object of a multi-document YAML
// (with strict field validation; a dry run if dryRun) and returns how many
// it applied. Namespaces the objects name are created.
func applyYAML(ctx context.Context, t *testing.T, docs []byte, dryRun bool) int {
	t.Helper()
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(cluster.Kube.Discovery()))
	n := 0
	for _, doc := range strings.Split(string(docs), "\n---\n") {
		var u unstructured.Unstructured
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatal(err)
		}
		if u.Object == nil || u.GetKind() == "" {
			continue
		}
		if ns := u.GetNamespace(); ns != "" {
			_, _ = cluster.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		}
		gvk := u.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("%s %s: %v", gvk, u.GetName(), err)
		}
		res := cluster.Dynamic.Resource(m.Resource)
		var ri dynamic.ResourceInterface = res
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			ri = res.Namespace(u.GetNamespace())
		}
		data, err := json.Marshal(u.Object)
		if err != nil {
			t.Fatal(err)
		}
		opts := metav1.PatchOptions{FieldManager: "chart-test", FieldValidation: "Strict", Force: ptr.To(true)}
		if dryRun {
			opts.DryRun = []string{metav1.DryRunAll}
		}
		if _, err := ri.Patch(ctx, u.GetName(), types.ApplyPatchType, data, opts); err != nil {
			t.Errorf("%s %s/%s: %v", gvk.Kind, u.GetNamespace(), u.GetName(), err)
		}
		n++
	}
	return n
}
