package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
)

var t0 = time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)

// script is a scenario whose steps the test writes. It records calls.
type script struct {
	clk       *testingclock.FakeClock
	preflight func(ctx context.Context) error
	inject    func(ctx context.Context, j engine.Journal) error
	recover   func(ctx context.Context, m engine.Milestones) error
	verify    func(ctx context.Context) (engine.Verification, error)
	revertErr error

	mu       sync.Mutex
	calls    []string
	reverted []v1alpha1.JournalEntry
	revertOK bool // the context Revert got was live
}

func (s *script) call(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, name)
}

func (s *script) Preflight(ctx context.Context) error {
	s.call("preflight")
	if s.preflight != nil {
		return s.preflight(ctx)
	}
	return nil
}

func (s *script) Inject(ctx context.Context, j engine.Journal) error {
	s.call("inject")
	if s.inject != nil {
		return s.inject(ctx, j)
	}
	if err := j.Record(ctx, "break", "break the thing", map[string]string{"original": "bytes"}); err != nil {
		return err
	}
	s.call("mutate")
	return nil
}

func (s *script) recovered() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.calls {
		if c == "verify" {
			return true
		}
	}
	return false
}

func (s *script) Recover(ctx context.Context, m engine.Milestones) error {
	s.call("recover")
	if s.recover != nil {
		return s.recover(ctx, m)
	}
	s.clk.Step(30 * time.Second)
	m.Mark("step-one")
	s.clk.Step(60 * time.Second)
	m.Mark("step-two")
	return nil
}

func (s *script) Verify(ctx context.Context) (engine.Verification, error) {
	s.call("verify")
	if s.verify != nil {
		return s.verify(ctx)
	}
	return engine.Verification{}, nil
}

func (s *script) Revert(ctx context.Context, e v1alpha1.JournalEntry) error {
	s.call("revert")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reverted = append(s.reverted, e)
	s.revertOK = ctx.Err() == nil
	return s.revertErr
}

type kind struct{ sc *script }

func (k kind) ValidateParams(v1alpha1.DrillSpec, *field.Path) field.ErrorList { return nil }
func (k kind) New(drill.Definition, string) (engine.Scenario, error)          { return k.sc, nil }

func newStore() *engine.KubeStore {
	client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{v1alpha1.DrillRunResource: "DrillRunList"})
	return &engine.KubeStore{Client: client, Namespace: "drillbot-system"}
}

func definition(rto, rpo time.Duration) drill.Definition {
	d := drill.Definition{Name: "test-drill", Spec: v1alpha1.DrillSpec{
		Scenario:   "scripted",
		Objectives: v1alpha1.Objectives{RTO: v1alpha1.Duration(rto.String())},
		Target:     v1alpha1.Target{Namespace: "shop"},
		Timeouts:   v1alpha1.Timeouts{Recover: "10m"},
	}}
	if rpo > 0 {
		d.Spec.Objectives.RPO = v1alpha1.Duration(rpo.String())
	}
	d.FromSpec()
	return d
}

// wantVerdict checks a run's verdict and that its reason mentions each of
// reasons.
func wantVerdict(t *testing.T, st v1alpha1.DrillRunStatus, verdict v1alpha1.Verdict, reasons ...string) {
	t.Helper()
	if st.Verdict != verdict {
		t.Errorf("verdict %s (%s), want %s", st.Verdict, st.Reason, verdict)
	}
	for _, w := range reasons {
		if !strings.Contains(st.Reason, w) {
			t.Errorf("reason %q does not mention %q", st.Reason, w)
		}
	}
}

func newEngine(store engine.RunStore, sc *script) *engine.Engine {
	return engine.New(engine.Config{Store: store, Kinds: engine.Registry{"scripted": kind{sc}}, Clock: sc.clk, Holder: "test"})
}

