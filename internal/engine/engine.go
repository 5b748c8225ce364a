package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/clock"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
)

// ErrTargetBusy is returned when another run holds the drill's target.
var ErrTargetBusy = errors.New("another drill run is active on this target")

// Failpoints are the steps where a crash matters most: before the undo is
// durable, after it but before the fault, with the fault injected, during
// recovery, and after an undo but before it is recorded as done.
var Failpoints = []string{"before-journal", "after-journal", "after-inject", "during-recover", "during-undo"}

// HaltedError says drillbot is halted: no new run starts and no fault is
// injected until it is resumed.
type HaltedError struct{ Reason string }

func (e *HaltedError) Error() string { return "drillbot is halted: " + e.Reason }

// Gate is the halt switch the engine checks before a run and before every
// fault. Halted returns the reason when halted. An error reading it counts
// as halted: on any doubt, no fault.
type Gate interface {
	Halted(ctx context.Context) (reason string, halted bool, err error)
}

func (e *Engine) checkGate(ctx context.Context) error {
	if e.gate == nil {
		return nil
	}
	reason, halted, err := e.gate.Halted(ctx)
	if err != nil {
		return &HaltedError{Reason: "the halt switch cannot be read: " + err.Error()}
	}
	if halted {
		return &HaltedError{Reason: reason}
	}
	return nil
}

// HaltAll cancels every run in progress with a HaltedError: each stops its
// current step and reverts its faults.
func (e *Engine) HaltAll(reason string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, cancel := range e.cancels {
		cancel(&HaltedError{Reason: reason})
	}
	return len(e.cancels)
}

// EventType says what an Event reports.
type EventType string

// Event types.
const (
	EventPhaseStarted  EventType = "PhaseStarted"
	EventPhaseFinished EventType = "PhaseFinished"
	EventMilestone     EventType = "Milestone"
	EventFinished      EventType = "Finished"
)

// Event is a step of a run, for progress output and notifications.
type Event struct {
	Type    EventType
	Run     *v1alpha1.DrillRun
	Phase   v1alpha1.Phase
	Message string
	Err     error
}

// Observer receives a run's events. Observe must not block for long: a slow
// observer delays the run it watches.
type Observer interface {
	Observe(ctx context.Context, ev Event)
}

// Config configures an Engine.
type Config struct {
	Store  RunStore
	Kinds  Registry
	Clock  clock.WithDelayedExecution
	Logger *slog.Logger
	// Holder identifies this process on the runs it holds.
	Holder    string
	Observers []Observer
	// PersistTimeout bounds each write of a run's status.
	PersistTimeout time.Duration
	// Gate is the halt switch (nil: never halted).
	Gate Gate
	// Failpoint, when set, is called at each crash-relevant step (see
	// Failpoints); the crash tests make it kill the process there.
	Failpoint func(step string)
	// Heartbeat is how often a running run's holder renews its heartbeat
	// (default 10s). A run whose heartbeat is older than three of these
	// was left by a process that died.
	Heartbeat time.Duration
}

// Engine runs drills.
type Engine struct {
	store     RunStore
	kinds     Registry
	clock     clock.WithDelayedExecution
	log       *slog.Logger
	holder    string
	observers []Observer
	persistTO time.Duration

	gate      Gate
	heartbeat time.Duration
	failpoint func(string)

	mu      sync.Mutex
	active  map[string]string                  // target key -> run name
	cancels map[string]context.CancelCauseFunc // run name -> its cancel
}

// New returns an Engine. A nil Clock is the real clock and a nil Logger
// discards.
func New(cfg Config) *Engine {
	e := &Engine{
		store: cfg.Store, kinds: cfg.Kinds, clock: cfg.Clock, log: cfg.Logger,
		holder: cfg.Holder, observers: cfg.Observers, persistTO: cfg.PersistTimeout, gate: cfg.Gate,
		active: map[string]string{}, cancels: map[string]context.CancelCauseFunc{},
	}
	if e.clock == nil {
		e.clock = clock.RealClock{}
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.persistTO == 0 {
		e.persistTO = 30 * time.Second
	}
	e.failpoint = cfg.Failpoint
	if e.failpoint == nil {
		e.failpoint = func(string) {}
	}
	e.heartbeat = cfg.Heartbeat
	if e.heartbeat == 0 {
		e.heartbeat = 10 * time.Second
	}
	return e
}

// TargetKey identifies a drill's target for the one-run-per-target rule.
func TargetKey(t v1alpha1.Target) string {
	keys := make([]string, 0, len(t.Selector))
	for k, v := range t.Selector {
		keys = append(keys, k+"="+v)
	}
	sort.Strings(keys)
	return t.Namespace + "/" + t.Name + "?" + strings.Join(keys, ",")
}

// targetLabel is a label-safe hash of a target key.
func targetLabel(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])[:16]
}

