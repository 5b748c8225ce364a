package evidence_test

// Second adversarial review of the evidence archive (after the 13 fixes of
// review_test.go). Every test here fails on the archive as it stands: each
// shows `drillbot evidence verify`, or the report built from the archive,
// saying something better than the truth, or worse than the truth on an
// honest archive. Each names the rule of /work/shared/EVIDENCE.md it
// breaks and what the truth is.

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/evidence"
	"github.com/drillbot-io/drillbot/internal/report"
)

// TestReview2TamperedRecordHidesTheNextGenuineRun: on a bucket without
// Object Lock, whoever may write it replaces the newest record (place 2,
// a PASS) with bytes that do not verify. The archiver sees the head is not
// the record its run says it wrote there, and, as designed, chains the
// next record (the day-2 FAIL) to the digest it wrote, not to the
// replacement. verify then names place 2 (right), but also takes the
// genuine FAIL at place 3 (drillbot's signature, its own place, its fields
// its DrillRun's) for a replaced record ("does not chain to place 2") and
// leaves it out of Verified: the report built from the archive has the
// day-1 PASS as the drill's newest run, compliant, and the FAIL is in
// neither its table nor its compliance. A record that verifies cannot be
// blamed for its predecessor's replacement.
// Truth: the drill's newest run FAILED, and the archive proves it.
// Rule 8 in reverse, the report better than the truth (what the report
// says must not improve because evidence next to it was damaged), and
// rule 9 (the damage is on stderr; the pasted report says compliant).
func TestReview2TamperedRecordHidesTheNextGenuineRun(t *testing.T) {
	ctx := context.Background()
	s, k, _ := keys(t)
	runs, store, clk := newRuns(), evidence.NewMemStore(), clocktesting.NewFakeClock(t0.Add(3*day))
	a := archiver(runs, store, s, clk)
	addRun(t, runs, "restore", "0 2 * * *", t0, v1alpha1.VerdictPass)
	addRun(t, runs, "restore", "0 2 * * *", t0.Add(day), v1alpha1.VerdictPass)
	pass(t, a)
	key2 := reviewLayout.Key("prod-eu", "restore", 2)
	raw, _ := store.Get(ctx, key2)
	store.Tamper(key2, []byte(strings.Replace(string(raw), `"payload":"`, `"payload":"A`, 1)))
	failed := addRun(t, runs, "restore", "0 2 * * *", t0.Add(2*day), v1alpha1.VerdictFail)
	pass(t, a)
	got, _ := runs.Get(ctx, failed.Name)
	if !got.Status.Archived() || got.Status.Archive.Seq != 3 {
		t.Fatalf("the FAIL's archive status: %+v, want place 3", got.Status.Archive)
	}

	v := verify(t, store, k, evidence.VerifyOptions{Written: writtenFromCluster(t, runs)})
	reported := slices.ContainsFunc(v.Runs(), func(r v1alpha1.DrillRun) bool { return r.Name == failed.Name })
	rep := report.Build(v.Runs(), report.Options{Now: clk.Now(), WindowDays: 30})
	if !reported || rep.CompliantDrills != 0 {
		t.Errorf("run %s (FAIL, drillbot's record at place 3, verified signature) is not among the archive's runs (%v): the report says %d of %d drills compliant (%s); problems:\n%s",
			failed.Name, reported, rep.CompliantDrills, rep.TotalDrills, rep.Drills[0].Status, problems(v))
	}
}