func TestRunVerdicts(t *testing.T) {
	dataAt := func(before time.Duration) func(context.Context) (engine.Verification, error) {
		// The data timestamp is relative to the disaster, which happens at t0.
		return func(context.Context) (engine.Verification, error) {
			ts := t0.Add(-before)
			return engine.Verification{DataTimestamp: &ts, RPOSource: "marker"}, nil
		}
	}
	cases := []struct {
		name        string
		rto, rpo    time.Duration
		setup       func(s *script)
		wantVerdict v1alpha1.Verdict
		wantReason  []string
		wantCalls   string
		wantRTO     string
		wantRPO     string
	}{
		{
			name: "pass within both targets", rto: 5 * time.Minute, rpo: time.Hour,
			setup:       func(s *script) { s.verify = dataAt(10 * time.Minute) },
			wantVerdict: v1alpha1.VerdictPass, wantReason: []string{"RTO 1m30s within 5m0s", "RPO 10m0s within 1h0m0s"},
			wantCalls: "preflight inject mutate recover verify revert", wantRTO: "1m30s", wantRPO: "10m0s",
		},
		{
			// A rehearsal before the fault (pod-kill's NetworkPolicy check)
			// is journaled but is not the disaster: the RTO starts at the
			// fault's own entry.
			name: "a rehearsal's journal entry does not start the RTO", rto: 5 * time.Minute,
			setup: func(s *script) {
				s.inject = func(ctx context.Context, j engine.Journal) error {
					if err := engine.RecordRehearsal(ctx, j, "rehearse", "d", map[string]string{}); err != nil {
						return err
					}
					s.clk.Step(45 * time.Second)
					if err := j.Record(ctx, "break", "d", map[string]string{}); err != nil {
						return err
					}
					s.call("mutate")
					return nil
				}
			},
			wantVerdict: v1alpha1.VerdictPass, wantReason: []string{"RTO 1m30s within 5m0s"},
			wantCalls: "preflight inject mutate recover verify revert revert", wantRTO: "1m30s",
		},
		{
			name: "rto over target fails", rto: time.Minute,
			wantVerdict: v1alpha1.VerdictFail, wantReason: []string{"RTO 1m30s exceeds target 1m0s"},
			wantCalls: "preflight inject mutate recover verify revert", wantRTO: "1m30s",
		},
		{
			name: "rpo over target fails", rto: 5 * time.Minute, rpo: 5 * time.Minute,
			setup:       func(s *script) { s.verify = dataAt(6 * time.Minute) },
			wantVerdict: v1alpha1.VerdictFail, wantReason: []string{"RPO 6m0s exceeds target 5m0s"},
			wantCalls: "preflight inject mutate recover verify revert", wantRTO: "1m30s", wantRPO: "6m0s",
		},
		{
			name: "refused in preflight touches nothing", rto: time.Minute,
			setup: func(s *script) {
				s.preflight = func(context.Context) error { return engine.Refuse("shop is not opted in") }
			},
			wantVerdict: v1alpha1.VerdictFail, wantReason: []string{"preflight: refused: shop is not opted in"},
			wantCalls: "preflight",
		},
		{
			name: "inject failing after its journal entry is reverted", rto: time.Minute,
			setup: func(s *script) {
				s.inject = func(ctx context.Context, j engine.Journal) error {
					if err := j.Record(ctx, "break", "d", map[string]string{}); err != nil {
						return err
					}
					return errors.New("api said no")
				}
			},
			wantVerdict: v1alpha1.VerdictFail, wantReason: []string{"inject: api said no"},
			wantCalls: "preflight inject revert",
		},
		{
			name: "recovery timeout fails and reverts", rto: time.Minute,
			setup: func(s *script) {
				s.recover = func(ctx context.Context, _ engine.Milestones) error {
					s.clk.Step(11 * time.Minute) // past the 10m recover deadline
					<-ctx.Done()
					return ctx.Err()
				}
			},
			wantVerdict: v1alpha1.VerdictFail, wantReason: []string{"recovery: recovering phase timed out after 10m0s"},
			wantCalls: "preflight inject mutate recover revert",
		},
		{
			name: "revert failure is a FAIL that says the fault may be active", rto: 5 * time.Minute,
			setup:       func(s *script) { s.revertErr = errors.New("restore refused") },
			wantVerdict: v1alpha1.VerdictFail, wantReason: []string{"revert failed, fault may still be active", "restore refused"},
			wantCalls: "preflight inject mutate recover verify revert", wantRTO: "1m30s",
		},
		{
			name: "verify failures fail", rto: 5 * time.Minute,
			setup: func(s *script) {
				s.verify = func(context.Context) (engine.Verification, error) {
					return engine.Verification{Failures: []string{"not restored: deployments.apps/web"}}, nil
				}
			},
			wantVerdict: v1alpha1.VerdictFail, wantReason: []string{"not restored: deployments.apps/web"},
			wantCalls: "preflight inject mutate recover verify revert", wantRTO: "1m30s",
		},
		{
			// Rule 5 in every phase: the API server's own "could not
			// answer" (a 503, a timeout) says nothing about the target.
			name: "an unanswered read in preflight is inconclusive", rto: time.Minute,
			setup: func(s *script) {
				s.preflight = func(context.Context) error {
					return fmt.Errorf("list backups: %w", apierrors.NewServiceUnavailable("etcd leader changed"))
				}
			},
			wantVerdict: v1alpha1.VerdictInconclusive, wantReason: []string{"preflight could not read", "etcd leader changed"},
			wantCalls: "preflight",
		},
		{
			name: "an unanswered read in recovery is inconclusive, and the fault reverted", rto: 5 * time.Minute,
			setup: func(s *script) {
				s.recover = func(context.Context, engine.Milestones) error {
					return fmt.Errorf("watch pods: %w", apierrors.NewTimeoutError("request did not complete", 1))
				}
			},
			wantVerdict: v1alpha1.VerdictInconclusive, wantReason: []string{"recovery could not read", "request did not complete"},
			wantCalls: "preflight inject mutate recover revert",
		},
		{
			name: "an error a scenario marks unknown is inconclusive", rto: time.Minute,
			setup: func(s *script) {
				s.inject = func(context.Context, engine.Journal) error {
					return engine.Unknown(errors.New("read the backup's resource list: DownloadRequest expired"))
				}
			},
			wantVerdict: v1alpha1.VerdictInconclusive, wantReason: []string{"inject could not read", "DownloadRequest expired"},
			wantCalls: "preflight inject",
		},
		{
			// A refusal is not unknown: the target is not allowed.
			name: "a forbidden read is a failure, not unknown", rto: time.Minute,
			setup: func(s *script) {
				s.preflight = func(context.Context) error {
					return fmt.Errorf("list backups: %w", apierrors.NewForbidden(schema.GroupResource{Resource: "backups"}, "", errors.New("RBAC")))
				}
			},
			wantVerdict: v1alpha1.VerdictFail, wantReason: []string{"preflight: list backups"},
			wantCalls: "preflight",
		},
		{
			// Rule 5: an error is "unknown", not evidence either way: a
			// verification that could not run is neither PASS nor FAIL.
			name: "verify error is inconclusive, not a failure", rto: 5 * time.Minute,
			setup: func(s *script) {
				s.verify = func(context.Context) (engine.Verification, error) {
					return engine.Verification{}, errors.New("list deployments: the server is currently unable to handle the request")
				}
			},
			wantVerdict: v1alpha1.VerdictInconclusive, wantReason: []string{"verify could not complete", "unable to handle the request"},
			wantCalls: "preflight inject mutate recover verify revert", wantRTO: "1m30s",
		},
		{
			// What Verify found before its error still counts.
			name: "verify failures found before an error still fail", rto: 5 * time.Minute,
			setup: func(s *script) {
				s.verify = func(context.Context) (engine.Verification, error) {
					return engine.Verification{Failures: []string{"not restored: deployments.apps/web"}}, errors.New("read marker: timeout")
				}
			},
			wantVerdict: v1alpha1.VerdictFail, wantReason: []string{"not restored: deployments.apps/web"},
			wantCalls: "preflight inject mutate recover verify revert", wantRTO: "1m30s",
		},
		{
			name: "no effect is inconclusive", rto: 5 * time.Minute,
			setup: func(s *script) {
				s.verify = func(context.Context) (engine.Verification, error) {
					return engine.Verification{Inconclusive: "fault had no effect"}, nil
				}
			},
			wantVerdict: v1alpha1.VerdictInconclusive, wantReason: []string{"fault had no effect"},
			wantCalls: "preflight inject mutate recover verify revert", wantRTO: "1m30s",
		},
		{
			name: "rpo as a blind window up to a milestone", rto: 5 * time.Minute, rpo: time.Minute,
			setup: func(s *script) {
				s.verify = func(context.Context) (engine.Verification, error) {
					return engine.Verification{RPOMilestone: "step-one", RPOSource: "detection"}, nil
				}
			},
			wantVerdict: v1alpha1.VerdictPass, wantReason: []string{"RPO 30s within 1m0s"},
			wantCalls: "preflight inject mutate recover verify revert", wantRTO: "1m30s", wantRPO: "30s",
		},
		{
			// The marker was stamped over the restored data (or by a skewed
			// clock): the window is unknown, never 0.
			name: "recovered data newer than the disaster is inconclusive, never RPO 0", rto: 5 * time.Minute, rpo: time.Hour,
			setup:       func(s *script) { s.verify = dataAt(-40 * time.Second) },
			wantVerdict: v1alpha1.VerdictInconclusive, wantReason: []string{"RPO not measurable", "40s after the disaster"},
			wantCalls: "preflight inject mutate recover verify revert", wantRTO: "1m30s",
		},
		{
			name: "rpo target without a data timestamp is inconclusive", rto: 5 * time.Minute, rpo: time.Hour,
			wantVerdict: v1alpha1.VerdictInconclusive, wantReason: []string{"no recovered data timestamp"},
			wantCalls: "preflight inject mutate recover verify revert", wantRTO: "1m30s",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sc := &script{clk: testingclock.NewFakeClock(t0)}
			if tc.setup != nil {
				tc.setup(sc)
			}
			store := newStore()
			run, err := newEngine(store, sc).Run(context.Background(), definition(tc.rto, tc.rpo), "test")
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(sc.calls, " "); got != tc.wantCalls {
				t.Errorf("calls %q, want %q", got, tc.wantCalls)
			}
			st := run.Status
			wantVerdict(t, st, tc.wantVerdict, tc.wantReason...)
			if st.RTO != tc.wantRTO || st.RPO != tc.wantRPO {
				t.Errorf("RTO %q RPO %q, want %q %q", st.RTO, st.RPO, tc.wantRTO, tc.wantRPO)
			}
			// What the engine returned is what the cluster holds.
			stored, err := store.Get(context.Background(), run.Name)
			if err != nil {
				t.Fatal(err)
			}
			wantPhase := v1alpha1.PhaseCompleted
			if sc.revertErr != nil {
				// A fault whose undo failed keeps its run open.
				wantPhase = v1alpha1.PhaseRevertFailed
			}
			if stored.Status.Phase != wantPhase || stored.Status.Verdict != tc.wantVerdict {
				t.Errorf("stored run phase %s verdict %s, want %s %s", stored.Status.Phase, stored.Status.Verdict, wantPhase, tc.wantVerdict)
			}
			for _, j := range stored.Status.Journal {
				want := v1alpha1.JournalReverted
				if tc.setup != nil && sc.revertErr != nil {
					want = v1alpha1.JournalFailed
				}
				if j.State != want {
					t.Errorf("journal entry %s is %s, want %s", j.ID, j.State, want)
				}
			}
			if len(sc.reverted) > 0 && !sc.revertOK {
				t.Error("Revert got a cancelled context")
			}
		})
	}
}

