package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/drillbot-io/drillbot/internal/alerts"
	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
)

// AlertSource lists the cluster's active alerts (Alertmanager's), silenced
// and inhibited ones included.
type AlertSource interface {
	Active(ctx context.Context) ([]alerts.Alert, error)
}

// Freezer says whether t is in a freeze window, in which no scheduled drill
// starts.
type Freezer interface {
	Frozen(t time.Time) (name string, until time.Time, frozen bool)
}

// TriggerSchedule is the trigger of runs the scheduler starts: freeze
// windows hold only these.
const TriggerSchedule = "schedule"

// StoppedError is the cause of a run that a stop condition cancelled.
type StoppedError struct{ Stop v1alpha1.Stop }

func (e *StoppedError) Error() string { return "stopped: " + describeStop(e.Stop) }

func describeStop(s v1alpha1.Stop) string {
	switch s.Kind {
	case v1alpha1.StopFreezeWindow:
		return fmt.Sprintf("freeze window %s (%s)", s.Name, s.Detail)
	case v1alpha1.StopAlert:
		return fmt.Sprintf("alert %s firing (stop condition %s)", s.Name, s.Detail)
	case v1alpha1.StopExpectedFiring:
		return fmt.Sprintf("expected alert %s already active before the fault: its detection cannot be measured", s.Name)
	case v1alpha1.StopTargetBusy:
		return "target busy: " + s.Detail
	default:
		return "alerts cannot be read, so stop conditions cannot be checked: " + s.Detail
	}
}

// alertWatch follows a run's alerts: the stop conditions while the run may
// touch its target, and the expected alerts until each is decided.
type alertWatch struct {
	rs     *runState
	src    AlertSource
	stop   []alerts.Matchers
	expect []drill.ExpectedAlert
	// scope narrows the expected alerts to this cluster (zero: none).
	scope alerts.Scope
	// absent is, per expected alert, when the last poll that did not see
	// it firing began (at first: when the run started, before its start
	// check found it inactive).
	absent   []time.Time
	cancel   context.CancelCauseFunc
	lastOK   time.Time
	lastErr  error
	stopping bool // stop conditions are no longer checked (reverting)

	// revert and settled are closed once by reverting and settle; done
	// when the poll loop has ended; stopWatch ends it.
	revert, settled, done  chan struct{}
	stopWatch              func()
	revertOnce, settleOnce sync.Once
}

// stopConditions are the daemon's and the drill's.
func stopConditions(daemon []alerts.Matchers, def drill.Definition) []alerts.Matchers {
	return append(append([]alerts.Matchers{}, daemon...), def.Alerts.StopWhen...)
}

// stopAlert is the first active alert a stop condition matches, as the
// Stop it causes.
func stopAlert(active []alerts.Alert, stop []alerts.Matchers, at metav1.MicroTime, before bool) *v1alpha1.Stop {
	for _, a := range active {
		for _, m := range stop {
			if m.Matches(a.Labels) {
				return &v1alpha1.Stop{Kind: v1alpha1.StopAlert, Name: a.String(), Before: before, At: &at, Detail: m.String()}
			}
		}
	}
	return nil
}

// StartConditions are what may hold a run before it starts: freeze
// windows (scheduled runs only), active alerts matching a stop condition,
// an expected alert already active, or alerts that cannot be read while
// they are needed. drillbot plan checks them too.
type StartConditions struct {
	Alerts   AlertSource
	StopWhen []alerts.Matchers
	Freeze   Freezer
	// Scope narrows the expected alerts to this cluster (zero: none); stop
	// conditions are not narrowed.
	Scope alerts.Scope
}