// Run executes one drill now and returns the finished DrillRun. The error is
// non-nil only when no run could be recorded (target busy, store down); a
// drill that fails is a run with verdict FAIL, not an error.
func (e *Engine) Run(ctx context.Context, def drill.Definition, trigger string) (*v1alpha1.DrillRun, error) {
	kind, ok := e.kinds[def.Spec.Scenario]
	if !ok {
		return nil, fmt.Errorf("drill %s: unknown scenario kind %q", def.Name, def.Spec.Scenario)
	}
	if err := e.checkGate(ctx); err != nil {
		return nil, fmt.Errorf("drill %s: %w", def.Name, err)
	}
	key := TargetKey(def.Spec.Target)
	release, err := e.claim(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("drill %s: %w", def.Name, err)
	}
	defer release()

	now := e.clock.Now()
	name := fmt.Sprintf("%s-%s-%s", def.Name, now.UTC().Format("20060102-150405"), utilrand.String(4))
	run := &v1alpha1.DrillRun{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{
				v1alpha1.LabelDrill:    def.Name,
				v1alpha1.LabelScenario: def.Spec.Scenario,
				v1alpha1.LabelTarget:   targetLabel(key),
			},
		},
		Spec: v1alpha1.DrillRunSpec{Drill: def.Name, Scenario: def.Spec.Scenario, Trigger: trigger, Source: def.Source, Snapshot: def.Spec},
	}
	created, err := e.store.Create(ctx, run)
	if err != nil {
		return nil, fmt.Errorf("drill %s: record run: %w", def.Name, err)
	}
	rs := &runState{e: e, def: def, run: created, log: e.log.With("drill", def.Name, "scenario", def.Spec.Scenario, "run", created.Name)}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	e.mu.Lock()
	e.active[key] = created.Name
	e.cancels[created.Name] = cancel
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.cancels, created.Name)
		e.mu.Unlock()
	}()

	rs.run.Status = v1alpha1.DrillRunStatus{
		Phase: v1alpha1.PhasePending, Holder: e.holder, StartedAt: rs.stamp(), HeartbeatAt: rs.stamp(), HeartbeatSeconds: e.heartbeatSeconds(),
		RTOTarget: string(def.Spec.Objectives.RTO), RPOTarget: string(def.Spec.Objectives.RPO),
	}
	if err := rs.persist(ctx); err != nil {
		return rs.run, fmt.Errorf("drill %s: %w", def.Name, err)
	}
	rs.startHeartbeat(ctx)
	sc, err := kind.New(def, created.Name)
	if err != nil {
		rs.out.failures = append(rs.out.failures, "scenario: "+err.Error())
		return rs.finish(ctx, nil), nil
	}
	rs.execute(ctx, sc)
	return rs.finish(ctx, sc), nil
}

// claim takes the target for one run, in this process and in the cluster.
func (e *Engine) claim(ctx context.Context, key string) (func(), error) {
	e.mu.Lock()
	if holder, busy := e.active[key]; busy {
		e.mu.Unlock()
		return nil, fmt.Errorf("%w (%s)", ErrTargetBusy, holder)
	}
	e.active[key] = "" // reserved; filled with the run name once created
	e.mu.Unlock()
	release := func() {
		e.mu.Lock()
		delete(e.active, key)
		e.mu.Unlock()
	}
	runs, err := e.store.List(ctx, v1alpha1.LabelTarget+"="+targetLabel(key))
	if err != nil {
		release()
		return nil, err
	}
	for _, r := range runs {
		if r.Status.Phase != v1alpha1.PhaseCompleted {
			release()
			return nil, fmt.Errorf("%w (%s, phase %q)", ErrTargetBusy, r.Name, r.Status.Phase)
		}
	}
	return release, nil
}

// outcome collects what the phases found; decide turns it into a verdict.
type outcome struct {
	failures     []string
	inconclusive string
	rto, rpo     *time.Duration
	findings     []string
}

