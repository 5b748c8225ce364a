package main

import (
	"context"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/engine"
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
