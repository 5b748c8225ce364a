package main

// The crash matrix: `drillbot run` is killed with SIGKILL (a failpoint) at
// each crash-relevant step of each scenario that injects a fault; then one
// `drillbot serve` starts and must revert every fault exactly once, inject
// nothing again, complete each run as FAIL (interrupted), and leave the
// cluster as it was before the drill. All real processes, real cluster.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/kube"
	"github.com/drillbot-io/drillbot/internal/scenarios/blockegress"
	"github.com/drillbot-io/drillbot/test/localcluster"
	"github.com/drillbot-io/drillbot/test/testharness"
)

// crashScenario sets up a target in ns and returns the drill and a check
// that the cluster is as before; injected says whether the fault may have
// reached the cluster.
type crashScenario struct {
	name  string
	setup func(t *testing.T, name, ns string) (drill string, check func(t *testing.T, injected bool))
}

func TestCrashAtEveryStep(t *testing.T) {
	localcluster.Require(t, cluster)
	bin := testharness.Binary(t)
	scenarios := []crashScenario{
		{"corrupt-config", crashFalco},
		{"pod-kill", crashPodKill},
		{"block-secrets-backend", crashBlockEgress},
		{"namespace-restore", crashNamespaceRestore},
	}
	type crashCase struct {
		scenario, step, drill string
		check                 func(t *testing.T, injected bool)
		out                   string
		err                   error
	}
	var cases []*crashCase
	for i, sc := range scenarios {
		for j, step := range engine.Failpoints {
			name := fmt.Sprintf("crash-%d-%d-%s", i, j, localcluster.RandomSuffix())
			drill, check := sc.setup(t, name, name)
			cases = append(cases, &crashCase{scenario: sc.name, step: step, drill: drillFile(t, drill), check: check})
		}
	}
	// Every run is killed at its failpoint, all at once.
	var wg sync.WaitGroup
	for _, c := range cases {
		wg.Go(func() {
			cmd := exec.Command(bin, "run", "-f", c.drill, "--kubeconfig", cluster.Kubeconfig, "-n", "drillbot-system", "--heartbeat-interval", "1s")
			cmd.Env = append(cmd.Environ(), failpointEnv+"="+c.step)
			out, err := cmd.CombinedOutput()
			c.out, c.err = string(out), err
		})
	}
	wg.Wait()
	for _, c := range cases {
		var exit *exec.ExitError
		if !errors.As(c.err, &exit) || exit.ExitCode() != -1 || !strings.Contains(c.out, "failpoint "+c.step) {
			t.Fatalf("%s at %s: the process was not killed at its failpoint (%v):\n%s", c.scenario, c.step, c.err, c.out)
		}
	}
	// One daemon starts and resolves what the dead ones left.
	d := startResolver(t, bin)
	for _, c := range cases {
		t.Run(c.scenario+"/"+c.step, func(t *testing.T) {
			drillName := strings.TrimSuffix(filepath.Base(c.drill), ".yaml")
			var run v1alpha1.DrillRun
			eventually(t, "the run completed by the new daemon", time.Minute, func() bool {
				runs := listRuns(t, drillName)
				if len(runs) == 1 && runs[0].Status.Phase == v1alpha1.PhaseCompleted {
					run = runs[0]
					return true
				}
				return false
			})
			if run.Status.Verdict != v1alpha1.VerdictFail || !strings.Contains(run.Status.Reason, "interrupted during") {
				t.Errorf("verdict %s %q", run.Status.Verdict, run.Status.Reason)
			}
			for _, j := range run.Status.Journal {
				if j.State != v1alpha1.JournalReverted {
					t.Errorf("journal entry %s %s", j.ID, j.State)
				}
			}
			injected := c.step != "before-journal" && c.step != "after-journal"
			if c.step == "before-journal" && len(run.Status.Journal) != 0 {
				t.Errorf("an entry the dead process never made durable is in the journal: %s", localcluster.JSON(run.Status.Journal))
			}
			c.check(t, injected)
			if n := len(listRuns(t, drillName)); n != 1 {
				t.Errorf("%d runs of %s", n, drillName)
			}
		})
	}
	if t.Failed() {
		t.Logf("resolver logs:\n%s", d)
	}
}

func startResolver(t *testing.T, bin string, extra ...string) *daemon {
	t.Helper()
	dir := drillDir(t, `apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata: {name: resolver-idle}
spec:
  scenario: admission-probe
  objectives: {rto: 1m}
  target: {namespace: drill-idle}
  params: {attempt: {image: registry.example/x:1}}
`)
	return startDaemon(t, bin, dir, extra...)
}

func drillFile(t *testing.T, doc string) string {
	t.Helper()
	name := strings.TrimSpace(strings.TrimPrefix(strings.Split(strings.SplitAfter(doc, "metadata: {name: ")[1], "}")[0], ""))
	path := filepath.Join(t.TempDir(), name+".yaml")
	if err := writeFile(path, doc); err != nil {
		t.Fatal(err)
	}
	return path
}