type runState struct {
	e   *Engine
	def drill.Definition
	log *slog.Logger

	stopHeartbeat func() // nil when no heartbeat runs

	mu  sync.Mutex // guards run while a scenario marks milestones
	run *v1alpha1.DrillRun
	out outcome
}

func (rs *runState) stamp() *metav1.MicroTime {
	t := metav1.NewMicroTime(rs.e.clock.Now())
	return &t
}

// persist writes the run's status, retrying transient errors. It runs on a
// context that outlives the run's own cancellation, so a shutdown still
// records what happened.
func (rs *runState) persist(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rs.e.persistTO)
	defer cancel()
	rs.mu.Lock()
	defer rs.mu.Unlock()
	backoff := wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Steps: 5, Cap: 5 * time.Second}
	var lastErr error
	err := wait.ExponentialBackoffWithContext(ctx, backoff, func(ctx context.Context) (bool, error) {
		updated, err := rs.e.store.UpdateStatus(ctx, rs.run)
		if err != nil {
			if isConflict(err) {
				return false, err // someone else changed our run: stop
			}
			lastErr = err
			rs.log.Warn("writing run status failed, retrying", "err", err)
			return false, nil
		}
		status := rs.run.Status
		rs.run = updated
		rs.run.Status = status
		return true, nil
	})
	if err != nil {
		if lastErr != nil {
			err = errors.Join(err, lastErr)
		}
		return fmt.Errorf("persist run status: %w", err)
	}
	return nil
}

func (rs *runState) emit(ctx context.Context, ev Event) {
	rs.mu.Lock()
	ev.Run = rs.run.DeepCopy()
	rs.mu.Unlock()
	for _, o := range rs.e.observers {
		o.Observe(ctx, ev)
	}
}

// TimeoutError is the cause of a phase's cancellation when its deadline passed.
type TimeoutError struct {
	Phase   v1alpha1.Phase
	Timeout time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("%s phase timed out after %s", strings.ToLower(string(e.Phase)), e.Timeout)
}

// withDeadline is context.WithTimeout on the engine's clock, so a fake clock
// drives phase deadlines in tests.
func (e *Engine) withDeadline(ctx context.Context, phase v1alpha1.Phase, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	t := e.clock.AfterFunc(d, func() { cancel(&TimeoutError{Phase: phase, Timeout: d}) })
	return ctx, func() { t.Stop(); cancel(context.Canceled) }
}

// phase runs fn as one step of the state machine under its own deadline.
func (rs *runState) phase(ctx context.Context, p v1alpha1.Phase, timeout time.Duration, fn func(context.Context) error) error {
	rs.mu.Lock()
	rs.run.Status.Phase = p
	rs.run.Status.Steps = append(rs.run.Status.Steps, v1alpha1.Step{Phase: p, StartedAt: *rs.stamp()})
	rs.mu.Unlock()
	if err := rs.persist(ctx); err != nil {
		return err
	}
	rs.log.Info("phase started", "phase", p, "timeout", timeout)
	rs.emit(ctx, Event{Type: EventPhaseStarted, Phase: p})

	pctx, cancel := rs.e.withDeadline(ctx, p, timeout)
	err := fn(pctx)
	if err != nil && pctx.Err() != nil {
		if cause := context.Cause(pctx); cause != nil && !errors.Is(err, cause) {
			err = fmt.Errorf("%w: %w", cause, err)
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("interrupted (%w)", err)
		}
	}
	cancel()

	rs.mu.Lock()
	step := &rs.run.Status.Steps[len(rs.run.Status.Steps)-1]
	step.FinishedAt = rs.stamp()
	if err != nil {
		step.Error = err.Error()
	}
	rs.mu.Unlock()
	if perr := rs.persist(ctx); perr != nil {
		err = errors.Join(err, perr)
	}
	if err != nil {
		rs.log.Warn("phase failed", "phase", p, "err", err)
	} else {
		rs.log.Info("phase finished", "phase", p)
	}
	rs.emit(ctx, Event{Type: EventPhaseFinished, Phase: p, Err: err})
	return err
}