func TestRunStampsDisasterAndBreakdown(t *testing.T) {
	sc := &script{clk: testingclock.NewFakeClock(t0)}
	sc.preflight = func(context.Context) error { sc.clk.Step(5 * time.Second); return nil }
	run, err := newEngine(newStore(), sc).Run(context.Background(), definition(5*time.Minute, 0), "test")
	if err != nil {
		t.Fatal(err)
	}
	st := run.Status
	// Preflight time is not part of the RTO: the disaster starts at the journal write.
	if !st.DisasterAt.Time.Equal(t0.Add(5*time.Second)) || !st.RecoveredAt.Time.Equal(t0.Add(95*time.Second)) {
		t.Errorf("disaster %v recovered %v", st.DisasterAt, st.RecoveredAt)
	}
	want := []v1alpha1.Span{{Name: "step-one", Duration: "30s"}, {Name: "step-two", Duration: "1m0s"}}
	if len(st.Breakdown) != 2 || st.Breakdown[0] != want[0] || st.Breakdown[1] != want[1] {
		t.Errorf("breakdown %+v, want %+v", st.Breakdown, want)
	}
	if len(st.Journal) != 1 || string(st.Journal[0].Undo) != `{"original":"bytes"}` {
		t.Errorf("journal %+v", st.Journal)
	}
}

