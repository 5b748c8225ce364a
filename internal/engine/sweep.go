package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
)

// observation is a run's heartbeat as this process last read it, and when
// (on this process's own monotonic clock) it first read that value. Another
// host's clock is never compared with ours: a holder is dead when its
// heartbeat stops changing, as client-go's leader election judges a Lease.
type observation struct {
	heartbeat string
	seen      time.Time
}

// retry is when a failed revert is tried again, on this process's clock.
type retry struct {
	attempts int
	next     time.Time
}

// ResolveInterrupted takes over the unfinished runs no live drillbot holds,
// reverts every fault they recorded, and completes them as FAIL. A holder
// is dead when this process has seen its heartbeat unchanged for three
// heartbeat intervals (its own or the holder's, whichever is longer); a run
// is overdue when a fault outlived its deadline plus the revert timeout,
// both measured from the holder's own stamps and placed on this process's
// clock at the moment it saw them. Runs whose revert failed (RevertFailed)
// are retried with backoff until every fault is reverted. The daemon calls
// it at start and then periodically (the sweep); a run first seen now is
// judged after three intervals, never at once.
func (e *Engine) ResolveInterrupted(ctx context.Context) ([]v1alpha1.DrillRun, error) {
	now := e.clock.Now()
	runs, err := e.store.List(ctx, "")
	if err != nil {
		return nil, err
	}
	e.sweepMu.Lock()
	seen := map[string]bool{}
	for i := range runs {
		seen[runs[i].Name] = true
	}
	for name := range e.observed {
		if !seen[name] {
			delete(e.observed, name)
		}
	}
	for name := range e.retries {
		if !seen[name] {
			delete(e.retries, name)
		}
	}
	e.sweepMu.Unlock()
	return e.resolve(ctx, runs, func(r *v1alpha1.DrillRun) string {
		if r.Status.Phase == v1alpha1.PhaseRevertFailed {
			if e.retryDue(r.Name, now) {
				return "revert retried"
			}
			return ""
		}
		return e.judge(r, now)
	})
}

// judge says why r, an unfinished run, is to be taken over now ("" for a
// live holder).
func (e *Engine) judge(r *v1alpha1.DrillRun, now time.Time) string {
	hb := r.Status.Holder + "|"
	if r.Status.HeartbeatAt != nil {
		hb += r.Status.HeartbeatAt.UTC().Format(time.RFC3339Nano)
	}
	e.sweepMu.Lock()
	obs, ok := e.observed[r.Name]
	if !ok || obs.heartbeat != hb {
		obs = observation{heartbeat: hb, seen: now}
		e.observed[r.Name] = obs
	}
	e.sweepMu.Unlock()
	interval := max(e.heartbeat, time.Duration(r.Status.HeartbeatSeconds)*time.Second)
	if silent := now.Sub(obs.seen); silent > 3*interval {
		return fmt.Sprintf("interrupted during %s: drillbot %q stopped before the run finished (no heartbeat for %s)",
			orPending(r.Status.Phase), r.Status.Holder, FormatDuration(silent))
	}
	def := drill.Definition{Spec: r.Spec.Snapshot}
	def.FromSpec()
	for _, j := range r.Status.Journal {
		if j.State == v1alpha1.JournalReverted || j.ExpiresAt == nil {
			continue
		}
		// Time left by the holder's clock at its last heartbeat, from when
		// this process saw that heartbeat.
		ref := j.RecordedAt.Time
		if r.Status.HeartbeatAt != nil && r.Status.HeartbeatAt.After(ref) {
			ref = r.Status.HeartbeatAt.Time
		}
		if deadline := obs.seen.Add(j.ExpiresAt.Sub(ref) + def.Timeouts.Revert); now.After(deadline) {
			return fmt.Sprintf("fault %s past its deadline (%s by the holder's clock) while held by %q: reverted by the sweep",
				j.ID, j.ExpiresAt.UTC().Format(time.RFC3339), r.Status.Holder)
		}
	}
	return "" // held by a live process
}

