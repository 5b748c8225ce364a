package engine_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/engine"
)

// gate is a halt switch the test flips.
type gate struct {
	halted atomic.Bool
	err    error
}

func (g *gate) Halted(context.Context) (string, bool, error) {
	return "maintenance window", g.halted.Load(), g.err
}

func TestHaltSwitch(t *testing.T) {
	cases := []struct {
		name        string
		haltBefore  bool
		gateErr     error
		haltAt      string // "inject": halted between preflight and the first fault; "recover": during recovery
		wantRunErr  bool
		wantCalls   []string
		wantReason  string
		wantJournal int
	}{
		{name: "halted: no run starts", haltBefore: true, wantRunErr: true},
		{name: "unreadable switch counts as halted", gateErr: errors.New("forbidden"), wantRunErr: true},
		{name: "halted before the fault: not injected", haltAt: "inject",
			wantCalls: []string{"preflight", "inject"}, wantReason: "drillbot is halted: maintenance window"},
		{name: "halted during recovery: cancelled and reverted", haltAt: "recover",
			wantCalls: []string{"preflight", "inject", "mutate", "recover", "revert"}, wantReason: "halted", wantJournal: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := &gate{err: tc.gateErr}
			g.halted.Store(tc.haltBefore)
			sc := &script{clk: testingclock.NewFakeClock(t0)}
			var e *engine.Engine
			switch tc.haltAt {
			case "inject":
				sc.preflight = func(context.Context) error { g.halted.Store(true); return nil }
			case "recover":
				sc.recover = func(ctx context.Context, _ engine.Milestones) error {
					g.halted.Store(true)
					if n := e.HaltAll("maintenance window"); n != 1 {
						t.Errorf("HaltAll cancelled %d runs, want 1", n)
					}
					<-ctx.Done()
					return context.Cause(ctx)
				}
			}
			store := newStore()
			e = engine.New(engine.Config{Store: store, Kinds: engine.Registry{"scripted": kind{sc}}, Clock: sc.clk, Holder: "test", Gate: g})
			run, err := e.Run(context.Background(), definition(0, 0), "test")
			if tc.wantRunErr {
				var h *engine.HaltedError
				if !errors.As(err, &h) || run != nil {
					t.Fatalf("Run = %v, %v; want a HaltedError and no run", run, err)
				}
				if runs, _ := store.List(context.Background(), ""); len(runs) != 0 {
					t.Errorf("a halted drillbot recorded %d runs", len(runs))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(sc.calls, tc.wantCalls) {
				t.Errorf("calls %v, want %v", sc.calls, tc.wantCalls)
			}
			if run.Status.Verdict != v1alpha1.VerdictFail || !strings.Contains(run.Status.Reason, tc.wantReason) {
				t.Errorf("verdict %s %q, want FAIL with %q", run.Status.Verdict, run.Status.Reason, tc.wantReason)
			}
			if len(run.Status.Journal) != tc.wantJournal {
				t.Errorf("journal %d entries, want %d", len(run.Status.Journal), tc.wantJournal)
			}
			for _, j := range run.Status.Journal {
				if j.State != v1alpha1.JournalReverted {
					t.Errorf("entry %s %s", j.ID, j.State)
				}
			}
		})
	}
}

func TestRevertActive(t *testing.T) {
	sc := &script{clk: testingclock.NewFakeClock(t0)}
	store := newStore()
	// A run left in Recovering with a recorded fault, as a dead daemon
	// would leave it.
	sc.recover = func(ctx context.Context, _ engine.Milestones) error { return nil }
	e := newEngine(store, sc)
	run, err := e.Run(context.Background(), definition(0, 0), "test")
	if err != nil {
		t.Fatal(err)
	}
	run.Status.Phase = v1alpha1.PhaseRecovering
	run.Status.Journal[0].State = v1alpha1.JournalRecorded
	if _, err := store.UpdateStatus(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	done, err := e.RevertActive(context.Background(), "halted by oncall")
	if err != nil || len(done) != 1 {
		t.Fatalf("RevertActive = %d, %v", len(done), err)
	}
	if r := done[0]; r.Status.Verdict != v1alpha1.VerdictFail || !strings.Contains(r.Status.Reason, "halted during Recovering: halted by oncall") ||
		r.Status.Journal[0].State != v1alpha1.JournalReverted {
		t.Errorf("run %s %q journal %s", r.Status.Verdict, r.Status.Reason, r.Status.Journal[0].State)
	}
}

// TestSweepJudgesHeartbeatsByObservation: a holder is dead when this
// process has seen its heartbeat unchanged for three intervals, on its own
// clock; the holder's clock may be far off either way. Sweeps run every 11s
// (the engine's heartbeat is 10s).
func TestSweepJudgesHeartbeatsByObservation(t *testing.T) {
	at := func(d time.Duration) *metav1.MicroTime { m := metav1.NewMicroTime(t0.Add(d)); return &m }
	cases := []struct {
		name      string
		heartbeat *metav1.MicroTime // the holder's first heartbeat, by its clock
		seconds   int64             // the holder's recorded interval
		beats     bool              // the holder renews it before every sweep
		expiresIn *time.Duration    // the fault's deadline, after the heartbeat, by the holder's clock
		sweeps    int
		want      string // "" = left alone
		wantAt    int    // the sweep that resolves it
	}{
		{name: "holder's clock 35s behind, beating: live", heartbeat: at(-35 * time.Second), beats: true, sweeps: 6},
		{name: "holder's clock 35s behind, stopped: dead after 3 intervals", heartbeat: at(-35 * time.Second), sweeps: 4, want: "interrupted during Recovering", wantAt: 3},
		{name: "holder's clock 10m ahead, stopped: dead after 3 intervals", heartbeat: at(10 * time.Minute), sweeps: 4, want: "interrupted during Recovering", wantAt: 3},
		{name: "no heartbeat (older drillbot): dead after 3 intervals", sweeps: 4, want: "interrupted during Recovering", wantAt: 3},
		{name: "holder beats every 20s, silent 33s: live", heartbeat: at(0), seconds: 20, sweeps: 4},
		{name: "holder beats every 20s, silent 66s: dead", heartbeat: at(0), seconds: 20, sweeps: 7, want: "interrupted during Recovering", wantAt: 6},
		{name: "beating, fault past deadline and revert timeout by the holder's clock", heartbeat: at(time.Hour), beats: true,
			expiresIn: ptr(-11 * time.Minute), sweeps: 2, want: "past its deadline", wantAt: 0},
		{name: "beating, fault past deadline, within revert timeout", heartbeat: at(-time.Hour), beats: true,
			expiresIn: ptr(-9 * time.Minute), sweeps: 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := newStore()
			ctx := context.Background()
			def := definition(time.Minute, 0)
			created, err := store.Create(ctx, &v1alpha1.DrillRun{ObjectMeta: metav1.ObjectMeta{Name: "r"},
				Spec: v1alpha1.DrillRunSpec{Drill: def.Name, Scenario: "scripted", Snapshot: def.Spec}})
			if err != nil {
				t.Fatal(err)
			}
			entry := v1alpha1.JournalEntry{ID: "1-break", State: v1alpha1.JournalRecorded}
			if tc.heartbeat != nil {
				entry.RecordedAt = *tc.heartbeat
			}
			if tc.expiresIn != nil {
				exp := metav1.NewMicroTime(tc.heartbeat.Add(*tc.expiresIn))
				entry.ExpiresAt = &exp
			}
			created.Status = v1alpha1.DrillRunStatus{Phase: v1alpha1.PhaseRecovering, Holder: "other", HeartbeatAt: tc.heartbeat, HeartbeatSeconds: tc.seconds,
				Journal: []v1alpha1.JournalEntry{entry}}
			if _, err := store.UpdateStatus(ctx, created); err != nil {
				t.Fatal(err)
			}
			sc := &script{clk: testingclock.NewFakeClock(t0)}
			e := newEngine(store, sc)
			for i := range tc.sweeps {
				if i > 0 {
					sc.clk.Step(11 * time.Second)
					if tc.beats {
						r, err := store.Get(ctx, "r")
						if err != nil {
							t.Fatal(err)
						}
						hb := metav1.NewMicroTime(r.Status.HeartbeatAt.Add(11 * time.Second))
						r.Status.HeartbeatAt = &hb
						if _, err := store.UpdateStatus(ctx, r); err != nil {
							t.Fatal(err)
						}
					}
				}
				done, err := e.ResolveInterrupted(ctx)
				if err != nil {
					t.Fatal(err)
				}
				resolved := len(done) > 0
				if tc.want == "" || i < tc.wantAt {
					if resolved || len(sc.reverted) != 0 {
						t.Fatalf("sweep %d resolved a live run: %s", i, done[0].Status.Reason)
					}
					continue
				}
				if i == tc.wantAt {
					if len(done) != 1 || !strings.Contains(done[0].Status.Reason, tc.want) || len(sc.reverted) != 1 {
						t.Fatalf("sweep %d resolved %d (%v), reverted %d; want %q", i, len(done), done, len(sc.reverted), tc.want)
					}
				}
			}
			if tc.want != "" && len(sc.reverted) != 1 {
				t.Errorf("reverted %d times, want once", len(sc.reverted))
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