// Check says why a run of def with trigger must not start at now; nil
// means it may. It reads only the alerts.
func (c StartConditions) Check(ctx context.Context, def drill.Definition, trigger string, now time.Time) *v1alpha1.Stop {
	at := metav1.NewMicroTime(now)
	if c.Freeze != nil && trigger == TriggerSchedule {
		if name, until, ok := c.Freeze.Frozen(now); ok {
			return &v1alpha1.Stop{Kind: v1alpha1.StopFreezeWindow, Name: name, Before: true, At: &at, Detail: "until " + until.UTC().Format(time.RFC3339)}
		}
	}
	stop := stopConditions(c.StopWhen, def)
	if len(stop) == 0 && len(def.Alerts.Expect) == 0 {
		return nil
	}
	if c.Alerts == nil {
		return &v1alpha1.Stop{Kind: v1alpha1.StopAlertsUnreadable, Before: true, At: &at, Detail: "no Alertmanager configured (--alertmanager-url)"}
	}
	active, err := c.Alerts.Active(ctx)
	if err != nil {
		return &v1alpha1.Stop{Kind: v1alpha1.StopAlertsUnreadable, Before: true, At: &at, Detail: err.Error()}
	}
	if st := stopAlert(active, stop, at, true); st != nil {
		return st
	}
	for _, a := range active {
		for _, x := range def.Alerts.Expect {
			if expects(x, c.Scope, a) {
				return &v1alpha1.Stop{Kind: v1alpha1.StopExpectedFiring, Name: a.String(), Before: true, At: &at}
			}
		}
	}
	return nil
}

// holdback is the engine's StartConditions for one run, checked before its
// first write to the target.
func (rs *runState) holdback(ctx context.Context, trigger string) *v1alpha1.Stop {
	e := rs.e
	return StartConditions{Alerts: e.alerts, StopWhen: e.stopWhen, Freeze: e.freeze, Scope: e.alertScope}.Check(ctx, rs.def, trigger, e.clock.Now())
}

// expects says whether a is the expected alert x in this cluster: x's name
// and matchers, and the cluster identity when one is set.
func expects(x drill.ExpectedAlert, scope alerts.Scope, a alerts.Alert) bool {
	return x.Matches(a.Labels) && scope.Matches(a.Labels)
}

// startAlertWatch polls the alerts every AlertPoll from now until the run
// ends: a matching stop condition cancels the run (it then reverts), and
// each expected alert is stamped when it fires. It returns a function that
// stops checking stop conditions (the run is reverting anyway) and one that
// waits until every expected alert is decided and stops the watch.
func (rs *runState) startAlertWatch(ctx context.Context, cancel context.CancelCauseFunc) (reverting func(), settle func(ctx context.Context, wait bool)) {
	w := &alertWatch{rs: rs, src: rs.e.alerts, stop: stopConditions(rs.e.stopWhen, rs.def), expect: rs.def.Alerts.Expect,
		scope: rs.e.alertScope, cancel: cancel, lastOK: rs.e.clock.Now()}
	if w.src == nil || (len(w.stop) == 0 && len(w.expect) == 0) {
		return func() {}, func(context.Context, bool) {}
	}
	rs.mu.Lock()
	for range w.expect {
		w.absent = append(w.absent, rs.run.Status.StartedAt.Time)
	}
	for _, x := range w.expect {
		d := v1alpha1.Detection{Alert: x.String(), Within: x.Within.String()}
		if x.ResolveWithin > 0 {
			d.ResolveWithin = x.ResolveWithin.String()
		}
		rs.run.Status.Detections = append(rs.run.Status.Detections, d)
	}
	rs.mu.Unlock()
	wctx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	w.revert, w.settled, w.done, w.stopWatch = make(chan struct{}), make(chan struct{}), make(chan struct{}), stopWatch
	go func() {
		defer close(w.done)
		// Each channel is set to nil once seen: a closed one is always ready.
		revert, settled := w.revert, w.settled
		for {
			if finished := w.poll(wctx); finished && settled == nil {
				return
			}
			select {
			case <-wctx.Done():
				return
			case <-revert:
				revert = nil
				w.stopping = true
			case <-settled:
				settled = nil // poll once more now, and end once decided
			case <-rs.e.clock.After(rs.e.alertPoll):
			}
		}
	}()
	return w.reverting, w.settle
}

