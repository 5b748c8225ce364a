package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/metrics"
	"github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
)

// TestCatchUpFromRecordedRuns: after downtime, a drill whose slot passed
// is due once, measured from its newest scheduled run in the cluster
// (manual runs do not count).
func TestCatchUpFromRecordedRuns(t *testing.T) {
	ctx := context.Background()
	store := &engine.KubeStore{Namespace: "drillbot-system", Client: dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{v1alpha1.DrillRunResource: "DrillRunList"})}
	t0 := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	for i, r := range []struct {
		trigger string
		at      time.Time
	}{{"schedule", t0}, {"schedule", t0.AddDate(0, -1, 0)}, {"manual", t0.AddDate(0, 0, 10)}} {
		created, err := store.Create(ctx, &v1alpha1.DrillRun{ObjectMeta: metav1.ObjectMeta{Name: "nr-" + string(rune('a'+i))},
			Spec: v1alpha1.DrillRunSpec{Drill: "nr", Trigger: r.trigger}})
		if err != nil {
			t.Fatal(err)
		}
		at := metav1.NewMicroTime(r.at)
		created.Status = v1alpha1.DrillRunStatus{Phase: v1alpha1.PhaseCompleted, StartedAt: &at}
		if _, err := store.UpdateStatus(ctx, created); err != nil {
			t.Fatal(err)
		}
	}
	sched := &engine.Scheduler{}
	if err := seedLastRuns(ctx, store, sched); err != nil {
		t.Fatal(err)
	}
	monthly, _ := cron.ParseStandard("0 3 1 * *")
	last := sched.LastRun("nr")
	if !last.Equal(t0) {
		t.Errorf("last scheduled run %v, want %v (the manual run is not a schedule)", last, t0)
	}
	// Down from Nov 20 to Dec 5: the Dec 1 slot was missed, so it is due
	// now, once; the next is Jan 1.
	now := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	if next, due := engine.NextRun(monthly, last, now); !due || !next.Equal(now) {
		t.Errorf("NextRun = %v, %v; want due now", next, due)
	}
	if next, due := engine.NextRun(monthly, now, now); due || !next.Equal(time.Date(2027, 1, 1, 3, 0, 0, 0, time.UTC)) {
		t.Errorf("after the catch-up: %v, %v", next, due)
	}
}

// TestMarkerLoopNeverStampsATargetWithAnUnfinishedRun: a stamp in a target
// that Velero is restoring would overwrite the restored marker and falsify
// the drill's RPO; when the runs cannot be read, nothing is stamped.
func TestMarkerLoopNeverStampsATargetWithAnUnfinishedRun(t *testing.T) {
	optedIn := func(name string) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v1alpha1.LabelAllowDisaster: "true"}}}
	}
	restoring := v1alpha1.DrillRun{ObjectMeta: metav1.ObjectMeta{Name: "shop-restore-1"},
		Spec:   v1alpha1.DrillRunSpec{Snapshot: v1alpha1.DrillSpec{Target: v1alpha1.Target{Namespace: "shop"}}},
		Status: v1alpha1.DrillRunStatus{Phase: v1alpha1.PhaseVerifying}}
	cases := []struct {
		name    string
		open    openRuns
		stamped []string
	}{
		{"a run holds shop", func(context.Context) ([]v1alpha1.DrillRun, error) { return []v1alpha1.DrillRun{restoring}, nil }, []string{"cafe"}},
		{"no run", func(context.Context) ([]v1alpha1.DrillRun, error) { return nil, nil }, []string{"cafe", "shop"}},
		{"runs unknown", func(context.Context) ([]v1alpha1.DrillRun, error) { return nil, errors.New("etcd unavailable") }, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := kubefake.NewClientset(optedIn("shop"), optedIn("cafe"))
			stampMarkers(context.Background(), c, tc.open, []string{"cafe", "shop"}, nil, time.Now(), slog.New(slog.DiscardHandler))
			var stamped []string
			for _, ns := range []string{"cafe", "shop"} {
				if _, err := c.CoreV1().ConfigMaps(ns).Get(context.Background(), namespacerestore.MarkerName, metav1.GetOptions{}); err == nil {
					stamped = append(stamped, ns)
				}
			}
			if strings.Join(stamped, ",") != strings.Join(tc.stamped, ",") {
				t.Errorf("stamped %v, want %v", stamped, tc.stamped)
			}
		})
	}
}