// Record implements Journal.
func (rs *runState) Record(ctx context.Context, action, description string, undo any) error {
	if err := rs.e.checkGate(ctx); err != nil {
		return fmt.Errorf("journal %s: fault not injected: %w", action, err)
	}
	raw, err := json.Marshal(undo)
	if err != nil {
		return fmt.Errorf("journal %s: encode undo: %w", action, err)
	}
	rs.mu.Lock()
	entry := v1alpha1.JournalEntry{
		ID:     fmt.Sprintf("%d-%s", len(rs.run.Status.Journal)+1, action),
		Action: action, Description: description, Undo: raw,
		State: v1alpha1.JournalRecorded, RecordedAt: *rs.stamp(),
	}
	if rs.def.Timeouts.Recover > 0 {
		exp := metav1.NewMicroTime(entry.RecordedAt.Add(rs.def.Timeouts.Inject + rs.def.Timeouts.Recover + rs.def.Timeouts.Verify))
		entry.ExpiresAt = &exp
	}
	rs.run.Status.Journal = append(rs.run.Status.Journal, entry)
	rs.mu.Unlock()
	rs.e.failpoint("before-journal")
	if err := rs.persist(ctx); err != nil {
		rs.mu.Lock()
		rs.run.Status.Journal = rs.run.Status.Journal[:len(rs.run.Status.Journal)-1]
		rs.mu.Unlock()
		return fmt.Errorf("journal %s: not durable, fault not injected: %w", action, err)
	}
	rs.mu.Lock()
	if rs.run.Status.DisasterAt == nil {
		rs.run.Status.DisasterAt = rs.stamp()
	}
	rs.mu.Unlock()
	rs.log.Info("undo recorded", "action", action, "description", description)
	rs.e.failpoint("after-journal")
	return nil
}

// Mark implements Milestones.
func (rs *runState) Mark(name string) {
	rs.mu.Lock()
	rs.run.Status.Milestones = append(rs.run.Status.Milestones, v1alpha1.Milestone{Name: name, At: *rs.stamp()})
	rs.mu.Unlock()
	rs.log.Info("milestone", "name", name)
	rs.emit(context.Background(), Event{Type: EventMilestone, Message: name})
}

func (rs *runState) execute(ctx context.Context, sc Scenario) {
	t := rs.def.Timeouts
	if err := rs.phase(ctx, v1alpha1.PhasePreflight, t.Preflight, sc.Preflight); err != nil {
		rs.out.failures = append(rs.out.failures, "preflight: "+err.Error())
		return
	}
	if err := rs.phase(ctx, v1alpha1.PhaseInjecting, t.Inject, func(ctx context.Context) error { return sc.Inject(ctx, rs) }); err != nil {
		rs.out.failures = append(rs.out.failures, "inject: "+err.Error())
		return
	}
	rs.e.failpoint("after-inject")
	rs.mu.Lock()
	if rs.run.Status.DisasterAt == nil { // a scenario that recorded nothing (e.g. a dry-run probe)
		rs.run.Status.DisasterAt = rs.stamp()
	}
	rs.mu.Unlock()
	if err := rs.phase(ctx, v1alpha1.PhaseRecovering, t.Recover, func(ctx context.Context) error {
		rs.e.failpoint("during-recover")
		return sc.Recover(ctx, rs)
	}); err != nil {
		rs.out.failures = append(rs.out.failures, "recovery: "+err.Error())
		return
	}
	rs.mu.Lock()
	rs.run.Status.RecoveredAt = rs.stamp()
	rto := rs.run.Status.RecoveredAt.Sub(rs.run.Status.DisasterAt.Time)
	rs.out.rto = &rto
	rs.run.Status.Breakdown = Breakdown(rs.run.Status.DisasterAt.Time, rs.run.Status.RecoveredAt.Time, rs.run.Status.Milestones)
	rs.mu.Unlock()

	var v Verification
	err := rs.phase(ctx, v1alpha1.PhaseVerifying, t.Verify, func(ctx context.Context) error {
		var err error
		v, err = sc.Verify(ctx)
		return err
	})
	if err != nil {
		rs.out.failures = append(rs.out.failures, "verify: "+err.Error())
	}
	rs.out.failures = append(rs.out.failures, v.Failures...)
	rs.out.findings = append(rs.out.findings, v.Findings...)
	rs.out.inconclusive = v.Inconclusive
	if v.RPOMilestone != "" {
		rs.mu.Lock()
		for _, m := range rs.run.Status.Milestones {
			if m.Name == v.RPOMilestone {
				rpo := m.At.Sub(rs.run.Status.DisasterAt.Time)
				rs.out.rpo = &rpo
				rs.run.Status.RPOSource = v.RPOSource
			}
		}
		rs.mu.Unlock()
	}
	if v.DataTimestamp != nil {
		rs.mu.Lock()
		rpo, note := RPO(rs.run.Status.DisasterAt.Time, *v.DataTimestamp)
		rs.run.Status.RPOSource = v.RPOSource
		rs.mu.Unlock()
		rs.out.rpo = &rpo
		if note != "" {
			rs.out.findings = append(rs.out.findings, note)
		}
	}
}

