package main

// Integration tests of the daemon as real processes on the local cluster:
// two replicas with leader election, the leader killed with SIGKILL while
// its drill holds a fault, and the new leader reverting it exactly once.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/scenarios/corruptconfig"
	"github.com/drillbot-io/drillbot/test/localcluster"
	"github.com/drillbot-io/drillbot/test/testharness"
)

var cluster *localcluster.Cluster

func TestMain(m *testing.M) { os.Exit(localcluster.RunTests(m, &cluster)) }

const rules = "- rule: shell in container\n  priority: WARNING\n"

// daemon is one `drillbot serve` process.
type daemon struct {
	cmd  *exec.Cmd
	addr string // its /metrics, /healthz, /readyz
	mu   sync.Mutex
	logs strings.Builder
}

func (d *daemon) saw(s string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strings.Contains(d.logs.String(), s)
}

func (d *daemon) String() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.logs.String()
}

func startDaemon(t *testing.T, bin, drills string, extra ...string) *daemon {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	d := &daemon{cmd: exec.Command(bin, "serve", "--kubeconfig", cluster.Kubeconfig, "-n", "drillbot-system", "--drills", drills,
		"--listen", addr, "--leader-elect", "--heartbeat-interval", "1s", "--sweep-interval", "1s"), addr: addr}
	d.cmd.Args = append(d.cmd.Args, extra...)
	r, w := io.Pipe()
	d.cmd.Stdout, d.cmd.Stderr = w, w
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			d.mu.Lock()
			d.logs.WriteString(sc.Text() + "\n")
			d.mu.Unlock()
		}
	}()
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.cmd.Process.Kill(); _ = d.cmd.Wait(); w.Close() })
	return d
}

func drillDir(t *testing.T, doc string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "drill.yaml"), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func eventually(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		return cond(), nil
	}); err != nil {
		t.Fatalf("%s: not within %s", what, timeout)
	}
}

func TestLeaderElectionAndTakeover(t *testing.T) {
	localcluster.Require(t, cluster)
	ctx := context.Background()
	ns := "falco-" + localcluster.RandomSuffix()
	falco(t, ns)
	bin := testharness.Binary(t)
	// A holds a drill that corrupts Falco's rules and, with nothing to
	// detect it, stays in recovery; B holds a harmless probe. Both fire
	// every few seconds, so whoever leads runs its own.
	a := startDaemon(t, bin, drillDir(t, falcoDrill("takeover-falco", ns, "@every 2s", "10m")))
	eventually(t, "A leads", 30*time.Second, func() bool { return a.saw("leading: scheduling drills") })
	b := startDaemon(t, bin, drillDir(t, fmt.Sprintf(`apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata: {name: takeover-probe}
spec:
  scenario: admission-probe
  schedule: "@every 2s"
  minInterval: 1s
  objectives: {rto: 1m}
  target: {namespace: %s}
  params: {attempt: {image: registry.example/x:1}}
`, ns)))
	eventually(t, "B stands by", 30*time.Second, func() bool { return b.saw("standing by") })

	// A's drill corrupts the rules; a second firing finds the target busy.
	waitCorrupt(t, ns)
	eventually(t, "A refuses a second run on the busy target", 30*time.Second, func() bool { return a.saw(engine.ErrTargetBusy.Error()) })
	// ... and records the slot it held, so the schedule has no gap.
	eventually(t, "the held slot recorded", 30*time.Second, func() bool {
		for _, h := range busyHeldRuns(t, "takeover-falco") {
			if h.Status.Phase == v1alpha1.PhaseCompleted && h.Status.Verdict == v1alpha1.VerdictInconclusive && h.Status.Stop.Before && len(h.Status.Journal) == 0 {
				return true
			}
		}
		return false
	})
	if b.saw("leading: scheduling drills") || b.saw("takeover-probe-") {
		t.Fatalf("the standby acted:\n%s", b)
	}

	// kill -9 the leader mid-fault.
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B takes over", 45*time.Second, func() bool { return b.saw("leading: scheduling drills") })
	var falcoRun v1alpha1.DrillRun
	eventually(t, "B reverts A's run", 45*time.Second, func() bool {
		runs := listRuns(t, "takeover-falco")
		if len(runs) != 1 || runs[0].Status.Phase != v1alpha1.PhaseCompleted {
			return false
		}
		falcoRun = runs[0]
		return true
	})
	st := falcoRun.Status
	if st.Verdict != v1alpha1.VerdictFail || !strings.Contains(st.Reason, "interrupted during Recovering") {
		t.Errorf("A's run: %s %q", st.Verdict, st.Reason)
	}
	if len(st.Journal) != 1 || st.Journal[0].State != v1alpha1.JournalReverted {
		t.Errorf("journal %s", localcluster.JSON(st.Journal))
	}
	cm, err := cluster.Kube.CoreV1().ConfigMaps(ns).Get(ctx, "falco-rules", metav1.GetOptions{})
	if err != nil || cm.Data["falco_rules.yaml"] != rules {
		t.Errorf("rules after takeover: %q (%v)", cm.Data["falco_rules.yaml"], err)
	}
	// B now runs its own drills; A's drill was never run again.
	eventually(t, "B runs drills", 30*time.Second, func() bool {
		return slices.ContainsFunc(listRuns(t, "takeover-probe"), func(r v1alpha1.DrillRun) bool { return r.Status.Holder != "" })
	})
	for _, r := range listRuns(t, "takeover-probe") {
		if r.Status.Holder == "" {
			continue // just created: the status (holder first) is written right after
		}
		if !strings.HasSuffix(r.Status.Holder, fmt.Sprintf("/%d", b.cmd.Process.Pid)) {
			t.Errorf("run %s held by %q, not the leader", r.Name, r.Status.Holder)
		}
	}
	if n := len(listRuns(t, "takeover-falco")); n != 1 {
		t.Errorf("%d falco runs: the fault was injected again", n)
	}
}

