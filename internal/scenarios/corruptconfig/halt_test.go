package corruptconfig_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/app"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/scenarios/corruptconfig"
	"github.com/drillbot-io/drillbot/test/localcluster"
	"github.com/drillbot-io/drillbot/test/testharness"
)

// TestHaltRevertsAnActiveFault: while a drill holds Falco's rules corrupt
// (nothing detects it, so it would wait for its recover timeout), the real
// `drillbot halt` command turns the switch on; the drill's process cancels
// the run, which restores the rules byte for byte; new runs are refused
// until `drillbot resume`.
func TestHaltRevertsAnActiveFault(t *testing.T) {
	h := testharness.New(t, cluster)
	ns := "falco-halt-" + localcluster.RandomSuffix()
	falco(t, ns)
	def := h.Drill(fmt.Sprintf(falcoDrill, ns, ns))
	bin := testharness.Binary(t)
	drillbot := func(args ...string) string {
		out, err := exec.Command(bin, append(args, "--kubeconfig", cluster.Kubeconfig, "-n", testharness.RunNamespace)...).CombinedOutput()
		if err != nil {
			t.Fatalf("drillbot %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	t.Cleanup(func() {
		_, _ = exec.Command(bin, "resume", "--kubeconfig", cluster.Kubeconfig, "-n", testharness.RunNamespace).CombinedOutput()
	})

	done := runUntilCorrupt(t, h, def, ns)

	out := drillbot("halt", "--reason", "incident 4711", "--wait", "30s")
	if !strings.Contains(out, "no fault active") {
		t.Errorf("halt said:\n%s", out)
	}
	var run *v1alpha1.DrillRun
	select {
	case run = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the run did not stop on halt")
	}
	if run.Status.Verdict != v1alpha1.VerdictFail || !strings.Contains(run.Status.Reason, "incident 4711") {
		t.Errorf("verdict %s %q, want FAIL naming the halt", run.Status.Verdict, run.Status.Reason)
	}
	if len(run.Status.Journal) != 1 || run.Status.Journal[0].State != v1alpha1.JournalReverted {
		t.Errorf("journal %s", localcluster.JSON(run.Status.Journal))
	}
	cm, err := cluster.Kube.CoreV1().ConfigMaps(ns).Get(context.Background(), "falco-rules", metav1.GetOptions{})
	if err != nil || cm.Data["falco_rules.yaml"] != originalRules {
		t.Errorf("rules not restored byte for byte: %q (%v)", cm.Data["falco_rules.yaml"], err)
	}

	// Halted: nothing starts, nothing is recorded.
	a, err := app.New(context.Background(), cluster.REST, app.Options{Namespace: testharness.RunNamespace})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	var halted *engine.HaltedError
	if _, err := a.Engine.Run(context.Background(), def, "test"); !errors.As(err, &halted) || !strings.Contains(err.Error(), "incident 4711") {
		t.Errorf("a run while halted: %v", err)
	}
	drillbot("resume")
	if _, on, err := a.Halt.Halted(context.Background()); on || err != nil {
		t.Errorf("still halted after resume (%v)", err)
	}
}

// TestHaltReportsAFaultWhoseRevertFails: while the rules ConfigMap is
// frozen by an admission policy, the undo fails: the run stays
// RevertFailed, `drillbot halt` says the fault may still be active and
// exits non-zero; once the freeze is lifted, `drillbot halt` again retries
// at once, restores the rules and says no fault is active.
func TestHaltReportsAFaultWhoseRevertFails(t *testing.T) {
	h := testharness.New(t, cluster)
	ns := "falco-frozen-" + localcluster.RandomSuffix()
	falco(t, ns)
	def := h.Drill(fmt.Sprintf(falcoDrill, ns, ns))
	bin := testharness.Binary(t)
	drillbot := func(args ...string) (string, error) {
		out, err := exec.Command(bin, append(args, "--kubeconfig", cluster.Kubeconfig, "-n", testharness.RunNamespace)...).CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() { _, _ = drillbot("resume") })

	done := runUntilCorrupt(t, h, def, ns)
	thaw := testharness.FreezeConfigMap(t, cluster, ns, "falco-rules")

	out, err := drillbot("halt", "--reason", "incident 4712", "--wait", "30s")
	if err == nil || !strings.Contains(out, "FAULT MAY STILL BE ACTIVE") || strings.Contains(out, "no fault active") {
		t.Errorf("halt with a failing revert (err %v) said:\n%s", err, out)
	}
	var run *v1alpha1.DrillRun
	select {
	case run = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the run did not stop on halt")
	}
	if run.Status.Phase != v1alpha1.PhaseRevertFailed || run.Status.Verdict != v1alpha1.VerdictFail {
		t.Errorf("run phase %s verdict %s, want RevertFailed FAIL", run.Status.Phase, run.Status.Verdict)
	}
	cm, err := cluster.Kube.CoreV1().ConfigMaps(ns).Get(context.Background(), "falco-rules", metav1.GetOptions{})
	if err != nil || cm.Data["falco_rules.yaml"] != corruptconfig.DefaultCorruptRules {
		t.Fatalf("the freeze did not keep the fault in place (%v): the test proves nothing", err)
	}

	thaw()
	out, err = drillbot("halt", "--reason", "incident 4712", "--wait", "5s")
	if err != nil || !strings.Contains(out, "no fault active") {
		t.Errorf("halt after the freeze (err %v) said:\n%s", err, out)
	}
	cm, err = cluster.Kube.CoreV1().ConfigMaps(ns).Get(context.Background(), "falco-rules", metav1.GetOptions{})
	if err != nil || cm.Data["falco_rules.yaml"] != originalRules {
		t.Errorf("rules not restored byte for byte: %q (%v)", cm.Data["falco_rules.yaml"], err)
	}
	final, err := (&engine.KubeStore{Client: cluster.Dynamic, Namespace: testharness.RunNamespace}).Get(context.Background(), run.Name)
	if err != nil {
		t.Fatal(err)
	}
	if final.Status.Phase != v1alpha1.PhaseCompleted || final.Status.Verdict != v1alpha1.VerdictFail || final.Status.RevertAttempts < 2 {
		t.Errorf("after the retry: phase %s verdict %s attempts %d", final.Status.Phase, final.Status.Verdict, final.Status.RevertAttempts)
	}
}

// runUntilCorrupt runs def in the background and returns once its fault is
// active (the rules are corrupt); the channel gets the finished run.
func runUntilCorrupt(t *testing.T, h *testharness.Harness, def drill.Definition, ns string) <-chan *v1alpha1.DrillRun {
	t.Helper()
	done := make(chan *v1alpha1.DrillRun, 1)
	go func() { done <- h.Run(def) }()
	if err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		cm, err := cluster.Kube.CoreV1().ConfigMaps(ns).Get(ctx, "falco-rules", metav1.GetOptions{})
		return err == nil && cm.Data["falco_rules.yaml"] == corruptconfig.DefaultCorruptRules, nil
	}); err != nil {
		t.Fatal("the fault never became active")
	}
	return done
}