// revertAll undoes every journal entry not yet reverted, newest first. It
// runs on a context detached from the run's, so a cancelled or timed-out run
// still reverts, under the revert phase's own deadline.
func (rs *runState) revertAll(ctx context.Context, sc Scenario) error {
	rs.mu.Lock()
	pending := 0
	for _, e := range rs.run.Status.Journal {
		if e.State != v1alpha1.JournalReverted {
			pending++
		}
	}
	rs.mu.Unlock()
	if pending == 0 {
		return nil
	}
	ctx = context.WithoutCancel(ctx)
	return rs.phase(ctx, v1alpha1.PhaseReverting, rs.def.Timeouts.Revert, func(ctx context.Context) error {
		var errs []error
		for i := len(rs.run.Status.Journal) - 1; i >= 0; i-- {
			rs.mu.Lock()
			entry := rs.run.Status.Journal[i]
			rs.mu.Unlock()
			if entry.State == v1alpha1.JournalReverted {
				continue
			}
			err := sc.Revert(ctx, entry)
			rs.e.failpoint("during-undo")
			rs.mu.Lock()
			je := &rs.run.Status.Journal[i]
			if err != nil {
				je.State, je.Error = v1alpha1.JournalFailed, err.Error()
				errs = append(errs, fmt.Errorf("undo %s: %w", entry.ID, err))
			} else {
				je.State, je.Error, je.RevertedAt = v1alpha1.JournalReverted, "", rs.stamp()
			}
			rs.mu.Unlock()
			if perr := rs.persist(ctx); perr != nil {
				errs = append(errs, perr)
			}
		}
		return errors.Join(errs...)
	})
}

// heartbeatSeconds is the heartbeat interval as recorded on runs (at least 1).
func (e *Engine) heartbeatSeconds() int64 {
	return max(1, int64(e.heartbeat.Round(time.Second)/time.Second))
}

// startHeartbeat renews the run's heartbeat until finish has reverted. It
// outlives the run's cancellation: a cancelled run is still reverting.
func (rs *runState) startHeartbeat(ctx context.Context) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-rs.e.clock.After(rs.e.heartbeat):
			}
			rs.mu.Lock()
			rs.run.Status.HeartbeatAt = rs.stamp()
			rs.mu.Unlock()
			if err := rs.persist(ctx); err != nil && ctx.Err() == nil {
				rs.log.Warn("heartbeat not written", "err", err)
			}
		}
	}()
	rs.stopHeartbeat = func() { cancel(); <-done }
}

// finish reverts, decides the verdict, and records the run as Completed.
func (rs *runState) finish(ctx context.Context, sc Scenario) *v1alpha1.DrillRun {
	if sc != nil {
		if err := rs.revertAll(ctx, sc); err != nil {
			rs.out.failures = append(rs.out.failures, "revert failed, fault may still be active: "+err.Error())
			rs.log.Error("revert failed: fault may still be active", "err", err)
		}
	}
	if rs.stopHeartbeat != nil {
		rs.stopHeartbeat()
	}
	rs.mu.Lock()
	st := &rs.run.Status
	verdict, reason := Decide(rs.out, rs.def.RTO, rs.def.RPO)
	st.Verdict, st.Reason = verdict, reason
	if rs.out.rto != nil {
		st.RTO = FormatDuration(*rs.out.rto)
	}
	if rs.out.rpo != nil {
		st.RPO = FormatDuration(*rs.out.rpo)
	}
	st.Findings = append(st.Findings, rs.out.findings...)
	st.Phase = v1alpha1.PhaseCompleted
	st.FinishedAt = rs.stamp()
	rs.mu.Unlock()
	if err := rs.persist(ctx); err != nil {
		rs.log.Error("final run status not recorded", "err", err)
	}
	rs.log.Info("run finished", "verdict", verdict, "reason", reason, "rto", st.RTO, "rpo", st.RPO)
	rs.emit(ctx, Event{Type: EventFinished, Phase: v1alpha1.PhaseCompleted})
	return rs.run.DeepCopy()
}