// TestMarkerLoopReadsDoNotGrowWithTargets: a tick reads the opted-in
// namespaces in one labelled list whatever the number of targets, and
// writes one apply per opted-in target and nothing anywhere else (not in a
// namespace without the label, terminating, or protected).
func TestMarkerLoopReadsDoNotGrowWithTargets(t *testing.T) {
	now := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)
	for _, n := range []int{10, 500} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var objs []runtime.Object
			var targets, want []string
			for i := range n {
				ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("team-%d", i), Labels: map[string]string{}}}
				switch i % 5 {
				case 0: // not opted in
				case 1: // opted in, terminating
					ns.Labels[v1alpha1.LabelAllowDisaster] = "true"
					ns.Status.Phase = corev1.NamespaceTerminating
				default:
					ns.Labels[v1alpha1.LabelAllowDisaster] = "true"
					want = append(want, ns.Name)
				}
				objs = append(objs, ns)
				targets = append(targets, ns.Name)
			}
			// Labelled but protected, and a target that does not exist.
			objs = append(objs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system", Labels: map[string]string{v1alpha1.LabelAllowDisaster: "true"}}})
			targets = append(targets, "kube-system", "gone")
			c := kubefake.NewClientset(objs...)
			c.ClearActions()
			stampMarkers(context.Background(), c, func(context.Context) ([]v1alpha1.DrillRun, error) { return nil, nil }, targets, nil, now, slog.New(slog.DiscardHandler))
			var reads, writes []string
			for _, a := range c.Actions() {
				switch a.GetVerb() {
				case "get", "list", "watch":
					reads = append(reads, a.GetVerb()+" "+a.GetResource().Resource)
				default:
					if a.GetResource().Resource != "configmaps" {
						t.Errorf("%s %s: the loop writes markers only", a.GetVerb(), a.GetResource().Resource)
					}
					writes = append(writes, a.GetNamespace())
				}
			}
			if strings.Join(reads, ",") != "list namespaces" {
				t.Errorf("reads %v, want one list of namespaces", reads)
			}
			slices.Sort(writes)
			slices.Sort(want)
			if !slices.Equal(writes, want) {
				t.Errorf("wrote markers in %d namespaces, want %d (the opted-in, not terminating): %v", len(writes), len(want), writes)
			}
			cm, err := c.CoreV1().ConfigMaps(want[0]).Get(context.Background(), namespacerestore.MarkerName, metav1.GetOptions{})
			if err != nil || cm.Data[namespacerestore.MarkerKey] != now.Format(time.RFC3339Nano) {
				t.Errorf("marker in %s: %v, %v; want %s", want[0], cm, err, now.Format(time.RFC3339Nano))
			}
		})
	}
}

// TestRestartedDaemonShowsAFaultWhoseRevertFailed: the active-fault gauges
// are seeded from the runs in the cluster, so DrillbotFaultPastDeadline
// does not clear because the daemon restarted.
func TestRestartedDaemonShowsAFaultWhoseRevertFailed(t *testing.T) {
	ctx := context.Background()
	store := &engine.KubeStore{Namespace: "drillbot-system", Client: dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{v1alpha1.DrillRunResource: "DrillRunList"})}
	created, err := store.Create(ctx, &v1alpha1.DrillRun{ObjectMeta: metav1.ObjectMeta{Name: "falco-1"},
		Spec: v1alpha1.DrillRunSpec{Drill: "corrupt-falco-rules", Scenario: "corrupt-config"}})
	if err != nil {
		t.Fatal(err)
	}
	at := metav1.NewMicroTime(time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC))
	exp := metav1.NewMicroTime(at.Add(30 * time.Minute))
	created.Status = v1alpha1.DrillRunStatus{Phase: v1alpha1.PhaseRevertFailed, Verdict: v1alpha1.VerdictFail, FinishedAt: &at,
		Journal: []v1alpha1.JournalEntry{{ID: "1-corrupt-configmap", State: v1alpha1.JournalFailed, ExpiresAt: &exp}}}
	if _, err := store.UpdateStatus(ctx, created); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	m.Drill(drill.Definition{Name: "corrupt-falco-rules", Spec: v1alpha1.DrillSpec{Scenario: "corrupt-config"}})
	if err := seedMetrics(ctx, store, m); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	families, _ := reg.Gather()
	for _, f := range families {
		for _, mt := range f.GetMetric() {
			got[f.GetName()] = mt.GetGauge().GetValue()
		}
	}
	if got["drillbot_active_faults"] != 1 || got["drillbot_fault_expiry_timestamp_seconds"] != float64(exp.Unix()) {
		t.Errorf("active faults %v, expiry %v; want 1 and %d", got["drillbot_active_faults"], got["drillbot_fault_expiry_timestamp_seconds"], exp.Unix())
	}
}