// listRuns lists the drill's runs that were not held on a busy target
// (those only record a scheduled slot; busyHeldRuns lists them).
func listRuns(t *testing.T, drillName string) []v1alpha1.DrillRun {
	t.Helper()
	runs, _ := splitRuns(t, drillName)
	return runs
}

// busyHeldRuns lists the drill's scheduled runs held on a busy target.
func busyHeldRuns(t *testing.T, drillName string) []v1alpha1.DrillRun {
	t.Helper()
	_, held := splitRuns(t, drillName)
	return held
}

func splitRuns(t *testing.T, drillName string) (ran, held []v1alpha1.DrillRun) {
	t.Helper()
	store := &engine.KubeStore{Client: cluster.Dynamic, Namespace: "drillbot-system"}
	runs, err := store.List(context.Background(), v1alpha1.LabelDrill+"="+drillName)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		if st := r.Status.Stop; st != nil && st.Kind == v1alpha1.StopTargetBusy {
			held = append(held, r)
		} else {
			ran = append(ran, r)
		}
	}
	return ran, held
}

func falco(t *testing.T, ns string) {
	t.Helper()
	if err := testharness.Falco(context.Background(), cluster.Kube, ns, rules); err != nil {
		t.Fatal(err)
	}
}

func writeFile(path, data string) error { return os.WriteFile(path, []byte(data), 0o600) }