// failingJournalStore fails every status write once a journal entry is in it.
type failingJournalStore struct{ *engine.KubeStore }

func (s failingJournalStore) UpdateStatus(ctx context.Context, r *v1alpha1.DrillRun) (*v1alpha1.DrillRun, error) {
	if len(r.Status.Journal) > 0 {
		return nil, errors.New("etcd unavailable")
	}
	return s.KubeStore.UpdateStatus(ctx, r)
}

func TestFaultIsNotInjectedWhenTheJournalIsNotDurable(t *testing.T) {
	sc := &script{clk: testingclock.NewFakeClock(t0)}
	e := engine.New(engine.Config{Store: failingJournalStore{newStore()}, Kinds: engine.Registry{"scripted": kind{sc}},
		Clock: sc.clk, PersistTimeout: time.Second})
	run, err := e.Run(context.Background(), definition(time.Minute, 0), "test")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.Join(sc.calls, " "), "mutate") {
		t.Fatalf("fault injected without a durable journal entry: %v", sc.calls)
	}
	if run.Status.Verdict != v1alpha1.VerdictFail || !strings.Contains(run.Status.Reason, "not durable, fault not injected") {
		t.Errorf("verdict %s reason %q", run.Status.Verdict, run.Status.Reason)
	}
}

func TestCancelledRunStillReverts(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	sc := &script{clk: testingclock.NewFakeClock(t0)}
	sc.recover = func(rctx context.Context, _ engine.Milestones) error {
		cancel() // SIGTERM arrives while recovering
		<-rctx.Done()
		return rctx.Err()
	}
	run, err := newEngine(newStore(), sc).Run(ctx, definition(time.Minute, 0), "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.reverted) != 1 || !sc.revertOK {
		t.Fatalf("reverted %d entries (live context %v)", len(sc.reverted), sc.revertOK)
	}
	if run.Status.Verdict != v1alpha1.VerdictFail || !strings.Contains(run.Status.Reason, "interrupted") {
		t.Errorf("verdict %s reason %q", run.Status.Verdict, run.Status.Reason)
	}
}

