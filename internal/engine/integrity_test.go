package engine_test

// Regression tests for verdict integrity: each failed on the code before
// its fix (issue: "A verdict that never lies").

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
	"k8s.io/apimachinery/pkg/runtime/schema"
	kubefake "k8s.io/client-go/kubernetes/fake"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/engine"
)

// rvStore gives runs resourceVersions and refuses a status write that
// carries a stale one, as the API server does (the fake client does not).
// bump changes a run's resourceVersion as `kubectl label` would; failWrites
// makes every status write fail while set.
type rvStore struct {
	*engine.KubeStore
	mu         sync.Mutex
	rv         map[string]int
	failWrites bool
	writes     int
}

func newRVStore() *rvStore { return &rvStore{KubeStore: newStore(), rv: map[string]int{}} }

func (s *rvStore) Create(ctx context.Context, r *v1alpha1.DrillRun) (*v1alpha1.DrillRun, error) {
	out, err := s.KubeStore.Create(ctx, r)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rv[out.Name] = 1
	out.ResourceVersion = "1"
	return out, nil
}

func (s *rvStore) UpdateStatus(ctx context.Context, r *v1alpha1.DrillRun) (*v1alpha1.DrillRun, error) {
	s.mu.Lock()
	s.writes++
	if s.failWrites {
		s.mu.Unlock()
		return nil, errors.New("etcd unavailable")
	}
	if cur := fmt.Sprint(s.rv[r.Name]); r.ResourceVersion != cur {
		s.mu.Unlock()
		return nil, apierrors.NewConflict(schema.GroupResource{Group: "drillbot.io", Resource: "drillruns"}, r.Name,
			errors.New("the object has been modified; please apply your changes to the latest version and try again"))
	}
	s.rv[r.Name]++
	rv := fmt.Sprint(s.rv[r.Name])
	s.mu.Unlock()
	out, err := s.KubeStore.UpdateStatus(ctx, r)
	if err != nil {
		return nil, err
	}
	out.ResourceVersion = rv
	return out, nil
}

func (s *rvStore) Get(ctx context.Context, name string) (*v1alpha1.DrillRun, error) {
	out, err := s.KubeStore.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out.ResourceVersion = fmt.Sprint(s.rv[name])
	return out, nil
}

func (s *rvStore) List(ctx context.Context, sel string) ([]v1alpha1.DrillRun, error) {
	runs, err := s.KubeStore.List(ctx, sel)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range runs {
		runs[i].ResourceVersion = fmt.Sprint(s.rv[runs[i].Name])
	}
	return runs, err
}

func (s *rvStore) bump(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rv[name]++
}

func (s *rvStore) setFail(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failWrites = on
}

// TestUndoDoesNotDependOnAStatusWrite: the revert runs first and is
// recorded afterwards; a label added to the DrillRun during the drill (a
// stale resourceVersion) or a status write that keeps failing never keeps
// the fault in place.
func TestUndoDoesNotDependOnAStatusWrite(t *testing.T) {
	cases := []struct {
		name       string
		disturb    func(s *rvStore, run string)
		wantStored bool // the revert is recorded in the cluster too
	}{
		{name: "someone labels the DrillRun while it recovers", disturb: func(s *rvStore, run string) { s.bump(run) }, wantStored: true},
		{name: "every status write fails from the recovery on", disturb: func(s *rvStore, _ string) { s.setFail(true) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := newRVStore()
			sc := &script{clk: testingclock.NewFakeClock(t0)}
			sc.recover = func(context.Context, engine.Milestones) error {
				runs, _ := store.List(context.Background(), "")
				tc.disturb(store, runs[0].Name)
				return nil
			}
			e := engine.New(engine.Config{Store: store, Kinds: engine.Registry{"scripted": kind{sc}}, Clock: sc.clk, Holder: "test", PersistTimeout: 50 * time.Millisecond})
			run, err := e.Run(context.Background(), definition(5*time.Minute, 0), "test")
			if err != nil {
				t.Fatal(err)
			}
			if len(sc.reverted) != 1 {
				t.Fatalf("the fault was not reverted (calls %v)", sc.calls)
			}
			if run.Status.Journal[0].State != v1alpha1.JournalReverted {
				t.Errorf("journal %s", run.Status.Journal[0].State)
			}
			store.setFail(false)
			stored, err := store.Get(context.Background(), run.Name)
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantStored && (stored.Status.Phase != v1alpha1.PhaseCompleted || stored.Status.Journal[0].State != v1alpha1.JournalReverted) {
				t.Errorf("stored phase %s journal %s: the revert was not recorded after the conflict", stored.Status.Phase, stored.Status.Journal[0].State)
			}
		})
	}
}

