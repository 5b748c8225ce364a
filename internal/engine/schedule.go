package engine

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
	"k8s.io/utils/clock"

	"github.com/drillbot-io/drillbot/internal/drill"
)

// NextRun is when a schedule runs next, given its last run and now. Runs
// missed while drillbot was down are not replayed one by one: when one or more
// were missed, the drill runs once now (due is true) and then keeps its
// schedule. A zero last run means the drill never ran: it waits for its next
// slot after now. A schedule that never fires again (robfig/cron returns
// the zero time when nothing matches within five years) has a zero next
// time and is never due.
func NextRun(s cron.Schedule, last, now time.Time) (next time.Time, due bool) {
	if last.IsZero() {
		return s.Next(now), false
	}
	next = s.Next(last)
	if next.IsZero() {
		return next, false
	}
	if !next.After(now) {
		return now, true
	}
	return next, false
}

// Scheduler starts scheduled drills at their times. robfig/cron only parses;
// the loop is ours so the clock can be faked.
type Scheduler struct {
	Clock  clock.Clock
	Logger *slog.Logger
	// Run starts one drill; it is called on its own goroutine.
	Run func(ctx context.Context, def drill.Definition)
	// OnNext, when set, is told each drill's next run time.
	OnNext func(def drill.Definition, next time.Time)

	mu   sync.Mutex
	last map[string]time.Time
}

// Loop schedules defs until ctx ends, then waits for started runs.
func (s *Scheduler) Loop(ctx context.Context, defs []drill.Definition) error {
	if s.Clock == nil {
		s.Clock = clock.RealClock{}
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	s.mu.Lock()
	if s.last == nil {
		s.last = map[string]time.Time{}
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	defer wg.Wait()
	next := map[string]time.Time{}
	now := s.Clock.Now()
	for _, d := range defs {
		if d.Schedule == nil || d.Spec.Suspend {
			continue
		}
		n, due := NextRun(d.Schedule, s.LastRun(d.Name), now)
		if n.IsZero() {
			s.Logger.Error("drill schedule never fires: not scheduled", "drill", d.Name, "schedule", d.Spec.Schedule)
			continue
		}
		if due {
			s.Logger.Info("scheduled run missed while drillbot was down: running once now", "drill", d.Name)
		}
		next[d.Name] = n
		if s.OnNext != nil {
			s.OnNext(d, n)
		}
		s.Logger.Info("drill scheduled", "drill", d.Name, "next", n)
	}
	for {
		if len(next) == 0 {
			<-ctx.Done()
			return nil
		}
		var soonest time.Time
		for _, n := range next {
			if soonest.IsZero() || n.Before(soonest) {
				soonest = n
			}
		}
		t := s.Clock.NewTimer(soonest.Sub(s.Clock.Now()))
		select {
		case <-ctx.Done():
			t.Stop()
			if errors.Is(ctx.Err(), context.Canceled) {
				return nil
			}
			return ctx.Err()
		case <-t.C():
		}
		now := s.Clock.Now()
		for _, d := range defs {
			n, ok := next[d.Name]
			if !ok || n.After(now) {
				continue
			}
			s.mu.Lock()
			s.last[d.Name] = now
			s.mu.Unlock()
			wg.Add(1)
			go func(d drill.Definition) {
				defer wg.Done()
				s.Run(ctx, d)
			}(d)
			n = d.Schedule.Next(now)
			if !n.After(now) {
				// Never again (zero), or a schedule that does not move
				// forward: firing it again now would be a busy loop.
				s.Logger.Error("drill schedule has no next run: no longer scheduled", "drill", d.Name, "schedule", d.Spec.Schedule)
				delete(next, d.Name)
				continue
			}
			next[d.Name] = n
			if s.OnNext != nil {
				s.OnNext(d, n)
			}
		}
	}
}

// LastRun is when the drill last ran, as far as the scheduler knows.
func (s *Scheduler) LastRun(name string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last[name]
}

// SetLastRun tells the scheduler when a drill last ran (e.g. from its newest
// DrillRun), so missed runs are caught up once.
func (s *Scheduler) SetLastRun(name string, t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		s.last = map[string]time.Time{}
	}
	s.last[name] = t
}