// retryDue says whether a failed revert is to be retried now, and if so
// schedules the one after: the first at once, then after the backoff,
// doubling up to its cap.
func (e *Engine) retryDue(run string, now time.Time) bool {
	e.sweepMu.Lock()
	defer e.sweepMu.Unlock()
	r := e.retries[run]
	if !r.next.IsZero() && now.Before(r.next) {
		return false
	}
	wait := e.backoff.Duration
	for i := 0; i < r.attempts && wait < e.backoff.Cap; i++ {
		wait *= 2
	}
	r.attempts++
	r.next = now.Add(min(wait, e.backoff.Cap))
	e.retries[run] = r
	return true
}

// RevertActive completes every unfinished run as FAIL with reason,
// reverting its faults, and retries every failed revert at once: what
// `drillbot halt` does for runs that no live daemon reverted within its
// wait. Runs whose revert fails again stay RevertFailed.
func (e *Engine) RevertActive(ctx context.Context, reason string) ([]v1alpha1.DrillRun, error) {
	runs, err := e.store.List(ctx, "")
	if err != nil {
		return nil, err
	}
	return e.resolve(ctx, runs, func(r *v1alpha1.DrillRun) string {
		return fmt.Sprintf("halted during %s: %s", orPending(r.Status.Phase), reason)
	})
}

// OpenRuns lists the runs not Completed: in progress, or holding a fault
// whose revert failed.
func (e *Engine) OpenRuns(ctx context.Context) ([]v1alpha1.DrillRun, error) {
	runs, err := e.store.List(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []v1alpha1.DrillRun
	for _, r := range runs {
		if r.Status.Phase != v1alpha1.PhaseCompleted {
			out = append(out, r)
		}
	}
	return out, nil
}

func (e *Engine) resolve(ctx context.Context, runs []v1alpha1.DrillRun, why func(*v1alpha1.DrillRun) string) ([]v1alpha1.DrillRun, error) {
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
		if mine {
			continue // this process runs it
		}
		reason := why(r)
		if reason == "" {
			continue // a live process holds it, or its retry is not due
		}
		def := drill.Definition{Name: r.Spec.Drill, Spec: r.Spec.Snapshot, Source: r.Spec.Source}
		def.FromSpec()
		rs := &runState{e: e, def: def, run: r.DeepCopy(), log: e.log.With("drill", def.Name, "run", r.Name),
			retry: r.Status.Phase == v1alpha1.PhaseRevertFailed}
		if !rs.retry {
			rs.out.failures = []string{reason}
		}
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
		// Take the run over with a write that carries the resourceVersion
		// just read: if its holder wrote meanwhile (it is alive) or another
		// drillbot took it first, the write conflicts and this one leaves it.
		rs.run.Status.Holder = e.holder
		rs.run.Status.HeartbeatAt, rs.run.Status.HeartbeatSeconds = rs.stamp(), e.heartbeatSeconds()
		updated, err := e.store.UpdateStatus(ctx, rs.run)
		if err != nil {
			if isConflict(err) {
				continue
			}
			errs = append(errs, fmt.Errorf("run %s: take over: %w", r.Name, err))
			continue
		}
		rs.run.ResourceVersion = updated.ResourceVersion
		rs.log.Warn("resolving run", "phase", r.Status.Phase, "holder", r.Status.Holder, "reason", reason)
		// This process holds the run now: it heartbeats while it reverts,
		// so no other drillbot takes it over meanwhile.
		rs.startHeartbeat(ctx)
		wg.Go(func() {
			final := rs.finish(ctx, sc)
			if final.Status.Phase == v1alpha1.PhaseCompleted {
				e.unlock(ctx, TargetKey(def.Spec.Target), final.Name)
				e.sweepMu.Lock()
				delete(e.retries, final.Name)
				e.sweepMu.Unlock()
			} else {
				mu.Lock()
				errs = append(errs, fmt.Errorf("run %s: revert failed, fault may still be active", final.Name))
				mu.Unlock()
			}
			mu.Lock()
			done = append(done, *final)
			mu.Unlock()
		})
	}
	wg.Wait()
	sort.Slice(done, func(i, j int) bool { return done[i].Name < done[j].Name })
	return done, errors.Join(errs...)
}