// TestFailedRevertStaysAnOpenFault: a run whose undo failed stays
// RevertFailed (not Completed), keeps its target locked, is retried by the
// sweep with backoff, and completes once the undo succeeds, with its FAIL
// verdict kept.
func TestFailedRevertStaysAnOpenFault(t *testing.T) {
	ctx := context.Background()
	store := newStore()
	clk := testingclock.NewFakeClock(t0)
	sc := &script{clk: clk, revertErr: errors.New("admission webhook denied the update")}
	kube := kubefake.NewClientset()
	locks := engine.LeaseLocks{Client: kube.CoordinationV1(), Namespace: "drillbot-system"}
	newE := func(holder string, s *script) *engine.Engine {
		return engine.New(engine.Config{Store: store, Kinds: engine.Registry{"scripted": kind{s}}, Clock: clk, Holder: holder, Locks: locks,
			RevertBackoff: time.Minute, RevertBackoffCap: 4 * time.Minute})
	}
	e := newE("first", sc)
	run, err := e.Run(ctx, definition(5*time.Minute, 0), "test")
	if err != nil {
		t.Fatal(err)
	}
	if run.Status.Phase != v1alpha1.PhaseRevertFailed || run.Status.Verdict != v1alpha1.VerdictFail {
		t.Fatalf("phase %s verdict %s, want RevertFailed FAIL", run.Status.Phase, run.Status.Verdict)
	}
	// The target stays locked, in this process and in another.
	for _, other := range []*engine.Engine{e, newE("second", &script{clk: clk})} {
		if _, err := other.Run(ctx, definition(5*time.Minute, 0), "test"); !errors.Is(err, engine.ErrTargetBusy) {
			t.Errorf("a run on a target with an open fault: %v, want ErrTargetBusy", err)
		}
	}
	// A daemon (another process) retries at once, fails, and backs off.
	sweeper := &script{clk: clk, revertErr: errors.New("still denied")}
	d := newE("daemon", sweeper)
	if _, err := d.ResolveInterrupted(ctx); err == nil || !strings.Contains(err.Error(), "fault may still be active") {
		t.Errorf("sweep error %v, want it to say the fault may still be active", err)
	}
	if n := len(sweeper.reverted); n != 1 {
		t.Fatalf("%d retries, want 1", n)
	}
	if _, _ = d.ResolveInterrupted(ctx); len(sweeper.reverted) != 1 {
		t.Errorf("retried again within the backoff")
	}
	clk.Step(61 * time.Second)
	_, _ = d.ResolveInterrupted(ctx)
	if len(sweeper.reverted) != 2 {
		t.Errorf("%d retries after the backoff, want 2", len(sweeper.reverted))
	}
	clk.Step(61 * time.Second) // the backoff doubled: not yet
	_, _ = d.ResolveInterrupted(ctx)
	if len(sweeper.reverted) != 2 {
		t.Errorf("%d retries within the doubled backoff, want 2", len(sweeper.reverted))
	}
	open, err := d.OpenRuns(ctx)
	if err != nil || len(open) != 1 || open[0].Status.RevertAttempts != 2 {
		t.Fatalf("open runs %v (%v), want the one run with 2 attempts", len(open), err)
	}
	// The cause is fixed: the next retry reverts and completes the run.
	sweeper.mu.Lock()
	sweeper.revertErr = nil
	sweeper.mu.Unlock()
	clk.Step(time.Minute + time.Second)
	done, err := d.ResolveInterrupted(ctx)
	if err != nil || len(done) != 1 {
		t.Fatalf("retry: %d runs, %v", len(done), err)
	}
	r := done[0]
	if r.Status.Phase != v1alpha1.PhaseCompleted || r.Status.Verdict != v1alpha1.VerdictFail || r.Status.Journal[0].State != v1alpha1.JournalReverted {
		t.Errorf("after the retry: phase %s verdict %s journal %s", r.Status.Phase, r.Status.Verdict, r.Status.Journal[0].State)
	}
	if !strings.Contains(strings.Join(r.Status.Findings, "\n"), "every fault reverted by \"daemon\"") {
		t.Errorf("findings %q do not record the late revert", r.Status.Findings)
	}
	if !strings.Contains(r.Status.Reason, "revert failed, fault may still be active") {
		t.Errorf("reason %q: the verdict's reason must keep what happened during the run", r.Status.Reason)
	}
	// The target is free again.
	if _, err := newE("second", &script{clk: clk}).Run(ctx, definition(5*time.Minute, 0), "test"); err != nil {
		t.Errorf("run after the fault was reverted: %v", err)
	}
}