// TestReview2ScheduleChangeMidPeriod: gaps() takes the schedule in force
// for the next slot from the newest scheduled run started at or before
// the previous slot, and never looks again before the slot it computed.
// When the drill's schedule changes between two slots of the old one (the
// drill file edited; the daemon's scheduler keeps the last run and fires
// the new schedule's next slot after it, so the runs below are what an
// honest daemon leaves), the scheduled runs of the new schedule that came
// before the old schedule's next slot are matched to the wrong slots:
//   - weekly to daily: the old schedule's next slot is a week later, so
//     the daily slots of that week are never checked; the one of them that
//     had no run (day 11) is no gap. Better than the truth (rule 1: slots
//     not checked are not slots answered; rule 3: the scheduled runs of
//     days 8 to 13 show the daily schedule in force, and are ignored).
//   - 02:00 to 14:00 daily (changed on day 4 before 14:00): the 14:00 runs
//     are taken for the old 02:00 slots, and a slot whose own run is in
//     the archive (day 5 14:00) is named a gap. Worse than the truth on an
//     honest archive (rule 8).
func TestReview2ScheduleChangeMidPeriod(t *testing.T) {
	at := func(d int, h time.Duration) time.Time { return t0.Add(time.Duration(d)*day + h - 2*time.Hour) } // t0 is 02:00
	tests := []struct {
		name     string
		old, new string
		// oldDays run under old at 02:00, newDays under new at newHour.
		oldDays, newDays []int
		newHour          time.Duration
		to               time.Time
		// want must be gaps; every new run's own slot must not be one.
		want []time.Time
	}{
		{name: "weekly to daily", old: "0 2 * * 4", new: "0 2 * * *", // t0, 2026-01-01, is a Thursday
			oldDays: []int{0, 7}, newDays: []int{8, 9, 10, 12, 13}, newHour: 2 * time.Hour, to: at(14, 0),
			want: []time.Time{at(11, 2*time.Hour)}},
		{name: "02:00 to 14:00", old: "0 2 * * *", new: "0 14 * * *",
			oldDays: []int{0, 1, 2, 3, 4}, newDays: []int{4, 5, 6, 7, 8, 9}, newHour: 14 * time.Hour, to: at(10, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, k, _ := keys(t)
			runs, store, clk := newRuns(), evidence.NewMemStore(), clocktesting.NewFakeClock(at(20, 0))
			oldSpec, newSpec := daily(), daily()
			oldSpec.Schedule, newSpec.Schedule = tt.old, tt.new
			for _, d := range tt.oldDays {
				addRunWith(t, runs, engine.TriggerSchedule, oldSpec, at(d, 2*time.Hour), v1alpha1.VerdictPass)
			}
			for _, d := range tt.newDays {
				addRunWith(t, runs, engine.TriggerSchedule, newSpec, at(d, tt.newHour), v1alpha1.VerdictPass)
			}
			pass(t, archiver(runs, store, s, clk))
			v := verify(t, store, k, evidence.VerifyOptions{From: t0, To: tt.to})
			gaps := allGaps(v)
			isGap := func(at time.Time) bool {
				return slices.ContainsFunc(gaps, func(g time.Time) bool { return g.Equal(at) })
			}
			for _, w := range tt.want {
				if !isGap(w) {
					t.Errorf("slot %s had no run and is no gap; gaps %v", w.Format(time.RFC3339), gaps)
				}
			}
			for _, d := range tt.newDays {
				if slot := at(d, tt.newHour); isGap(slot) {
					t.Errorf("slot %s is named a gap, but its scheduled run (started at the slot) is in the archive; gaps %v", slot.Format(time.RFC3339), gaps)
				}
			}
		})
	}
}

// TestReview2RunInProgressIsAGap: the grace after a slot is one hour,
// but a scheduled run's record can only come when the run has finished:
// this drill (RTO target 30m) may run 2m preflight + 10m inject + 60m
// recover (twice the RTO) + 5m verify + 10m revert = 87 minutes under its
// default timeouts, then waits for the archiver. An auditor's nightly
// `evidence verify --days 1` at 03:15 finds day 3's run still recovering
// (started at its 02:00 slot, honest and on time) and prints "GAP: no run
// record for the scheduled slot", exit 1.
// Truth: the slot's run started on time and has no verdict yet: pending.
// Rule 8 (a false gap on an honest archive: the check gets switched off).
func TestReview2RunInProgressIsAGap(t *testing.T) {
	ctx := context.Background()
	s, k, _ := keys(t)
	runs, store, clk := newRuns(), evidence.NewMemStore(), clocktesting.NewFakeClock(t0.Add(3*day+75*time.Minute))
	for d := 0; d < 3; d++ {
		addRun(t, runs, "restore", "0 2 * * *", t0.Add(time.Duration(d)*day), v1alpha1.VerdictPass)
	}
	running := addRun(t, runs, "restore", "0 2 * * *", t0.Add(3*day), "")
	running.Status.Phase, running.Status.FinishedAt = v1alpha1.PhaseRecovering, nil
	if _, err := runs.UpdateStatus(ctx, running); err != nil {
		t.Fatal(err)
	}
	pass(t, archiver(runs, store, s, clk))
	v := verify(t, store, k, evidence.VerifyOptions{From: clk.Now().Add(-day), To: clk.Now()})
	if g := allGaps(v); len(g) != 0 {
		t.Errorf("gaps %v at %s: day 3's run started at its slot and is still recovering (its drill may take 87m), want its slot pending",
			g, clk.Now().Format(time.RFC3339))
	}
}

