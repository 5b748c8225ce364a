package main

import (
	"context"
	"errors"
	"log/slog"
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
			stampMarkers(context.Background(), c, tc.open, []string{"cafe", "shop"}, time.Now(), slog.New(slog.DiscardHandler))
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
