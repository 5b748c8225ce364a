package evidence_test

// Third adversarial review of the evidence archive (after the fixes of
// review_test.go and review2_test.go). Every test here fails on the
// archive as it stands: each shows `drillbot evidence verify` saying
// something better than the truth, or worse than the truth on an honest
// archive. Each names the rule of /work/shared/EVIDENCE.md it breaks and
// what the truth is.

import (
	"context"
	"slices"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/evidence"
)

// TestReview3NewScheduleRunTakenForAnOldSlot: the drill's schedule is
// changed on Tuesday (day 5, after its 02:00 run) from daily 02:00 to
// weekly, Thursday 14:00 (t0 is Thursday 2026-01-01). The daemon fires the
// new schedule's first slot, day 7 14:00, and the next, day 14 14:00: an
// honest archive. gaps() judges the old schedule's day-7 02:00 slot before
// it looks for a schedule change, credits it with the new schedule's
// day-7 14:00 run (any unused scheduled run in [slot, next slot)), and
// only then, computing the old schedule's day-8 slot, sees the change and
// switches: the new schedule's day-7 14:00 slot finds its run already
// used, and is named a gap ("no run record for the scheduled slot") while
// its own scheduled run, started at the slot, is in the archive.
// Truth: the new schedule's slot was answered by its run.
// Rule 8 (a verdict worse than the truth on an honest archive), and rule 2
// (a run is evidence for its own slot, not another schedule's).
func TestReview3NewScheduleRunTakenForAnOldSlot(t *testing.T) {
	at := func(d int, h time.Duration) time.Time { return t0.Add(time.Duration(d)*day + h - 2*time.Hour) } // t0 is 02:00
	s, k, _ := keys(t)
	runs, store, clk := newRuns(), evidence.NewMemStore(), clocktesting.NewFakeClock(at(20, 0))
	oldSpec, newSpec := daily(), daily()
	newSpec.Schedule = "0 14 * * 4"
	for d := 0; d <= 5; d++ {
		addRunWith(t, runs, engine.TriggerSchedule, oldSpec, at(d, 2*time.Hour), v1alpha1.VerdictPass)
	}
	for _, d := range []int{7, 14} {
		addRunWith(t, runs, engine.TriggerSchedule, newSpec, at(d, 14*time.Hour), v1alpha1.VerdictPass)
	}
	pass(t, archiver(runs, store, s, clk))
	// The period starts after the old schedule's last run: its only
	// slots are the new schedule's (day 7 and day 14, 14:00).
	v := verify(t, store, k, evidence.VerifyOptions{From: at(7, 0), To: at(16, 0)})
	gaps := allGaps(v)
	for _, d := range []int{7, 14} {
		slot := at(d, 14*time.Hour)
		if slices.ContainsFunc(gaps, func(g time.Time) bool { return g.Equal(slot) }) {
			t.Errorf("slot %s (weekly, Thursday 14:00) is named a gap, but its scheduled run, started at the slot, is in the archive; gaps %v\n%s",
				slot.Format(time.RFC3339), gaps, problems(v))
		}
	}
}

// TestReview3MissedSlotNeverJudgedByADailyCheck: a daily drill (02:00)
// missed its slot today (day 9: the daemon was down; no run, no record).
// The auditor's nightly `evidence verify --days 1`, at 10:00, eight hours
// after the slot (the drill takes minutes, at most 87 under its
// timeouts): the period's one slot is "pending" (a slot waits until the
// next slot, up to a day), no slot of the period is judged, and verify
// says "every record verified; no gap", exit 0. Run any day at any hour,
// a one-day check of a daily drill judges nothing: the missed slot is a
// gap in no daily check, ever.
// Truth: the period's only slot has no run record 8 hours on; nothing in
// the period was checked.
// Rule 1 (a check that found nothing to check is INCONCLUSIVE or FAIL,
// never PASS: zero slots judged is not "no gap").
func TestReview3MissedSlotNeverJudgedByADailyCheck(t *testing.T) {
	s, k, _ := keys(t)
	now := t0.Add(9*day + 8*time.Hour) // day 9, 10:00
	runs, store, clk := newRuns(), evidence.NewMemStore(), clocktesting.NewFakeClock(now)
	for d := 0; d < 9; d++ {
		addRun(t, runs, "restore", "0 2 * * *", t0.Add(time.Duration(d)*day), v1alpha1.VerdictPass)
	}
	pass(t, archiver(runs, store, s, clk))
	v := verify(t, store, k, evidence.VerifyOptions{From: now.Add(-day), To: now})
	var pending []time.Time
	for _, c := range v.Chains {
		pending = append(pending, c.Pending...)
	}
	if v.Problems == 0 && len(allGaps(v)) == 0 {
		t.Errorf("verify --days 1 at %s: no problem, no gap (pending %v); the period's one slot, %s, has no run record 8 hours on, and no slot of the period was judged",
			now.Format(time.RFC3339), pending, t0.Add(9*day).Format(time.RFC3339))
	}
}

// TestReview3RunOutlastingTheNextSlotIsAGap: a drill scheduled every 2
// hours, RTO target 1h: its recover phase may take twice the RTO, so a run
// may take 2m + 10m + 120m + 5m + 10m = 147 minutes. The 08:00 run
// started on time and is still recovering at 10:05; the scheduler's 10:00
// run found the target busy and is archived held (INCONCLUSIVE), as
// designed. verify, at 10:05, waits for a slot's record only until the
// next slot: the 08:00 slot is named a gap ("no run record"), exit 1,
// while its run, started at the slot, has no verdict yet.
// Truth: the slot's run started on time and is in progress: pending.
// Rule 8 (a false gap on an honest archive), as TestReview2RunInProgressIsAGap
// for a daily drill.
func TestReview3RunOutlastingTheNextSlotIsAGap(t *testing.T) {
	ctx := context.Background()
	s, k, _ := keys(t)
	at := func(h time.Duration) time.Time { return t0.Add(h - 2*time.Hour) } // day 0, hour h
	now := at(10*time.Hour + 5*time.Minute)
	runs, store, clk := newRuns(), evidence.NewMemStore(), clocktesting.NewFakeClock(now)
	spec := daily()
	spec.Schedule, spec.Objectives.RTO = "0 */2 * * *", "1h"
	for _, h := range []time.Duration{2, 4, 6} {
		addRunWith(t, runs, engine.TriggerSchedule, spec, at(h*time.Hour), v1alpha1.VerdictPass)
	}
	running := addRunWith(t, runs, engine.TriggerSchedule, spec, at(8*time.Hour), "")
	running.Status.Phase, running.Status.FinishedAt = v1alpha1.PhaseRecovering, nil
	if _, err := runs.UpdateStatus(ctx, running); err != nil {
		t.Fatal(err)
	}
	held := addRunWith(t, runs, engine.TriggerSchedule, spec, at(10*time.Hour), v1alpha1.VerdictInconclusive)
	held.Status.Reason = "target busy: run " + running.Name + " holds it"
	held.Status.Stop = &v1alpha1.Stop{Kind: v1alpha1.StopTargetBusy, Before: true, Detail: "run " + running.Name}
	if _, err := runs.UpdateStatus(ctx, held); err != nil {
		t.Fatal(err)
	}
	pass(t, archiver(runs, store, s, clk))
	v := verify(t, store, k, evidence.VerifyOptions{From: at(0), To: now})
	if g := allGaps(v); len(g) != 0 {
		t.Errorf("gaps %v at %s: the 08:00 run started at its slot and is still recovering (its drill may take 147m), want its slot pending\n%s",
			g, now.Format(time.RFC3339), problems(v))
	}
}