// TestHaltRetriesFailedRevertsAtOnce: RevertActive (drillbot halt) retries
// a RevertFailed run without waiting for the backoff, and a revert that
// fails again leaves it RevertFailed and says so.
func TestHaltRetriesFailedRevertsAtOnce(t *testing.T) {
	ctx := context.Background()
	store := newStore()
	clk := testingclock.NewFakeClock(t0)
	sc := &script{clk: clk, revertErr: errors.New("denied")}
	e := engine.New(engine.Config{Store: store, Kinds: engine.Registry{"scripted": kind{sc}}, Clock: clk, Holder: "a"})
	if _, err := e.Run(ctx, definition(5*time.Minute, 0), "test"); err != nil {
		t.Fatal(err)
	}
	done, err := e.RevertActive(ctx, "incident")
	if err == nil || len(done) != 1 || done[0].Status.Phase != v1alpha1.PhaseRevertFailed {
		t.Fatalf("halt with the revert still failing: %d runs, err %v", len(done), err)
	}
	sc.mu.Lock()
	sc.revertErr = nil
	sc.mu.Unlock()
	done, err = e.RevertActive(ctx, "incident")
	if err != nil || len(done) != 1 || done[0].Status.Phase != v1alpha1.PhaseCompleted {
		t.Fatalf("halt after the cause is gone: %d runs, err %v", len(done), err)
	}
	if open, _ := e.OpenRuns(ctx); len(open) != 0 {
		t.Errorf("%d runs still open", len(open))
	}
}