func crashFalco(t *testing.T, name, ns string) (string, func(*testing.T, bool)) {
	falco(t, ns)
	before, err := cluster.Kube.CoreV1().ConfigMaps(ns).Get(context.Background(), "falco-rules", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	drill := falcoDrill(name, ns, "", "3s")
	return drill, func(t *testing.T, injected bool) {
		cm, err := cluster.Kube.CoreV1().ConfigMaps(ns).Get(context.Background(), "falco-rules", metav1.GetOptions{})
		if err != nil || cm.Data["falco_rules.yaml"] != rules {
			t.Errorf("rules %q (%v), want the original", cm.Data["falco_rules.yaml"], err)
		}
		if !injected && cm.ResourceVersion != before.ResourceVersion {
			t.Errorf("the ConfigMap was written (resourceVersion %s -> %s) though the fault was never injected", before.ResourceVersion, cm.ResourceVersion)
		}
		ds, err := cluster.Kube.AppsV1().DaemonSets(ns).Get(context.Background(), "falco", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if by := ds.Spec.Template.Annotations["drillbot.io/restarted-by"]; !injected && by != "" {
			t.Errorf("the DaemonSet was restarted by %s though the fault was never injected: every Falco pod rolled for nothing", by)
		}
	}
}

func crashPodKill(t *testing.T, name, ns string) (string, func(*testing.T, bool)) {
	ctx := context.Background()
	testharness.Namespace(t, cluster, ns, testharness.OptIn)
	testharness.Deployment(t, cluster, ns, "web", map[string]string{"app": "web"}, 2)
	before := podNames(t, ns)
	drill := fmt.Sprintf(`apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata: {name: %s}
spec:
  scenario: pod-kill
  objectives: {rto: 2m}
  target: {namespace: %s, selector: {app: web}}
`, name, ns)
	return drill, func(t *testing.T, injected bool) {
		eventually(t, "web Ready again", time.Minute, func() bool {
			d, err := cluster.Kube.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
			return err == nil && d.Status.ReadyReplicas == 2 && len(podNames(t, ns)) == 2
		})
		if !injected && !slices.Equal(podNames(t, ns), before) {
			t.Errorf("pods %v, want %v untouched: the fault was never injected", podNames(t, ns), before)
		}
	}
}

func podNames(t *testing.T, ns string) []string {
	t.Helper()
	pods, err := cluster.Kube.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p.Name)
		}
	}
	slices.Sort(out)
	return out
}

var esGVR = schema.GroupVersionResource{Group: "external-secrets.io", Version: "v1", Resource: "externalsecrets"}

// crashBlockEgress: an External Secrets stack whose ExternalSecret stays
// Ready (no CNI enforces the policy here), so the drill goes through every
// step: block, no effect within the detection window, unblock, verify,
// revert.
func crashBlockEgress(t *testing.T, name, ns string) (string, func(*testing.T, bool)) {
	ctx := context.Background()
	if err := kube.EnsureCRD(ctx, cluster.REST, []byte(testharness.ExternalSecretCRD)); err != nil {
		t.Fatal(err)
	}
	testharness.Namespace(t, cluster, ns, testharness.OptIn)
	testharness.Deployment(t, cluster, ns, "eso", map[string]string{"app.kubernetes.io/name": "external-secrets"}, 1)
	if _, err := cluster.Kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Data: map[string][]byte{"value": []byte("s3cr3t")}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	es := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
		"metadata": map[string]any{"name": "db", "namespace": ns}, "spec": map[string]any{"target": map[string]any{"name": "db"}}}}
	created, err := cluster.Dynamic.Resource(esGVR).Namespace(ns).Create(ctx, es, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_ = unstructured.SetNestedField(created.Object, map[string]any{"refreshTime": time.Now().UTC().Format(time.RFC3339),
		"conditions": []any{map[string]any{"type": "Ready", "status": "True", "reason": "SecretSynced"}}}, "status")
	if _, err := cluster.Dynamic.Resource(esGVR).Namespace(ns).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	drill := fmt.Sprintf(`apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata: {name: %s}
spec:
  scenario: block-secrets-backend
  objectives: {rto: 15m}
  timeouts: {recover: 1m}
  target: {namespace: %s, selector: {app.kubernetes.io/name: external-secrets}}
  params: {externalSecrets: [%s/db], detectionWindow: 2s}
`, name, ns, ns)
	return drill, func(t *testing.T, _ bool) {
		if _, err := cluster.Kube.NetworkingV1().NetworkPolicies(ns).Get(ctx, blockegress.PolicyName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the NetworkPolicy is still there (%v)", err)
		}
		s, err := cluster.Kube.CoreV1().Secrets(ns).Get(ctx, "db", metav1.GetOptions{})
		if err != nil || string(s.Data["value"]) != "s3cr3t" {
			t.Errorf("secret %v", err)
		}
	}
}