// reverting stops checking stop conditions.
func (w *alertWatch) reverting() { w.revertOnce.Do(func() { close(w.revert) }) }

// settle ends the watch: stop conditions are no longer checked, and once
// every expected alert is decided (or at once when wait is false) the rest
// get their problem.
func (w *alertWatch) settle(ctx context.Context, wait bool) {
	w.settleOnce.Do(func() {
		w.reverting()
		close(w.settled)
		if wait {
			// Bounded by the deadlines (each poll past one decides it), and
			// by maxAlertWait on the run's clock when polls keep failing; the
			// real-time bound only guards against a clock that never moves.
			// A run cancelled meanwhile (halt, shutdown) stops waiting.
			wctx, cancel := context.WithTimeout(ctx, w.rs.maxAlertWait())
			select {
			case <-w.done:
			case <-wctx.Done():
			case <-w.rs.e.clock.After(w.rs.maxAlertWait()):
			}
			cancel()
		}
		w.stopWatch()
		<-w.done
		w.decideRest()
	})
}

// maxAlertWait bounds how long a finished run waits for its expected
// alerts: their longest deadlines and a few polls.
func (rs *runState) maxAlertWait() time.Duration {
	var within, resolve time.Duration
	for _, x := range rs.def.Alerts.Expect {
		within, resolve = max(within, x.Within), max(resolve, x.ResolveWithin)
	}
	return within + resolve + 3*rs.e.alertPoll
}