// TestTargetLockIsPerNamespaceAndAtomic: two drills on one namespace never
// overlap whatever their selectors, and the lock is a create (atomic), not a
// list followed by a create.
func TestTargetLockIsPerNamespaceAndAtomic(t *testing.T) {
	ctx := context.Background()
	a := v1alpha1.Target{Namespace: "shop", Selector: map[string]string{"app": "web"}}
	b := v1alpha1.Target{Namespace: "shop", Selector: map[string]string{"app": "db"}}
	if engine.TargetKey(a) != engine.TargetKey(b) {
		t.Errorf("drills on one namespace have different target keys: %q %q", engine.TargetKey(a), engine.TargetKey(b))
	}
	kube := kubefake.NewClientset()
	locks := engine.LeaseLocks{Client: kube.CoordinationV1(), Namespace: "drillbot-system"}
	state := map[string]bool{"run-1": true} // run -> unfinished
	held := func(_ context.Context, run string) (bool, error) { return state[run], nil }
	if err := locks.Lock(ctx, "shop", "run-1", held); err != nil {
		t.Fatal(err)
	}
	if err := locks.Lock(ctx, "shop", "run-2", held); !errors.Is(err, engine.ErrTargetBusy) {
		t.Errorf("second lock while run-1 is unfinished: %v", err)
	}
	if err := locks.Lock(ctx, "cafe", "run-3", held); err != nil {
		t.Errorf("another namespace: %v", err)
	}
	// Unlock by a run that does not hold it does nothing.
	if err := locks.Unlock(ctx, "shop", "run-2"); err != nil {
		t.Fatal(err)
	}
	if _, err := kube.CoordinationV1().Leases("drillbot-system").Get(ctx, engine.LeaseName("shop"), metav1.GetOptions{}); err != nil {
		t.Errorf("the lock was released by a run that did not hold it: %v", err)
	}
	// A lock left by a finished run is taken over.
	state["run-1"] = false
	if err := locks.Lock(ctx, "shop", "run-4", held); err != nil {
		t.Errorf("takeover of a finished run's lock: %v", err)
	}
	if err := locks.Unlock(ctx, "shop", "run-4"); err != nil {
		t.Fatal(err)
	}
	if _, err := kube.CoordinationV1().Leases("drillbot-system").Get(ctx, engine.LeaseName("shop"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("lock not released by its holder: %v", err)
	}
}

// TestBusyTargetLeavesNoRun: a run refused because another process holds
// the target's lock leaves no DrillRun behind.
func TestBusyTargetLeavesNoRun(t *testing.T) {
	ctx := context.Background()
	store := newStore()
	clk := testingclock.NewFakeClock(t0)
	kube := kubefake.NewClientset()
	locks := engine.LeaseLocks{Client: kube.CoordinationV1(), Namespace: "drillbot-system"}
	// Another process holds the lock for a run it is creating right now.
	if err := locks.Lock(ctx, "shop", "elsewhere-run", func(context.Context, string) (bool, error) { return true, nil }); err != nil {
		t.Fatal(err)
	}
	other := &script{clk: clk}
	_, _ = store.Create(ctx, &v1alpha1.DrillRun{ObjectMeta: metav1.ObjectMeta{Name: "elsewhere-run"}})
	e := engine.New(engine.Config{Store: store, Kinds: engine.Registry{"scripted": kind{other}}, Clock: clk, Holder: "me", Locks: locks})
	if _, err := e.Run(ctx, definition(time.Minute, 0), "test"); !errors.Is(err, engine.ErrTargetBusy) {
		t.Fatalf("err %v, want ErrTargetBusy", err)
	}
	runs, _ := store.List(ctx, "")
	if len(runs) != 1 || len(other.calls) != 0 {
		t.Errorf("%d runs recorded, calls %v: a refused run must leave nothing", len(runs), other.calls)
	}
}

// TestHistoryLimit: Completed runs beyond the drill's limits are deleted,
// PASS and the others counted apart; an open run never is.
func TestHistoryLimit(t *testing.T) {
	mk := func(name string, v v1alpha1.Verdict, p v1alpha1.Phase, minute int) v1alpha1.DrillRun {
		at := metav1.NewMicroTime(t0.Add(time.Duration(minute) * time.Minute))
		return v1alpha1.DrillRun{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: v1alpha1.DrillRunStatus{Phase: p, Verdict: v, FinishedAt: &at}}
	}
	runs := []v1alpha1.DrillRun{
		mk("p1", v1alpha1.VerdictPass, v1alpha1.PhaseCompleted, 1),
		mk("p2", v1alpha1.VerdictPass, v1alpha1.PhaseCompleted, 2),
		mk("p3", v1alpha1.VerdictPass, v1alpha1.PhaseCompleted, 3),
		mk("f1", v1alpha1.VerdictFail, v1alpha1.PhaseRevertFailed, 0), // may hold a fault: kept
		mk("f2", v1alpha1.VerdictFail, v1alpha1.PhaseCompleted, 4),
		mk("i1", v1alpha1.VerdictInconclusive, v1alpha1.PhaseCompleted, 5),
	}
	got := engine.Prunable(runs, 2, 1)
	if want := "p1 f2"; strings.Join(got, " ") != want {
		t.Errorf("prunable %v, want %s", got, want)
	}
	// End to end: a drill keeping one run of each kind.
	ctx := context.Background()
	store := newStore()
	clk := testingclock.NewFakeClock(t0)
	e := newEngine(store, &script{clk: clk})
	def := definition(5*time.Minute, 0)
	def.History.Successful, def.History.Failed = 1, 1
	var last string
	for range 3 {
		r, err := e.Run(ctx, def, "test")
		if err != nil {
			t.Fatal(err)
		}
		last = r.Name
		clk.Step(time.Minute)
	}
	left, _ := store.List(ctx, "")
	if len(left) != 1 || left[0].Name != last {
		t.Errorf("%d runs kept, want only the newest %s", len(left), last)
	}
}