// TestReview2VerifierZoneMakesHonestRecordsInconsistent: verify checks a
// record's fields against those derive() computes again from its DrillRun,
// NextScheduledRun among them: the schedule's next slot after StartedAt,
// computed in the zone of StartedAt as decoded, which is the VERIFIER's
// local zone (a MicroTime decodes to time.Local). The daemon (UTC, the
// image's zone) computed it in its own. An auditor whose laptop is in
// Berlin verifies an honest archive: every record of every scheduled
// drill is "not what its DrillRun says", none is verified, none is in the
// report, and "nothing verified".
// Truth: every record is drillbot's, untouched. Rule 8 (a verdict worse
// than the truth on an honest archive) and rule 4 (one clock decides: the
// daemon's zone, which the record names, not the reader's).
func TestReview2VerifierZoneMakesHonestRecordsInconsistent(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	s, k, _ := keys(t)
	runs, store, clk := newRuns(), evidence.NewMemStore(), clocktesting.NewFakeClock(t0.Add(3*day))
	local := time.Local
	t.Cleanup(func() { time.Local = local })
	time.Local = time.UTC // the daemon's zone
	for d := 0; d < 3; d++ {
		addRun(t, runs, "restore", "0 2 * * *", t0.Add(time.Duration(d)*day), v1alpha1.VerdictPass)
	}
	pass(t, archiver(runs, store, s, clk))
	time.Local = berlin // the auditor's
	v := verify(t, store, k, evidence.VerifyOptions{})
	time.Local = local
	if v.Problems != 0 || len(v.Runs()) != 3 {
		t.Errorf("an honest archive verified in another zone: %d problems, %d runs verified of 3:\n%s", v.Problems, len(v.Runs()), problems(v))
	}
}

// TestReview2IndexHidesTwoClustersInOneChain: two clusters installed with
// one --cluster-name (a copied values file), each with its own signing
// key (keygen per cluster); the auditor trusts both. Each archiver trusts
// only its own key when it reads the chain back, so neither sees the
// other's records and neither refuses the chain (ErrOtherCluster needs a
// trusted record of the other UID). `evidence verify` names the two UIDs;
// the report (`report --archive`, which reads the chain's index) does
// not: an index entry carries the run, not its record's cluster UID, so
// cluster A's ten indexed runs have no UID and only B's is counted. The
// report merges both clusters' runs of "restore": B's newest PASS makes
// the drill compliant, exit 0, though A's newest run FAILED.
// Truth: A's restore drill's newest run failed; B's chain is not A's.
// Rule 6 (scope: this cluster's runs, not another's).
func TestReview2IndexHidesTwoClustersInOneChain(t *testing.T) {
	ctx := context.Background()
	sA, _, pubA := keys(t)
	sB, _, pubB := keys(t)
	store, clk := evidence.NewMemStore(), clocktesting.NewFakeClock(t0.Add(20*day))
	runsA, runsB := newRuns(), newRuns()
	a, b := archiver(runsA, store, sA, clk), archiver(runsB, store, sB, clk)
	a.Cluster.UID, b.Cluster.UID = "kube-system-uid-a", "kube-system-uid-b"
	for d := 0; d < 10; d++ {
		verdict := v1alpha1.VerdictPass
		if d == 9 {
			verdict = v1alpha1.VerdictFail
		}
		addRun(t, runsA, "restore", "0 2 * * *", t0.Add(time.Duration(d)*day), verdict)
		pass(t, a)
	}
	rb := addRun(t, runsB, "restore", "0 3 * * *", t0.Add(9*day+time.Hour), v1alpha1.VerdictPass)
	pass(t, b)
	if got, _ := runsB.Get(ctx, rb.Name); !got.Status.Archived() {
		t.Skipf("cluster B's run was refused (%+v): the writer saw the chain is another cluster's", got.Status.Archive)
	}
	both, err := evidence.LoadKeyring(pubA, pubB)
	if err != nil {
		t.Fatal(err)
	}
	if full := verify(t, store, both, evidence.VerifyOptions{}); !strings.Contains(problems(full), "more than one cluster") {
		t.Fatalf("verify from the records does not name the two clusters: %s", problems(full))
	}
	v, err := evidence.Verify(ctx, store, reviewLayout, both, evidence.VerifyOptions{UseIndex: true})
	if err != nil {
		t.Fatal(err)
	}
	rep := report.Build(v.Runs(), report.Options{Now: clk.Now(), WindowDays: 30})
	if v.Problems == 0 && rep.CompliantDrills == rep.TotalDrills {
		t.Errorf("report from the archive's index: no problem, %d of %d drills compliant, but the chain holds two clusters' runs and cluster A's newest run FAILED",
			rep.CompliantDrills, rep.TotalDrills)
	}
}

