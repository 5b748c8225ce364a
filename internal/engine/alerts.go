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
	default:
		return "alerts cannot be read, so stop conditions cannot be checked: " + s.Detail
	}
}

// alertWatch follows a run's alerts: the stop conditions while the run may
// touch its target, and the expected alerts until each is decided.
type alertWatch struct {
	rs       *runState
	src      AlertSource
	stop     []alerts.Matchers
	expect   []drill.ExpectedAlert
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
			if x.Matches(a.Labels) {
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
	return StartConditions{Alerts: e.alerts, StopWhen: e.stopWhen, Freeze: e.freeze}.Check(ctx, rs.def, trigger, e.clock.Now())
}

// startAlertWatch polls the alerts every AlertPoll from now until the run
// ends: a matching stop condition cancels the run (it then reverts), and
// each expected alert is stamped when it fires. It returns a function that
// stops checking stop conditions (the run is reverting anyway) and one that
// waits until every expected alert is decided and stops the watch.
func (rs *runState) startAlertWatch(ctx context.Context, cancel context.CancelCauseFunc) (reverting func(), settle func(ctx context.Context, wait bool)) {
	w := &alertWatch{rs: rs, src: rs.e.alerts, stop: stopConditions(rs.e.stopWhen, rs.def), expect: rs.def.Alerts.Expect, cancel: cancel, lastOK: rs.e.clock.Now()}
	if w.src == nil || (len(w.stop) == 0 && len(w.expect) == 0) {
		return func() {}, func(context.Context, bool) {}
	}
	rs.mu.Lock()
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
			// Bounded by the deadlines (each poll past one decides it); the
			// bound here only guards against a clock that never moves. A run
			// cancelled meanwhile (halt, shutdown) stops waiting.
			wctx, cancel := context.WithTimeout(ctx, w.rs.maxAlertWait())
			select {
			case <-w.done:
			case <-wctx.Done():
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
// expected alert is decided.
func (w *alertWatch) poll(ctx context.Context) bool {
	rs := w.rs
	now := rs.e.clock.Now()
	active, err := w.src.Active(ctx)
	if err != nil {
		w.lastErr = err
		// A stop condition that cannot be checked for three polls stops the
		// run: on doubt, no fault.
		if !w.stopping && len(w.stop) > 0 && now.Sub(w.lastOK) >= 3*rs.e.alertPoll {
			at := metav1.NewMicroTime(now)
			w.cancel(&StoppedError{Stop: v1alpha1.Stop{Kind: v1alpha1.StopAlertsUnreadable, At: &at, Detail: err.Error()}})
			w.stopping = true
		}
		rs.log.Warn("alerts not read", "err", err)
		return w.decided()
	}
	w.lastOK, w.lastErr = now, nil
	if !w.stopping {
		if st := stopAlert(active, w.stop, metav1.NewMicroTime(now), false); st != nil {
			rs.log.Warn("stop condition: alert firing, stopping the run", "alert", st.Name, "matchers", st.Detail)
			w.cancel(&StoppedError{Stop: *st})
			w.stopping = true
		}
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	st := &rs.run.Status
	if st.DisasterAt == nil {
		return true // nothing broken yet: nothing to decide (the loop ends only once settled)
	}
	disaster := st.DisasterAt.Time
	for i, x := range w.expect {
		d := &st.Detections[i]
		var firing, suppressed []alerts.Alert
		for _, a := range active {
			if !x.Matches(a.Labels) {
				continue
			}
			if a.Suppressed {
				suppressed = append(suppressed, a)
			} else {
				firing = append(firing, a)
			}
		}
		switch {
		case d.FiredAt == nil && d.Problem == "" && len(firing) > 0:
			fired := firing[0].StartsAt
			// Alertmanager's startsAt is when Prometheus fired it; it is
			// never credited before the disaster nor after drillbot saw it.
			if fired.Before(disaster) {
				fired = disaster
			}
			if fired.After(now) {
				fired = now
			}
			ft := metav1.NewMicroTime(fired)
			d.FiredAt = &ft
			d.Detection = FormatDuration(fired.Sub(disaster))
			if fired.Sub(disaster) > x.Within {
				d.Problem = fmt.Sprintf("fired %s after the disaster, later than %s", d.Detection, x.Within)
			}
			rs.log.Info("expected alert fired", "alert", d.Alert, "detection", d.Detection)
		case d.FiredAt == nil && d.Problem == "" && len(suppressed) > 0 && now.Sub(disaster) > x.Within:
			d.Problem = fmt.Sprintf("active but silenced or inhibited (%s): nobody was notified within %s", suppressed[0], x.Within)
		case d.FiredAt == nil && d.Problem == "" && now.Sub(disaster) > x.Within:
			d.Problem = fmt.Sprintf("not firing within %s of the disaster", x.Within)
		}
		if d.FiredAt != nil && x.ResolveWithin > 0 && d.ResolvedAt == nil && d.Problem == "" && st.RecoveredAt != nil {
			if len(firing)+len(suppressed) == 0 {
				rt := metav1.NewMicroTime(now)
				d.ResolvedAt = &rt
			} else if now.Sub(st.RecoveredAt.Time) > x.ResolveWithin {
				d.Problem = fmt.Sprintf("still active %s after recovery", x.ResolveWithin)
			}
		}
	}
	return w.decidedLocked()
}

func (w *alertWatch) decided() bool {
	w.rs.mu.Lock()
	defer w.rs.mu.Unlock()
	return w.decidedLocked()
}

// decidedLocked: every expected alert fired (and resolved, if asked, once
// recovered) or has a problem. A run that never recovered has nothing to
// resolve.
func (w *alertWatch) decidedLocked() bool {
	st := &w.rs.run.Status
	if st.DisasterAt == nil {
		return true // nothing was broken: nothing to detect
	}
	for i, x := range w.expect {
		d := st.Detections[i]
		if d.Problem != "" {
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

// decideRest gives every expected alert still undecided when the watch
// ended its problem.
func (w *alertWatch) decideRest() {
	rs := w.rs
	rs.mu.Lock()
	defer rs.mu.Unlock()
	st := &rs.run.Status
	for i, x := range w.expect {
		d := &st.Detections[i]
		why := ""
		if w.lastErr != nil {
			why = " (alerts last unreadable: " + w.lastErr.Error() + ")"
		}
		switch {
		case d.Problem != "":
		case st.DisasterAt == nil:
			d.Problem = "no fault was injected"
		case d.FiredAt == nil:
			d.Problem = fmt.Sprintf("not seen firing within %s%s", x.Within, why)
		case x.ResolveWithin > 0 && d.ResolvedAt == nil && st.RecoveredAt == nil:
			d.Problem = "resolution not checked: the target did not recover"
		case x.ResolveWithin > 0 && d.ResolvedAt == nil:
			d.Problem = fmt.Sprintf("not seen resolved within %s of recovery%s", x.ResolveWithin, why)
		}
	}
}

// detectionFailures are the failures the expected alerts add to a verdict,
// and what they met.
func detectionFailures(ds []v1alpha1.Detection) (failures, met []string) {
	for _, d := range ds {
		if d.Problem != "" {
			failures = append(failures, fmt.Sprintf("alert %s %s", d.Alert, d.Problem))
			continue
		}
		if d.FiredAt != nil {
			met = append(met, fmt.Sprintf("alert %s detected in %s within %s", d.Alert, d.Detection, d.Within))
		}
	}
	return failures, met
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
