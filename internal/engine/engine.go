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
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/clock"

	"github.com/drillbot-io/drillbot/internal/alerts"
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
	// EventRevertRetried: a run that was RevertFailed had its revert
	// retried (Err says whether it failed again; Phase is where it is now).
	EventRevertRetried EventType = "RevertRetried"
	// EventArchived and EventArchiveFailed: the run's evidence record was
	// written to the archive, or a write failed (Err; retried).
	EventArchived      EventType = "Archived"
	EventArchiveFailed EventType = "ArchiveFailed"
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
	// (default 10s). A run whose heartbeat has not changed for three of
	// these, as this process observes it, was left by a process that died.
	Heartbeat time.Duration
	// Locks is the cluster-wide one-run-per-target lock (nil: runs are only
	// checked against the recorded runs, which is not atomic across
	// processes).
	Locks TargetLocks
	// RevertBackoff is the first wait before the sweep retries a failed
	// revert (default 30s); it doubles per attempt up to RevertBackoffCap
	// (default 10m).
	RevertBackoff, RevertBackoffCap time.Duration
	// Alerts is where expected alerts and stop conditions are read (nil:
	// nowhere; a drill that needs it does not start).
	Alerts AlertSource
	// StopWhen are the daemon-wide stop conditions: while an active alert
	// matches one, no drill starts and running drills stop and revert.
	StopWhen []alerts.Matchers
	// Freeze holds scheduled runs in its windows (nil: never frozen).
	Freeze Freezer
	// AlertPoll is how often a run reads the alerts (default 10s).
	AlertPoll time.Duration
	// AlertScope is this cluster's identity on the alerts (such as
	// cluster="prod-eu"): an expected alert counts only when it carries it.
	// Zero: none (detections are noted as not narrowed to the cluster).
	AlertScope alerts.Scope
	// KeepUnarchived keeps a run beyond the history limits until the
	// archive has it (status.archive): drillbot serve --archive.
	KeepUnarchived bool
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
	locks     TargetLocks
	backoff   wait.Backoff
	alerts    AlertSource
	stopWhen  []alerts.Matchers
	freeze    Freezer
	alertPoll time.Duration
	// alertScope narrows expected alerts to this cluster.
	alertScope alerts.Scope
	// keepUnarchived: runs the archive has not taken are not pruned.
	keepUnarchived bool

	mu      sync.Mutex
	active  map[string]string                  // target key -> run name
	cancels map[string]context.CancelCauseFunc // run name -> its cancel

	sweepMu  sync.Mutex
	observed map[string]observation // run name -> its heartbeat as last seen
	retries  map[string]retry       // run name -> when its failed revert is retried
}

// New returns an Engine. A nil Clock is the real clock and a nil Logger
// discards.
func New(cfg Config) *Engine {
	e := &Engine{
		store: cfg.Store, kinds: cfg.Kinds, clock: cfg.Clock, log: cfg.Logger,
		holder: cfg.Holder, observers: cfg.Observers, persistTO: cfg.PersistTimeout, gate: cfg.Gate,
		active: map[string]string{}, cancels: map[string]context.CancelCauseFunc{},
		locks: cfg.Locks, observed: map[string]observation{}, retries: map[string]retry{},
		alerts: cfg.Alerts, stopWhen: cfg.StopWhen, freeze: cfg.Freeze, alertPoll: cfg.AlertPoll, alertScope: cfg.AlertScope,
		keepUnarchived: cfg.KeepUnarchived,
	}
	if e.alertPoll == 0 {
		e.alertPoll = 10 * time.Second
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
	e.backoff = wait.Backoff{Duration: cfg.RevertBackoff, Factor: 2, Cap: cfg.RevertBackoffCap}
	if e.backoff.Duration == 0 {
		e.backoff.Duration = 30 * time.Second
	}
	if e.backoff.Cap == 0 {
		e.backoff.Cap = 10 * time.Minute
	}
	return e
}

// TargetKey identifies a drill's target for the one-run-per-target rule:
// its namespace. Two drills on one namespace never overlap, whatever their
// selectors: one drill's fault would change what the other measures.
func TargetKey(t v1alpha1.Target) string {
	return t.Namespace
}

// TargetHash is a label-safe hash of a target key.
func TargetHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])[:16]
}

// RunOption adds to what a run records.
type RunOption func(*v1alpha1.DrillRunSpec)

// StartedBy records who started the run (the default is the trigger as
// the initiator's kind, without a user).
func StartedBy(i v1alpha1.Initiator) RunOption {
	return func(s *v1alpha1.DrillRunSpec) { s.StartedBy = &i }
}