// TestReview2ArchiverTakesAMovedCopyForItsRecord: run A's record is
// written at place 2 but its status update is lost (the API server
// unavailable). Before the next pass, whoever may write the bucket (no
// Object Lock) copies that record, byte for byte, to place 3 and deletes
// place 2. The archiver reads the chain back, finds at its head a record
// of run A that its own key verifies, archived since A finished, and takes
// it for A's record: A is marked archived at place 3 (and may be pruned)
// and never written again. But the record at place 3 says it is place 2:
// verify counts it as moved, not as A's run, and A's FAIL is in neither
// the archive's runs nor the report. The scan checks signature, run and
// time, never that the record's place is the place it was found at.
// Truth: no record of run A verifies in the archive. Rule 5 (an answer
// that does not carry the expected cause, a record at its own place, is
// not evidence it was written) and rule 7 (a run let go for a record that
// is not there).
func TestReview2ArchiverTakesAMovedCopyForItsRecord(t *testing.T) {
	ctx := context.Background()
	s, k, _ := keys(t)
	inner, store, clk := newRuns(), evidence.NewMemStore(), clocktesting.NewFakeClock(t0.Add(time.Hour))
	addRun(t, inner, "restore", "0 2 * * *", t0.Add(-day), v1alpha1.VerdictPass)
	failed := addRun(t, inner, "restore", "0 2 * * *", t0, v1alpha1.VerdictFail)
	runs := &flakyRuns{KubeStore: inner, fail: map[string]int{failed.Name: 1}}
	a := archiver(runs, store, s, clk)
	_, _ = a.Pass(ctx) // A's record at place 2; its status update fails
	if got, _ := inner.Get(ctx, failed.Name); got.Status.Archived() {
		t.Fatalf("the status update was to fail: %+v", got.Status.Archive)
	}
	key2, key3 := reviewLayout.Key("prod-eu", "restore", 2), reviewLayout.Key("prod-eu", "restore", 3)
	raw, err := store.Get(ctx, key2)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Create(ctx, key3, raw, time.Time{}); err != nil {
		t.Fatal(err)
	}
	store.Remove(key2)
	pass(t, a)
	got, _ := inner.Get(ctx, failed.Name)
	if !got.Status.Archived() {
		return
	}
	v := verify(t, store, k, evidence.VerifyOptions{Written: writtenFromCluster(t, inner)})
	if !slices.ContainsFunc(v.Runs(), func(r v1alpha1.DrillRun) bool { return r.Name == failed.Name }) {
		t.Errorf("run %s (FAIL) is marked archived at %s, but no record of it verifies in the archive (problems:\n%s)",
			failed.Name, got.Status.Archive.Object, problems(v))
	}
}

// TestReview2RevertFailedRunNeverReachesTheArchive: the archiver takes
// Completed runs only. A run that has its verdict (FAIL) and its
// FinishedAt but whose revert failed stays RevertFailed until every fault
// is reverted, which may be days (the sweep retries with backoff) or
// never without a person. Meanwhile the report built from the archive
// (`report --archive`, what an auditor is given) has the day before's
// PASS as the drill's newest run: compliant, exit 0, while the cluster's
// own report says "FAULT MAY STILL BE ACTIVE". The package promises every
// finished run, held runs too, is written.
// Truth: the drill's newest run FAILED and its fault may still be active.
// Rule 9 (a fault whose revert failed is in the run's record: here the
// record the auditor reads holds nothing of it) and the report better
// than the truth.
func TestReview2RevertFailedRunNeverReachesTheArchive(t *testing.T) {
	ctx := context.Background()
	s, k, _ := keys(t)
	runs, store, clk := newRuns(), evidence.NewMemStore(), clocktesting.NewFakeClock(t0.Add(3*day))
	addRun(t, runs, "restore", "0 2 * * *", t0, v1alpha1.VerdictPass)
	failed := addRun(t, runs, "restore", "0 2 * * *", t0.Add(day), v1alpha1.VerdictFail)
	failed.Status.Phase = v1alpha1.PhaseRevertFailed
	if _, err := runs.UpdateStatus(ctx, failed); err != nil {
		t.Fatal(err)
	}
	pass(t, archiver(runs, store, s, clk))
	cluster, _ := runs.List(ctx, "")
	if own := report.Build(cluster, report.Options{Now: clk.Now(), WindowDays: 30}); own.CompliantDrills != 0 {
		t.Fatalf("the cluster's own report: %+v", own.Drills)
	}
	v := verify(t, store, k, evidence.VerifyOptions{})
	rep := report.Build(v.Runs(), report.Options{Now: clk.Now(), WindowDays: 30})
	if v.Problems == 0 && rep.CompliantDrills == rep.TotalDrills {
		t.Errorf("report from the archive: %d of %d drills compliant (%s), no problem; run %s FAILED two days ago and its fault may still be active",
			rep.CompliantDrills, rep.TotalDrills, rep.Drills[0].Status, failed.Name)
	}
}
