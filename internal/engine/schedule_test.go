package engine_test

import (
	"context"
	"sync"
	"testing"
	"time"

	testingclock "k8s.io/utils/clock/testing"

	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
)

func TestNextRun(t *testing.T) {
	monthly, err := drill.ParseSchedule("CRON_TZ=UTC 0 3 1 * *")
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		name      string
		last, now time.Time
		want      time.Time
		wantDue   bool
	}{
		{"never ran waits for the next slot", time.Time{}, at("2026-11-24T10:00:00Z"), at("2026-12-01T03:00:00Z"), false},
		{"ran this month", at("2026-11-01T03:00:00Z"), at("2026-11-24T10:00:00Z"), at("2026-12-01T03:00:00Z"), false},
		{"one run missed runs once now", at("2026-10-01T03:00:00Z"), at("2026-11-24T10:00:00Z"), at("2026-11-24T10:00:00Z"), true},
		{"several runs missed still run once now", at("2026-01-01T03:00:00Z"), at("2026-11-24T10:00:00Z"), at("2026-11-24T10:00:00Z"), true},
		{"exactly at the slot is due", at("2026-10-01T03:00:00Z"), at("2026-11-01T03:00:00Z"), at("2026-11-01T03:00:00Z"), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, due := engine.NextRun(monthly, tc.last, tc.now)
			if !got.Equal(tc.want) || due != tc.wantDue {
				t.Errorf("NextRun = %v, %v; want %v, %v", got, due, tc.want, tc.wantDue)
			}
		})
	}
}

func TestSchedulerRunsOnTheFakeClock(t *testing.T) {
	sched, err := drill.ParseSchedule("@every 1h")
	if err != nil {
		t.Fatal(err)
	}
	clk := testingclock.NewFakeClock(t0)
	defs := []drill.Definition{{Name: "hourly", Schedule: sched}, {Name: "on-demand"}}
	var (
		mu  sync.Mutex
		ran []time.Time
	)
	got := make(chan struct{}, 10)
	s := &engine.Scheduler{Clock: clk, Run: func(_ context.Context, d drill.Definition) {
		mu.Lock()
		ran = append(ran, clk.Now())
		mu.Unlock()
		if d.Name != "hourly" {
			t.Errorf("ran %s", d.Name)
		}
		got <- struct{}{}
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Loop(ctx, defs) }()
	for i := 1; i <= 3; i++ {
		for !clk.HasWaiters() {
			time.Sleep(time.Millisecond)
		}
		clk.Step(time.Hour)
		<-got
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for i, r := range ran {
		if want := t0.Add(time.Duration(i+1) * time.Hour); !r.Equal(want) {
			t.Errorf("run %d at %v, want %v", i, r, want)
		}
	}
}

// never is a schedule with no next run, as robfig/cron returns for a day
// that does not exist (February 30th): the zero time.
type never struct{}

func (never) Next(time.Time) time.Time { return time.Time{} }

// TestSchedulerNeverFiresAScheduleWithoutANextRun: a zero next time is
// neither due (catch-up) nor fired (a timer at the zero time fires at once,
// and did, forever).
func TestSchedulerNeverFiresAScheduleWithoutANextRun(t *testing.T) {
	if next, due := engine.NextRun(never{}, t0.Add(-time.Hour), t0); due || !next.IsZero() {
		t.Errorf("NextRun of a schedule that never fires = %v, due %v", next, due)
	}
	hourly, err := drill.ParseSchedule("@every 1h")
	if err != nil {
		t.Fatal(err)
	}
	clk := testingclock.NewFakeClock(t0)
	defs := []drill.Definition{{Name: "never", Schedule: never{}}, {Name: "hourly", Schedule: hourly}}
	var (
		mu  sync.Mutex
		ran = map[string]int{}
	)
	got := make(chan struct{}, 100)
	s := &engine.Scheduler{Clock: clk, Run: func(_ context.Context, d drill.Definition) {
		mu.Lock()
		ran[d.Name]++
		mu.Unlock()
		got <- struct{}{}
	}}
	s.SetLastRun("never", t0.Add(-24*time.Hour)) // a catch-up must not fire it either
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Loop(ctx, defs) }()
	for range 2 {
		for !clk.HasWaiters() {
			time.Sleep(time.Millisecond)
		}
		clk.Step(time.Hour)
		<-got
	}
	for !clk.HasWaiters() { // the loop is waiting again: every run it started has been counted
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if ran["never"] != 0 || ran["hourly"] != 2 {
		t.Errorf("runs %v, want never: 0, hourly: 2", ran)
	}
}