// crashNamespaceRestore: a shop with a Deployment and a ConfigMap, backed
// up by the drill itself (backup.create) with the real Velero.
func crashNamespaceRestore(t *testing.T, name, ns string) (string, func(*testing.T, bool)) {
	ctx := context.Background()
	created := testharness.Namespace(t, cluster, ns, testharness.OptIn)
	if _, err := cluster.Kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "prices"},
		Data: map[string]string{"tea": "3"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testharness.Deployment(t, cluster, ns, "shop", map[string]string{"app": "shop"}, 2)
	drill := fmt.Sprintf(`apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata: {name: %s}
spec:
  scenario: namespace-restore
  objectives: {rto: 30m, rpo: 1h}
  timeouts: {preflight: 3m, recover: 3m}
  target: {namespace: %s}
  params: {backup: {create: true}}
`, name, ns)
	return drill, func(t *testing.T, injected bool) {
		var got *corev1.Namespace
		eventually(t, "the namespace back and its workloads Ready", 2*time.Minute, func() bool {
			n, err := cluster.Kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
			if err != nil || n.DeletionTimestamp != nil {
				return false
			}
			got = n
			d, err := cluster.Kube.AppsV1().Deployments(ns).Get(ctx, "shop", metav1.GetOptions{})
			return err == nil && d.Status.ReadyReplicas == 2
		})
		cm, err := cluster.Kube.CoreV1().ConfigMaps(ns).Get(ctx, "prices", metav1.GetOptions{})
		if err != nil || cm.Data["tea"] != "3" {
			t.Errorf("the shop's data: %v %v", cm.Data, err)
		}
		if !injected && got.UID != created.UID {
			t.Errorf("the namespace was re-created (UID %s -> %s) though it was never deleted", created.UID, got.UID)
		}
	}
}

// TestSweepRetriesAFailedRevert: a `drillbot run` killed with its fault
// active, while an admission policy freezes the ConfigMap its undo must
// write. The daemon takes the run over, its undo fails: the run stays
// RevertFailed, the fault shows in /metrics. Once the freeze is lifted the
// sweep's next retry reverts it and completes the run.
func TestSweepRetriesAFailedRevert(t *testing.T) {
	localcluster.Require(t, cluster)
	ctx := context.Background()
	bin := testharness.Binary(t)
	name := "retry-" + localcluster.RandomSuffix()
	falco(t, name)
	cmd := exec.Command(bin, "run", "-f", drillFile(t, falcoDrill(name, name, "", "10m")), "--kubeconfig", cluster.Kubeconfig, "-n", "drillbot-system", "--heartbeat-interval", "1s")
	cmd.Env = append(cmd.Environ(), failpointEnv+"=after-inject")
	if out, err := cmd.CombinedOutput(); !strings.Contains(string(out), "failpoint after-inject") {
		t.Fatalf("the run was not killed with its fault active (%v):\n%s", err, out)
	}
	thaw := testharness.FreezeConfigMap(t, cluster, name, "falco-rules")
	d := startResolver(t, bin, "--revert-retry-backoff", "1s")
	active := fmt.Sprintf(`drillbot_active_faults{drill=%q,scenario="corrupt-config"} `, name)
	eventually(t, "the run RevertFailed and its fault in /metrics", time.Minute, func() bool {
		runs := listRuns(t, name)
		return len(runs) == 1 && runs[0].Status.Phase == v1alpha1.PhaseRevertFailed && strings.Contains(scrape(t, d), active+"1")
	})
	if cm, err := cluster.Kube.CoreV1().ConfigMaps(name).Get(ctx, "falco-rules", metav1.GetOptions{}); err != nil || cm.Data["falco_rules.yaml"] == rules {
		t.Fatalf("the freeze did not keep the fault (%v): the test proves nothing", err)
	}
	thaw()
	var run v1alpha1.DrillRun
	eventually(t, "the sweep's retry completing the run", time.Minute, func() bool {
		runs := listRuns(t, name)
		if len(runs) == 1 && runs[0].Status.Phase == v1alpha1.PhaseCompleted {
			run = runs[0]
			return true
		}
		return false
	})
	if run.Status.Verdict != v1alpha1.VerdictFail || run.Status.Journal[0].State != v1alpha1.JournalReverted || run.Status.RevertAttempts < 1 {
		t.Errorf("verdict %s journal %s attempts %d", run.Status.Verdict, run.Status.Journal[0].State, run.Status.RevertAttempts)
	}
	if cm, err := cluster.Kube.CoreV1().ConfigMaps(name).Get(ctx, "falco-rules", metav1.GetOptions{}); err != nil || cm.Data["falco_rules.yaml"] != rules {
		t.Errorf("rules %q (%v), want the original", cm.Data["falco_rules.yaml"], err)
	}
	eventually(t, "the fault gone from /metrics", 10*time.Second, func() bool { return strings.Contains(scrape(t, d), active+"0") })
	if t.Failed() {
		t.Logf("daemon logs:\n%s", d)
	}
}

func scrape(t *testing.T, d *daemon) string {
	t.Helper()
	resp, err := http.Get("http://" + d.addr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