func TestOneRunPerTarget(t *testing.T) {
	store := newStore()
	sc := &script{clk: testingclock.NewFakeClock(t0)}
	e := newEngine(store, sc)
	started := make(chan struct{})
	release := make(chan struct{})
	sc.recover = func(ctx context.Context, _ engine.Milestones) error {
		close(started)
		<-release
		return nil
	}
	done := make(chan error)
	go func() { _, err := e.Run(context.Background(), definition(time.Minute, 0), "first"); done <- err }()
	<-started
	// Same process: refused.
	if _, err := e.Run(context.Background(), definition(time.Minute, 0), "second"); !errors.Is(err, engine.ErrTargetBusy) {
		t.Errorf("second run in the same process: err %v, want ErrTargetBusy", err)
	}
	// Another process (a new engine on the same store): refused from the cluster's record.
	other := newEngine(store, &script{clk: sc.clk})
	if _, err := other.Run(context.Background(), definition(time.Minute, 0), "third"); !errors.Is(err, engine.ErrTargetBusy) {
		t.Errorf("run from another process: err %v, want ErrTargetBusy", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestResolveInterruptedRevertsRecordedFaults(t *testing.T) {
	store := newStore()
	ctx := context.Background()
	def := definition(time.Minute, 0)
	run := &v1alpha1.DrillRun{
		ObjectMeta: metav1.ObjectMeta{Name: "test-drill-x"},
		Spec:       v1alpha1.DrillRunSpec{Drill: def.Name, Scenario: "scripted", Snapshot: def.Spec},
	}
	created, err := store.Create(ctx, run)
	if err != nil {
		t.Fatal(err)
	}
	created.Status = v1alpha1.DrillRunStatus{Phase: v1alpha1.PhaseRecovering, Holder: "old-pod",
		Journal: []v1alpha1.JournalEntry{
			{ID: "1-break", Action: "break", State: v1alpha1.JournalRecorded, Undo: []byte(`{"original":"bytes"}`)},
			{ID: "0-done", Action: "break", State: v1alpha1.JournalReverted},
		}}
	if _, err := store.UpdateStatus(ctx, created); err != nil {
		t.Fatal(err)
	}
	sc := &script{clk: testingclock.NewFakeClock(t0)}
	e := newEngine(store, sc)
	// The first sweep only sees the heartbeat; three silent intervals later
	// the holder is judged dead.
	if done, err := e.ResolveInterrupted(ctx); err != nil || len(done) != 0 {
		t.Fatalf("first sweep resolved %d runs (%v): a holder is never judged on one look", len(done), err)
	}
	sc.clk.Step(31 * time.Second)
	done, err := e.ResolveInterrupted(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.reverted) != 1 || sc.reverted[0].ID != "1-break" || string(sc.reverted[0].Undo) != `{"original":"bytes"}` {
		t.Fatalf("reverted %+v, want only the recorded entry with its undo data", sc.reverted)
	}
	if len(done) != 1 || done[0].Status.Verdict != v1alpha1.VerdictFail ||
		!strings.Contains(done[0].Status.Reason, `interrupted during Recovering: drillbot "old-pod" stopped`) {
		t.Fatalf("resolved %+v", done)
	}
	// A second start finds nothing left to do.
	sc2 := &script{clk: sc.clk}
	if again, err := newEngine(store, sc2).ResolveInterrupted(ctx); err != nil || len(again) != 0 || len(sc2.reverted) != 0 {
		t.Errorf("second resolve: %d runs, %d reverts, err %v", len(again), len(sc2.reverted), err)
	}
}

// checkKind is a targetless, read-only kind: a posture check.
type checkKind struct{ kind }

func (checkKind) ReadOnly() bool   { return true }
func (checkKind) Targetless() bool { return true }

// TestCheckErrorsAreInconclusive: a check injects nothing, so an error in
// its reads (even a plain one, even its phase's deadline) says nothing about
// the cluster's posture (EVIDENCE.md rule 5); a refusal still fails.
func TestCheckErrorsAreInconclusive(t *testing.T) {
	cases := []struct {
		name        string
		recoverErr  error
		wantVerdict v1alpha1.Verdict
		wantReason  string
	}{
		{name: "a read that failed", recoverErr: errors.New("list schedules: connection reset by peer"),
			wantVerdict: v1alpha1.VerdictInconclusive, wantReason: "recovery could not read what it needs: list schedules: connection reset"},
		{name: "a refusal", recoverErr: engine.Refuse("no namespace matches"),
			wantVerdict: v1alpha1.VerdictFail, wantReason: "recovery: refused: no namespace matches"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sc := &script{clk: testingclock.NewFakeClock(t0)}
			sc.recover = func(context.Context, engine.Milestones) error { return tc.recoverErr }
			def := definition(time.Minute, 0)
			def.Spec.Target = v1alpha1.Target{}
			e := engine.New(engine.Config{Store: newStore(), Kinds: engine.Registry{"scripted": checkKind{kind{sc}}}, Clock: sc.clk, Holder: "test"})
			run, err := e.Run(context.Background(), def, "test")
			if err != nil {
				t.Fatal(err)
			}
			wantVerdict(t, run.Status, tc.wantVerdict, tc.wantReason)
		})
	}
}