// DefinitionDigest is "sha256:" and the hex SHA-256 of the drill's spec as
// JSON: what identifies the version of a drill a run tested.
func DefinitionDigest(spec v1alpha1.DrillSpec) string {
	data, err := json.Marshal(spec)
	if err != nil {
		panic("drill spec digest: " + err.Error()) // every field is JSON-encodable
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Run executes one drill now and returns the finished DrillRun. The error is
// non-nil only when no run could be recorded (target busy, store down); a
// drill that fails is a run with verdict FAIL, not an error. A scheduled
// run that finds its target busy is recorded anyway, held (INCONCLUSIVE,
// stop TargetBusy), so its schedule's slot has evidence, and the error says
// the target was busy.
func (e *Engine) Run(ctx context.Context, def drill.Definition, trigger string, opts ...RunOption) (*v1alpha1.DrillRun, error) {
	kind, ok := e.kinds[def.Spec.Scenario]
	if !ok {
		return nil, fmt.Errorf("drill %s: unknown scenario kind %q", def.Name, def.Spec.Scenario)
	}
	if err := e.checkGate(ctx); err != nil {
		return nil, fmt.Errorf("drill %s: %w", def.Name, err)
	}
	key := TargetKey(def.Spec.Target)
	run := e.newRun(def, trigger, key, opts)
	release, err := e.claim(ctx, key)
	if err != nil {
		return e.heldAndPruned(ctx, def, run, trigger, nil, err)
	}
	defer release()

	created, err := e.store.Create(ctx, run)
	if err != nil {
		return nil, fmt.Errorf("drill %s: record run: %w", def.Name, err)
	}
	unlock, err := e.lock(ctx, key, created.Name)
	if err != nil {
		// Nothing was done under this run: it is recorded as held (a
		// scheduled run) or goes, and the caller is told the target is busy.
		return e.heldAndPruned(ctx, def, created, trigger, created, err)
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
	var sc Scenario
	if stop := rs.holdback(ctx, trigger); stop != nil {
		// Nothing was touched: the run is recorded, so the skipped drill
		// is evidence too, and says why.
		rs.mu.Lock()
		rs.run.Status.Stop = stop
		rs.mu.Unlock()
		rs.out.inconclusive = StopReason(*stop)
		rs.log.Warn("drill not started", "reason", rs.out.inconclusive)
	} else if sc, err = kind.New(def, created.Name); err != nil {
		rs.out.failures = append(rs.out.failures, "scenario: "+err.Error())
		sc = nil
	} else {
		rs.reverting, rs.settle = rs.startAlertWatch(ctx, cancel)
		rs.execute(ctx, sc)
	}
	final := rs.finish(ctx, sc)
	if final.Status.Phase == v1alpha1.PhaseCompleted {
		unlock()
	}
	e.prune(ctx, def)
	return final, nil
}

// heldAndPruned is heldBusy, then the drill's history pruned as after any
// run: held slots count against the limits like the runs that ran (else
// they pile up until the drill next runs).
func (e *Engine) heldAndPruned(ctx context.Context, def drill.Definition, run *v1alpha1.DrillRun, trigger string, created *v1alpha1.DrillRun, cause error) (*v1alpha1.DrillRun, error) {
	held, err := e.heldBusy(ctx, run, trigger, created, cause)
	if held != nil {
		e.prune(context.WithoutCancel(ctx), def)
	}
	return held, err
}

// lock takes the cluster-wide lock of target for run (see TargetLocks). A
// run holds it while it is unfinished or may hold a fault.
func (e *Engine) lock(ctx context.Context, target, run string) (unlock func(), err error) {
	if e.locks == nil {
		return func() {}, nil
	}
	held := func(ctx context.Context, holder string) (bool, error) {
		r, err := e.store.Get(ctx, holder)
		if IsNotFound(err) {
			return false, nil // deleted: only finished runs are pruned
		}
		if err != nil {
			return false, err
		}
		return r.Status.Phase != v1alpha1.PhaseCompleted, nil
	}
	if err := e.locks.Lock(ctx, target, run, held); err != nil {
		return nil, err
	}
	return func() { e.unlock(ctx, target, run) }, nil
}

func (e *Engine) unlock(ctx context.Context, target, run string) {
	if e.locks == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.persistTO)
	defer cancel()
	if err := e.locks.Unlock(ctx, target, run); err != nil {
		// The next run takes over a lock left by a Completed run.
		e.log.Warn("target lock not released", "target", target, "run", run, "err", err)
	}
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
	runs, err := e.store.List(ctx, v1alpha1.LabelTarget+"="+TargetHash(key))
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
	// detectFailures and detectMet are what the expected alerts add.
	detectFailures, detectMet []string
	failures                  []string
	inconclusive              string
	rto, rpo                  *time.Duration
	findings                  []string
}

type runState struct {
	e   *Engine
	def drill.Definition
	log *slog.Logger

	stopHeartbeat func() // nil when no heartbeat runs
	// retry: the run already has its verdict; only its revert is retried.
	retry bool
	// reverting and settle end the run's alert watch (see startAlertWatch);
	// nil when none runs.
	reverting func()
	settle    func(ctx context.Context, wait bool)

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
				// Someone changed the object (a label, an annotation) or
				// took the run over. Re-read: only a run still ours is
				// written again, on its new resourceVersion.
				cur, gerr := rs.e.store.Get(ctx, rs.run.Name)
				if gerr != nil {
					lastErr = errors.Join(err, gerr)
					return false, nil
				}
				if h := cur.Status.Holder; (h != "" && h != rs.run.Status.Holder) || cur.Status.Phase == v1alpha1.PhaseCompleted {
					return false, fmt.Errorf("run %s was taken over by %q (phase %s): not overwritten: %w", rs.run.Name, h, orPending(cur.Status.Phase), err)
				}
				rs.run.ResourceVersion = cur.ResourceVersion
				lastErr = err
				return false, nil
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
// A phase whose start cannot be recorded does not run, except Reverting:
// an undo never waits for a status write (it is recorded afterwards).
func (rs *runState) phase(ctx context.Context, p v1alpha1.Phase, timeout time.Duration, fn func(context.Context) error) error {
	rs.mu.Lock()
	rs.run.Status.Phase = p
	rs.run.Status.Steps = append(rs.run.Status.Steps, v1alpha1.Step{Phase: p, StartedAt: *rs.stamp()})
	rs.mu.Unlock()
	var startErr error
	if err := rs.persist(ctx); err != nil {
		if p != v1alpha1.PhaseReverting {
			return err
		}
		rs.log.Error("start of revert not recorded: reverting anyway", "err", err)
		startErr = err
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
	} else if startErr != nil {
		rs.log.Info("revert recorded after all", "phase", p)
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
	return rs.record(ctx, action, description, undo, true)
}

// RecordRehearsal implements Rehearsals.
func (rs *runState) RecordRehearsal(ctx context.Context, action, description string, undo any) error {
	return rs.record(ctx, action, description, undo, false)
}

func (rs *runState) record(ctx context.Context, action, description string, undo any, disaster bool) error {
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
	if disaster && rs.run.Status.DisasterAt == nil {
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
		rs.phaseFailed("preflight", err)
		return
	}
	if err := rs.phase(ctx, v1alpha1.PhaseInjecting, t.Inject, func(ctx context.Context) error { return sc.Inject(ctx, rs) }); err != nil {
		rs.phaseFailed("inject", err)
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
		rs.phaseFailed("recovery", err)
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
	rs.out.failures = append(rs.out.failures, v.Failures...)
	rs.out.findings = append(rs.out.findings, v.Findings...)
	rs.out.inconclusive = v.Inconclusive
	if err != nil {
		// Errors are not evidence (EVIDENCE.md rule 5): a verification
		// that could not complete says nothing either way. What it found
		// before the error still counts (a failure found is FAIL).
		why := "verify could not complete: " + err.Error()
		rs.out.findings = append(rs.out.findings, why)
		if rs.out.inconclusive == "" {
			rs.out.inconclusive = why
		}
	}
	if v.Posture != nil {
		rs.mu.Lock()
		rs.run.Status.Posture = v.Posture
		rs.mu.Unlock()
	}
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
		rpo, ok, why := RPO(rs.run.Status.DisasterAt.Time, *v.DataTimestamp)
		rs.run.Status.RPOSource = v.RPOSource
		rs.mu.Unlock()
		if ok {
			rs.out.rpo = &rpo
		} else {
			rs.out.rpo = nil
			rs.out.findings = append(rs.out.findings, why)
			if rs.out.inconclusive == "" {
				rs.out.inconclusive = why
			}
		}
	}
}

// phaseFailed records why a phase ended in error: a failure, or, when the
// error says nothing about the system under test, the reason the run is
// INCONCLUSIVE (EVIDENCE.md rule 5). A check (a targetless kind) injects
// nothing: every error of its but a refusal is a read that failed.
func (rs *runState) phaseFailed(phase string, err error) {
	if IsUnknown(err) || (rs.e.kinds.Targetless(rs.def.Spec.Scenario) && !IsRefused(err)) {
		why := phase + " could not read what it needs: " + err.Error()
		rs.out.findings = append(rs.out.findings, why)
		if rs.out.inconclusive == "" {
			rs.out.inconclusive = why
		}
		return
	}
	rs.out.failures = append(rs.out.failures, phase+": "+err.Error())
}

// revertAll undoes every journal entry not yet reverted, newest first. It
// runs on a context detached from the run's, so a cancelled or timed-out run
// still reverts, under the revert phase's own deadline. Every undo is
// attempted whatever happens to the status writes around it; the error is
// about the undos only (a record that could not be written is retried by
// finish, and an unrecorded undo is repeated harmlessly: undos are
// idempotent).
func (rs *runState) revertAll(ctx context.Context, sc Scenario) error {
	rs.mu.Lock()
	pending := rs.run.Status.OpenFaults()
	rs.mu.Unlock()
	if pending == 0 {
		return nil
	}
	ctx = context.WithoutCancel(ctx)
	var undoErrs []error
	_ = rs.phase(ctx, v1alpha1.PhaseReverting, rs.def.Timeouts.Revert, func(ctx context.Context) error {
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
				undoErrs = append(undoErrs, fmt.Errorf("undo %s: %w", entry.ID, err))
				errs = append(errs, undoErrs[len(undoErrs)-1])
			} else {
				je.State, je.Error, je.RevertedAt = v1alpha1.JournalReverted, "", rs.stamp()
			}
			rs.mu.Unlock()
			if perr := rs.persist(ctx); perr != nil {
				rs.log.Error("undo done but not recorded yet", "entry", entry.ID, "err", perr)
				errs = append(errs, perr)
			}
		}
		return errors.Join(errs...)
	})
	return errors.Join(undoErrs...)
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

// finish reverts, decides the verdict, and records the run: Completed when
// every fault is reverted, RevertFailed while one may still be active.
func (rs *runState) finish(ctx context.Context, sc Scenario) *v1alpha1.DrillRun {
	var revertErr error
	if rs.reverting != nil {
		rs.reverting()
	}
	if sc != nil {
		revertErr = rs.revertAll(ctx, sc)
		if revertErr != nil && !rs.retry {
			rs.out.failures = append(rs.out.failures, "revert failed, fault may still be active: "+revertErr.Error())
		}
		if revertErr != nil {
			rs.log.Error("revert failed: fault may still be active", "err", revertErr)
		}
	}
	stop := stoppedBy(ctx)
	if rs.settle != nil {
		// Expected alerts are waited for until decided, unless the run was
		// cancelled (halted, stopped, shut down): then they are decided now.
		rs.settle(ctx, ctx.Err() == nil)
	}
	if rs.stopHeartbeat != nil {
		rs.stopHeartbeat()
	}
	rs.mu.Lock()
	st := &rs.run.Status
	if stop != nil && !rs.retry {
		st.Stop = stop
		rs.out.failures = append([]string{StopReason(*stop)}, rs.out.failures...)
	}
	var unmeasured, notes []string
	rs.out.detectFailures, unmeasured, rs.out.detectMet, notes = detectionFailures(st.Detections)
	if len(unmeasured) > 0 {
		// A detection that could not be measured is neither met nor a
		// failure of the system: the run is INCONCLUSIVE (unless it failed).
		rs.out.inconclusive = strings.Join(append(nonEmpty(rs.out.inconclusive), unmeasured...), "; ")
	}
	rs.out.findings = append(rs.out.findings, notes...)
	if rs.retry {
		// The verdict was decided when the run ended; a later revert only
		// changes whether its fault is still active.
		st.RevertAttempts++
		if revertErr == nil {
			st.Findings = append(st.Findings, fmt.Sprintf("every fault reverted by %q at %s, on revert attempt %d after the run",
				rs.e.holder, rs.e.clock.Now().UTC().Format(time.RFC3339), st.RevertAttempts))
		}
	} else {
		verdict, reason := Decide(rs.out, rs.def.RTO, rs.def.RPO)
		st.Verdict, st.Reason = verdict, reason
		if rs.out.rto != nil {
			st.RTO = FormatDuration(*rs.out.rto)
		}
		if rs.out.rpo != nil {
			st.RPO = FormatDuration(*rs.out.rpo)
		}
		st.Findings = append(st.Findings, rs.out.findings...)
		st.FinishedAt = rs.stamp()
	}
	st.Phase = v1alpha1.PhaseCompleted
	if st.OpenFaults() > 0 {
		st.Phase = v1alpha1.PhaseRevertFailed
	}
	rs.mu.Unlock()
	if err := rs.persist(ctx); err != nil {
		rs.log.Error("final run status not recorded", "err", err)
	}
	rs.log.Info("run finished", "phase", st.Phase, "verdict", st.Verdict, "reason", st.Reason, "rto", st.RTO, "rpo", st.RPO)
	if rs.retry {
		rs.emit(ctx, Event{Type: EventRevertRetried, Phase: st.Phase, Err: revertErr})
	} else {
		rs.emit(ctx, Event{Type: EventFinished, Phase: st.Phase})
	}
	return rs.run.DeepCopy()
}

func orPending(p v1alpha1.Phase) v1alpha1.Phase {
	if p == "" {
		return v1alpha1.PhasePending
	}
	return p
}

func sortStrings(s []string) { sort.Strings(s) }