// poll reads the alerts once and applies them; it reports whether every
// expected alert is decided. What it sees is stamped on drillbot's clock:
// an alert seen is seen by the end of the read, an alert not seen was
// absent at its start.
func (w *alertWatch) poll(ctx context.Context) bool {
	rs := w.rs
	begin := rs.e.clock.Now()
	active, err := w.src.Active(ctx)
	end := rs.e.clock.Now()
	if err != nil {
		w.lastErr = err
		// A stop condition that cannot be checked for three polls stops the
		// run: on doubt, no fault.
		if !w.stopping && len(w.stop) > 0 && end.Sub(w.lastOK) >= 3*rs.e.alertPoll {
			at := metav1.NewMicroTime(end)
			w.cancel(&StoppedError{Stop: v1alpha1.Stop{Kind: v1alpha1.StopAlertsUnreadable, At: &at, Detail: err.Error()}})
			w.stopping = true
		}
		rs.log.Warn("alerts not read", "err", err)
		return w.decided()
	}
	w.lastOK, w.lastErr = end, nil
	if !w.stopping {
		if st := stopAlert(active, w.stop, metav1.NewMicroTime(end), false); st != nil {
			rs.log.Warn("stop condition: alert firing, stopping the run", "alert", st.Name, "matchers", st.Detail)
			w.cancel(&StoppedError{Stop: *st})
			w.stopping = true
		}
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for i, x := range w.expect {
		var matched, firing []alerts.Alert
		for _, a := range active {
			if expects(x, w.scope, a) {
				matched = append(matched, a)
				if a.Notified() {
					firing = append(firing, a)
				}
			}
		}
		w.observe(i, x, begin, end, matched, firing)
	}
	return w.decidedLocked()
}

// observe applies one poll to expected alert i: matched are the active
// alerts that match it, firing those of them anyone was notified of.
// rs.mu is held.
func (w *alertWatch) observe(i int, x drill.ExpectedAlert, begin, end time.Time, matched, firing []alerts.Alert) {
	st := &w.rs.run.Status
	d := &st.Detections[i]
	if st.DisasterAt == nil || begin.Before(st.DisasterAt.Time) {
		// Before the disaster (the read began before it): an alert active
		// now did not come from the fault, and may still be active when
		// the fault would be credited with it.
		if len(matched) > 0 && d.Unmeasured == "" {
			d.Unmeasured = fmt.Sprintf("active before the disaster (%s, seen at %s): its time to detect cannot be measured",
				matched[0], begin.UTC().Format(time.RFC3339))
		}
		if len(firing) == 0 {
			w.absent[i] = begin
		}
		return
	}
	if d.Unmeasured != "" {
		return
	}
	disaster := st.DisasterAt.Time
	if d.FiredAt == nil {
		switch {
		case len(firing) > 0:
			w.seen(d, x, disaster, w.absent[i], end, firing)
		case d.Problem == "" && !begin.Before(disaster.Add(x.Within)):
			// Absent at a poll that began at or past the deadline: it cannot
			// have fired within it.
			at := metav1.NewMicroTime(begin)
			d.AbsentAt = &at
			d.Problem = fmt.Sprintf("not firing within %s of the disaster", x.Within)
			if len(matched) > 0 {
				d.Problem = fmt.Sprintf("active but %s (%s): nobody was notified within %s", notNotified(matched[0]), matched[0], x.Within)
			}
		}
		if len(firing) == 0 {
			w.absent[i] = begin
		}
	}
	w.resolution(d, x, begin, end, matched)
}

// notNotified says why nobody was told of an active alert.
func notNotified(a alerts.Alert) string {
	if a.Suppressed {
		return "silenced or inhibited"
	}
	return "not yet routed by Alertmanager (unprocessed)"
}

// seen decides an expected alert first seen firing by a poll that ended at
// seenAt, after one that began at absent did not see it. The deadline is
// judged on these two polls (drillbot's clock): met when seenAt is within
// it, missed when absent is already past it, and undecidable in between.
// Alertmanager's startsAt only refines the figure, and only when it falls
// between the two polls.
func (w *alertWatch) seen(d *v1alpha1.Detection, x drill.ExpectedAlert, disaster, absent, seenAt time.Time, firing []alerts.Alert) {
	a := firing[0]
	for _, f := range firing[1:] {
		if f.StartsAt.Before(a.StartsAt) {
			a = f
		}
	}
	at, seenStamp := metav1.NewMicroTime(absent), metav1.NewMicroTime(seenAt)
	d.AbsentAt, d.SeenAt = &at, &seenStamp
	deadline := disaster.Add(x.Within)
	since := func(t time.Time) string { return signed(t.Sub(disaster)) }
	startsAt := a.StartsAt
	inside := !startsAt.IsZero() && startsAt.After(absent) && !startsAt.After(seenAt)
	fired := seenAt
	if inside {
		fired = startsAt
	} else if !startsAt.IsZero() {
		d.Notes = append(d.Notes, fmt.Sprintf("Alertmanager's startsAt (%s after the disaster) is not between drillbot's polls that saw it absent (%s) and firing (%s): the clocks disagree, or Alertmanager learnt of it late; not used",
			since(startsAt), since(absent), since(seenAt)))
	}
	// Without a cluster identity, an alert that names its cluster says the
	// Alertmanager is shared: it is not evidence (it may be another
	// cluster's); one that names none is credited, with a note.
	var cluster string
	if w.scope.IsZero() {
		for _, f := range firing {
			if v, ok := f.Labels[alerts.ClusterLabel]; ok {
				cluster = fmt.Sprintf("%s=%q", alerts.ClusterLabel, v)
				break
			}
		}
		if cluster == "" {
			d.Notes = append(d.Notes, "not narrowed to this cluster (no --alert-cluster-label): an alert of this name from another cluster sharing the Alertmanager would count too")
		}
	}
	credit := func() {
		ft := metav1.NewMicroTime(fired)
		d.FiredAt, d.Detection = &ft, FormatDuration(fired.Sub(disaster))
	}
	switch {
	case !absent.Before(deadline):
		// drillbot saw it absent at or past its deadline: late, whatever
		// else is uncertain.
		credit()
		d.Problem = fmt.Sprintf("fired %s after the disaster, later than %s", d.Detection, x.Within)
	case cluster != "":
		d.Unmeasured = fmt.Sprintf("%s carries %s but drillbot has no cluster identity (--alert-cluster-label): with an Alertmanager shared by several clusters it may be another cluster's",
			a, cluster)
	case !startsAt.IsZero() && startsAt.Before(disaster):
		d.Unmeasured = fmt.Sprintf("Alertmanager says %s started firing %s before the disaster: it began before the fault, or the clocks disagree by more than its time to detect; either way it cannot be measured",
			a, FormatDuration(disaster.Sub(startsAt)))
	case absent.Before(disaster) && !inside:
		d.Unmeasured = fmt.Sprintf("first seen %s after the disaster by the first poll after it (the last that saw it absent was %s before it), and its startsAt does not fall between them: whether it began before the fault cannot be told",
			FormatDuration(seenAt.Sub(disaster)), FormatDuration(disaster.Sub(absent)))
	case !seenAt.After(deadline):
		credit()
	default:
		d.Unmeasured = fmt.Sprintf("first seen firing %s after the disaster, last seen absent %s after it: its %s deadline falls between these polls (every %s), so whether it was met cannot be told",
			since(seenAt), since(absent), x.Within, w.rs.e.alertPoll)
	}
	if d.FiredAt != nil {
		w.rs.log.Info("expected alert fired", "alert", d.Alert, "detection", d.Detection, "problem", d.Problem)
	} else {
		w.rs.log.Warn("expected alert not measured", "alert", d.Alert, "why", d.Unmeasured)
	}
}

// resolution follows a fired alert after recovery, on the same rule as the
// deadline: resolved in time when a poll ending within resolveWithin saw
// it gone, late when one beginning past it still saw it.
func (w *alertWatch) resolution(d *v1alpha1.Detection, x drill.ExpectedAlert, begin, end time.Time, matched []alerts.Alert) {
	st := &w.rs.run.Status
	if d.FiredAt == nil || x.ResolveWithin == 0 || d.ResolvedAt != nil || d.Problem != "" || d.Unmeasured != "" ||
		st.RecoveredAt == nil || begin.Before(st.RecoveredAt.Time) {
		return
	}
	deadline := st.RecoveredAt.Add(x.ResolveWithin)
	// Without a cluster identity, an alert naming a cluster may be another
	// cluster's (seen does not credit one): it is no evidence that this
	// cluster's is still active.
	var elsewhere []alerts.Alert
	if w.scope.IsZero() {
		for _, a := range matched {
			if _, ok := a.Labels[alerts.ClusterLabel]; ok {
				elsewhere = append(elsewhere, a)
			}
		}
	}
	switch {
	case len(matched) > 0 && len(elsewhere) == len(matched):
		if !begin.Before(deadline) {
			d.Unmeasured = fmt.Sprintf("%s still active %s after recovery, but it carries %s=%q and drillbot has no cluster identity (--alert-cluster-label): with an Alertmanager shared by several clusters it may be another cluster's, so whether this cluster's resolved cannot be told",
				elsewhere[0], x.ResolveWithin, alerts.ClusterLabel, elsewhere[0].Labels[alerts.ClusterLabel])
		}
	case len(matched) == 0 && !end.After(deadline):
		rt := metav1.NewMicroTime(end)
		d.ResolvedAt = &rt
	case len(matched) == 0:
		d.Unmeasured = fmt.Sprintf("seen resolved %s after recovery, by a poll that began within its %s deadline: whether it resolved in time cannot be told",
			FormatDuration(end.Sub(st.RecoveredAt.Time)), x.ResolveWithin)
	case !begin.Before(deadline):
		d.Problem = fmt.Sprintf("still active %s after recovery", x.ResolveWithin)
	}
}

// signed prints a duration relative to the disaster, negative before it.
func signed(d time.Duration) string {
	if d < 0 {
		return "-" + FormatDuration(-d)
	}
	return FormatDuration(d)
}

func (w *alertWatch) decided() bool {
	w.rs.mu.Lock()
	defer w.rs.mu.Unlock()
	return w.decidedLocked()
}

// decidedLocked: every expected alert fired (and resolved, if asked, once
// recovered), has a problem, or cannot be measured. A run that never
// recovered has nothing to resolve.
func (w *alertWatch) decidedLocked() bool {
	st := &w.rs.run.Status
	if st.DisasterAt == nil {
		return true // nothing was broken: nothing to detect
	}
	for i, x := range w.expect {
		d := st.Detections[i]
		if d.Problem != "" || d.Unmeasured != "" {
			continue
		}
		if d.FiredAt == nil {
			return false
		}
		if x.ResolveWithin > 0 && d.ResolvedAt == nil && st.RecoveredAt != nil {
			return false
		}
	}
	return true
}

// decideRest settles every expected alert still undecided when the watch
// ended. No poll saw it past its deadline (alerts unreadable, or the run
// ended first): that is not evidence either way.
func (w *alertWatch) decideRest() {
	rs := w.rs
	rs.mu.Lock()
	defer rs.mu.Unlock()
	st := &rs.run.Status
	why := "the watch ended first"
	if w.lastErr != nil {
		why = "alerts last unreadable: " + w.lastErr.Error()
	}
	for i, x := range w.expect {
		d := &st.Detections[i]
		switch {
		case d.Problem != "" || d.Unmeasured != "":
		case st.DisasterAt == nil:
			d.Problem = "no fault was injected"
		case d.FiredAt == nil:
			d.Unmeasured = fmt.Sprintf("no poll read the alerts after its %s deadline (%s): whether it fired in time cannot be told", x.Within, why)
		case x.ResolveWithin > 0 && d.ResolvedAt == nil && st.RecoveredAt == nil:
			d.Problem = "resolution not checked: the target did not recover"
		case x.ResolveWithin > 0 && d.ResolvedAt == nil:
			d.Unmeasured = fmt.Sprintf("no poll read the alerts after its resolveWithin %s deadline (%s): whether it resolved in time cannot be told", x.ResolveWithin, why)
		}
	}
}

// detectionFailures are what the expected alerts add to a verdict: the
// failures, the detections that could not be measured (INCONCLUSIVE), what
// they met, and their notes (findings the verdict does not use).
func detectionFailures(ds []v1alpha1.Detection) (failures, unmeasured, met, notes []string) {
	for _, d := range ds {
		for _, n := range d.Notes {
			notes = append(notes, fmt.Sprintf("alert %s: %s", d.Alert, n))
		}
		switch {
		case d.Problem != "":
			failures = append(failures, fmt.Sprintf("alert %s %s", d.Alert, d.Problem))
		case d.Unmeasured != "":
			unmeasured = append(unmeasured, fmt.Sprintf("alert %s not measured: %s", d.Alert, d.Unmeasured))
		case d.FiredAt != nil:
			met = append(met, fmt.Sprintf("alert %s detected in %s within %s", d.Alert, d.Detection, d.Within))
		}
	}
	return failures, unmeasured, met, notes
}

// stoppedBy returns the stop condition that cancelled ctx, if one did.
func stoppedBy(ctx context.Context) *v1alpha1.Stop {
	var se *StoppedError
	if errors.As(context.Cause(ctx), &se) {
		s := se.Stop
		return &s
	}
	return nil
}

// StopReason is the verdict reason of a run held or stopped by s.
func StopReason(s v1alpha1.Stop) string {
	if s.Before {
		return "not started: " + strings.TrimPrefix(describeStop(s), "stopped: ")
	}
	return "stopped: " + describeStop(s)
}

// nonEmpty is s as a list: empty when s is.
func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}