// ResolveInterrupted finds unfinished runs that no live drillbot holds (the
// holder's heartbeat is older than three heartbeat intervals, or missing)
// or whose faults are past their deadline (the journal entry's expiry plus
// the revert timeout), reverts every fault they recorded, and completes
// them as FAIL. The daemon calls it at start, before any new run, and then
// periodically (the sweep). Runs of live processes are left to them.
func (e *Engine) ResolveInterrupted(ctx context.Context) ([]v1alpha1.DrillRun, error) {
	now := e.clock.Now()
	return e.resolve(ctx, func(r *v1alpha1.DrillRun) string {
		interval := max(e.heartbeat, time.Duration(r.Status.HeartbeatSeconds)*time.Second)
		if r.Status.HeartbeatAt == nil || now.Sub(r.Status.HeartbeatAt.Time) > 3*interval {
			return fmt.Sprintf("interrupted during %s: drillbot %q stopped before the run finished", orPending(r.Status.Phase), r.Status.Holder)
		}
		def := drill.Definition{Spec: r.Spec.Snapshot}
		def.FromSpec()
		for _, j := range r.Status.Journal {
			if j.State != v1alpha1.JournalReverted && j.ExpiresAt != nil && now.After(j.ExpiresAt.Add(def.Timeouts.Revert)) {
				return fmt.Sprintf("fault %s past its deadline (%s) while held by %q: reverted by the sweep", j.ID, j.ExpiresAt.UTC().Format(time.RFC3339), r.Status.Holder)
			}
		}
		return "" // held by a live process
	})
}

// RevertActive completes every unfinished run as FAIL with reason,
// reverting its faults: what `drillbot halt` does for runs that no live
// daemon reverted within its wait.
func (e *Engine) RevertActive(ctx context.Context, reason string) ([]v1alpha1.DrillRun, error) {
	return e.resolve(ctx, func(r *v1alpha1.DrillRun) string {
		return fmt.Sprintf("halted during %s: %s", orPending(r.Status.Phase), reason)
	})
}

func (e *Engine) resolve(ctx context.Context, why func(*v1alpha1.DrillRun) string) ([]v1alpha1.DrillRun, error) {
	runs, err := e.store.List(ctx, "")
	if err != nil {
		return nil, err
	}
	// Runs are independent: each is reverted on its own goroutine, so one
	// slow undo does not hold up the others.
	var (
		mu   sync.Mutex // guards done
		done []v1alpha1.DrillRun
		errs []error
		wg   sync.WaitGroup
	)
	for i := range runs {
		r := &runs[i]
		if r.Status.Phase == v1alpha1.PhaseCompleted {
			continue
		}
		e.mu.Lock()
		_, mine := e.cancels[r.Name]
		e.mu.Unlock()
		reason := why(r)
		if mine || reason == "" {
			continue // this process runs it, or a live one does
		}
		def := drill.Definition{Name: r.Spec.Drill, Spec: r.Spec.Snapshot, Source: r.Spec.Source}
		def.FromSpec()
		rs := &runState{e: e, def: def, run: r.DeepCopy(), log: e.log.With("drill", def.Name, "run", r.Name)}
		rs.out.failures = []string{reason}
		rs.log.Warn("resolving unfinished run", "phase", r.Status.Phase, "holder", r.Status.Holder, "reason", reason)
		kind, ok := e.kinds[def.Spec.Scenario]
		if !ok {
			errs = append(errs, fmt.Errorf("run %s: unknown scenario kind %q, cannot revert", r.Name, def.Spec.Scenario))
			continue
		}
		sc, err := kind.New(def, r.Name)
		if err != nil {
			errs = append(errs, fmt.Errorf("run %s: %w", r.Name, err))
			continue
		}
		rs.run.Status.Holder = e.holder
		// This process holds the run now: it heartbeats while it reverts,
		// so no other drillbot takes it over meanwhile.
		rs.run.Status.HeartbeatAt, rs.run.Status.HeartbeatSeconds = rs.stamp(), e.heartbeatSeconds()
		rs.startHeartbeat(ctx)
		wg.Go(func() {
			final := rs.finish(ctx, sc)
			mu.Lock()
			done = append(done, *final)
			mu.Unlock()
		})
	}
	wg.Wait()
	sort.Slice(done, func(i, j int) bool { return done[i].Name < done[j].Name })
	return done, errors.Join(errs...)
}

func orPending(p v1alpha1.Phase) v1alpha1.Phase {
	if p == "" {
		return v1alpha1.PhasePending
	}
	return p
}

func sortStrings(s []string) { sort.Strings(s) }