// TestSIGTERMRevertsTheCurrentRun: a daemon told to stop while its drill
// holds a fault reverts it before it exits (the chart's grace period is
// 120s; this takes a second or two).
func TestSIGTERMRevertsTheCurrentRun(t *testing.T) {
	localcluster.Require(t, cluster)
	ctx := context.Background()
	ns := "falco-term-" + localcluster.RandomSuffix()
	falco(t, ns)
	bin := testharness.Binary(t)
	d := startDaemon(t, bin, drillDir(t, falcoDrill("term-falco", ns, "@every 2s", "10m")))
	waitCorrupt(t, ns)
	start := time.Now()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- d.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit: %v\n%s", err, d)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("still running 60s after SIGTERM:\n%s", d)
	}
	t.Logf("stopped %s after SIGTERM", time.Since(start).Round(time.Millisecond))
	runs := listRuns(t, "term-falco")
	if len(runs) != 1 {
		t.Fatalf("%d runs", len(runs))
	}
	st := runs[0].Status
	if st.Phase != v1alpha1.PhaseCompleted || st.Verdict != v1alpha1.VerdictFail || !strings.Contains(st.Reason, "interrupted") {
		t.Errorf("run %s %s %q", st.Phase, st.Verdict, st.Reason)
	}
	if len(st.Journal) != 1 || st.Journal[0].State != v1alpha1.JournalReverted {
		t.Errorf("journal %s", localcluster.JSON(st.Journal))
	}
	cm, err := cluster.Kube.CoreV1().ConfigMaps(ns).Get(ctx, "falco-rules", metav1.GetOptions{})
	if err != nil || cm.Data["falco_rules.yaml"] != rules {
		t.Errorf("rules after SIGTERM: %q (%v)", cm.Data["falco_rules.yaml"], err)
	}
}

// falcoDrill is a corrupt-config drill on the Falco stand-in in ns;
// schedule may be empty (on demand).
func falcoDrill(name, ns, schedule, recover string) string {
	doc := fmt.Sprintf("apiVersion: drillbot.io/v1alpha1\nkind: Drill\nmetadata: {name: %s}\nspec:\n  scenario: corrupt-config\n", name)
	if schedule != "" {
		// Seconds apart: the documented override of the 1h minimum interval.
		doc += fmt.Sprintf("  schedule: %q\n  minInterval: 1s\n", schedule)
	}
	return doc + fmt.Sprintf("  objectives: {rto: 20m}\n  timeouts: {recover: %s}\n  target: {namespace: %s}\n"+
		"  params: {configMap: falco-rules, key: falco_rules.yaml, daemonSet: falco}\n", recover, ns)
}

// waitCorrupt waits until the Falco stand-in's rules hold drillbot's
// corrupt rules: the fault is active.
func waitCorrupt(t *testing.T, ns string) {
	t.Helper()
	eventually(t, "the fault active", 30*time.Second, func() bool {
		cm, err := cluster.Kube.CoreV1().ConfigMaps(ns).Get(context.Background(), "falco-rules", metav1.GetOptions{})
		return err == nil && cm.Data["falco_rules.yaml"] == corruptconfig.DefaultCorruptRules
	})
}

// TestLostLeadershipStopsTheDaemon: when another identity takes the Lease
// (as after a network partition), the daemon stops acting and exits.
func TestLostLeadershipStopsTheDaemon(t *testing.T) {
	localcluster.Require(t, cluster)
	ctx := context.Background()
	bin := testharness.Binary(t)
	// Its own lease name, so the other daemon tests' leases do not matter.
	dir := drillDir(t, `apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata: {name: lost-idle}
spec:
  scenario: admission-probe
  objectives: {rto: 1m}
  target: {namespace: drill-idle}
  params: {attempt: {image: registry.example/x:1}}
`)
	d := startDaemon(t, bin, dir, "--leader-election-lease", "drillbot-lost")
	eventually(t, "it leads", 30*time.Second, func() bool { return d.saw("leading: scheduling drills") })
	leases := cluster.Kube.CoordinationV1().Leases("drillbot-system")
	eventually(t, "the Lease taken by another identity", 10*time.Second, func() bool {
		l, err := leases.Get(ctx, "drillbot-lost", metav1.GetOptions{})
		if err != nil {
			return false
		}
		other, now := "partitioned-elsewhere", metav1.NewMicroTime(time.Now())
		l.Spec.HolderIdentity, l.Spec.RenewTime, l.Spec.AcquireTime = &other, &now, &now
		_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
		return err == nil
	})
	exited := make(chan error, 1)
	go func() { exited <- d.cmd.Wait() }()
	select {
	case err := <-exited:
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != exitError || !d.saw("leadership lost, exiting") {
			t.Errorf("exit %v, want code %d after 'leadership lost':\n%s", err, exitError, d)
		}
	case <-time.After(45 * time.Second):
		t.Fatalf("still running after losing the Lease:\n%s", d)
	}
}
