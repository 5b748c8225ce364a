package engine_test

import (
	"context"
	"errors"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
)

// TestScheduledRunOnBusyTargetIsRecordedHeld: a scheduled run that finds
// its target busy is evidence too (its slot is not a gap): recorded as
// held, nothing touched. An on-demand run leaves nothing (its caller is
// told).
func TestScheduledRunOnBusyTargetIsRecordedHeld(t *testing.T) {
	for _, tt := range []struct {
		trigger string
		runs    int
	}{{engine.TriggerSchedule, 2}, {"cli", 1}} {
		t.Run(tt.trigger, func(t *testing.T) {
			ctx := context.Background()
			store, _, sc, e := busyEngine(t)
			run, err := e.Run(ctx, definition(time.Minute, 0), tt.trigger)
			if !errors.Is(err, engine.ErrTargetBusy) {
				t.Fatalf("err %v, want ErrTargetBusy", err)
			}
			runs, _ := store.List(ctx, "")
			if len(runs) != tt.runs || len(sc.calls) != 0 {
				t.Fatalf("%d runs recorded, calls %v", len(runs), sc.calls)
			}
			if tt.trigger != engine.TriggerSchedule {
				if run != nil {
					t.Fatalf("run %v returned", run.Name)
				}
				return
			}
			held, err := store.Get(ctx, run.Name)
			if err != nil {
				t.Fatal(err)
			}
			st := held.Status
			if st.Phase != v1alpha1.PhaseCompleted || st.Verdict != v1alpha1.VerdictInconclusive || st.Stop == nil ||
				st.Stop.Kind != v1alpha1.StopTargetBusy || !st.Stop.Before || len(st.Journal) != 0 || st.StartedAt == nil {
				t.Fatalf("held run status = %+v", st)
			}
		})
	}
}

// TestUnarchivedRunsAreNotPruned: with an archive, a run the archive has
// not taken is its only record and stays beyond the history limits.
func TestUnarchivedRunsAreNotPruned(t *testing.T) {
	ctx := context.Background()
	store := newStore()
	clk := testingclock.NewFakeClock(t0)
	e := engine.New(engine.Config{Store: store, Kinds: engine.Registry{"scripted": kind{&script{clk: clk}}}, Clock: clk, Holder: "me", KeepUnarchived: true})
	def := definition(5*time.Minute, 0)
	def.History.Successful, def.History.Failed = 1, 1
	var names []string
	for range 3 {
		r, err := e.Run(ctx, def, "test")
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, r.Name)
		clk.Step(time.Minute)
	}
	if left, _ := store.List(ctx, ""); len(left) != 3 {
		t.Fatalf("%d runs kept, want all 3 (none archived)", len(left))
	}
	// Once the first two are archived, the limit applies to the archived.
	for _, n := range names[:2] {
		r, _ := store.Get(ctx, n)
		r.Status.Archive = &v1alpha1.ArchiveStatus{Digest: "sha256:x", Seq: 1}
		if _, err := store.UpdateStatus(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Run(ctx, def, "test"); err != nil {
		t.Fatal(err)
	}
	left, _ := store.List(ctx, "")
	kept := map[string]bool{}
	for _, r := range left {
		kept[r.Name] = true
	}
	if len(left) != 3 || kept[names[0]] || !kept[names[1]] || !kept[names[2]] {
		t.Fatalf("kept %v: want the newest archived run and the two not archived", kept)
	}
}

// TestRunRecordsDigestAndInitiator: the version of the drill a run tested
// and who started it are on the run from its creation.
func TestRunRecordsDigestAndInitiator(t *testing.T) {
	ctx := context.Background()
	store := newStore()
	clk := testingclock.NewFakeClock(t0)
	e := engine.New(engine.Config{Store: store, Kinds: engine.Registry{"scripted": kind{&script{clk: clk}}}, Clock: clk, Holder: "me"})
	def := definition(5*time.Minute, 0)
	r, err := e.Run(ctx, def, "cli", engine.StartedBy(v1alpha1.Initiator{Kind: v1alpha1.InitiatorUser, User: "alice", Groups: []string{"sre"}}))
	if err != nil {
		t.Fatal(err)
	}
	if r.Spec.DefinitionDigest != engine.DefinitionDigest(def.Spec) || len(r.Spec.DefinitionDigest) != len("sha256:")+64 {
		t.Errorf("digest %q", r.Spec.DefinitionDigest)
	}
	if b := r.Spec.StartedBy; b == nil || b.User != "alice" || b.Holder != "me" || b.String() != "user alice" {
		t.Errorf("startedBy %+v", b)
	}
	def.Spec.Objectives.RTO = "10m"
	if engine.DefinitionDigest(def.Spec) == r.Spec.DefinitionDigest {
		t.Error("a changed drill has the same digest")
	}
	r, _ = e.Run(ctx, def, engine.TriggerSchedule)
	if r.Spec.StartedBy == nil || r.Spec.StartedBy.Kind != engine.TriggerSchedule {
		t.Errorf("scheduled run's startedBy %+v", r.Spec.StartedBy)
	}
}

// TestHeldSlotsArePruned: held slots count against the history limits as
// soon as they are recorded, not only when the drill next runs (an
// endurance run found 12 runs kept against limits of 10).
func TestHeldSlotsArePruned(t *testing.T) {
	ctx := context.Background()
	store, clk, _, e := busyEngine(t)
	def := definition(time.Minute, 0)
	def.History = drill.History{Successful: 3, Failed: 2}
	for range 5 {
		if _, err := e.Run(ctx, def, engine.TriggerSchedule); !errors.Is(err, engine.ErrTargetBusy) {
			t.Fatalf("err %v, want ErrTargetBusy", err)
		}
		clk.Step(time.Minute)
	}
	runs, _ := store.List(ctx, v1alpha1.LabelDrill+"="+def.Name)
	if len(runs) != 2 {
		t.Errorf("%d held runs kept, want the failed limit's 2", len(runs))
	}
}

// busyEngine is an engine whose target "shop" is locked by another,
// recorded run.
func busyEngine(t *testing.T) (*engine.KubeStore, *testingclock.FakeClock, *script, *engine.Engine) {
	t.Helper()
	ctx := context.Background()
	store := newStore()
	clk := testingclock.NewFakeClock(t0)
	locks := engine.LeaseLocks{Client: kubefake.NewClientset().CoordinationV1(), Namespace: "drillbot-system"}
	if err := locks.Lock(ctx, "shop", "elsewhere-run", func(context.Context, string) (bool, error) { return true, nil }); err != nil {
		t.Fatal(err)
	}
	_, _ = store.Create(ctx, &v1alpha1.DrillRun{ObjectMeta: metav1.ObjectMeta{Name: "elsewhere-run"}})
	sc := &script{clk: clk}
	return store, clk, sc, engine.New(engine.Config{Store: store, Kinds: engine.Registry{"scripted": kind{sc}}, Clock: clk, Holder: "me", Locks: locks})
}
