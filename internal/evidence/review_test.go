package evidence_test

// Adversarial review of the evidence archive. Every test here failed on
// the archive as first written (04ed7d9): each shows a case where
// `drillbot evidence verify` (or the report built from the archive) said
// something better than the truth, or where the archiver's own
// bookkeeping no longer matched the archive. Each names the rule of
// /work/shared/EVIDENCE.md it broke.

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the DST case needs America/New_York wherever it runs

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/evidence"
	"github.com/drillbot-io/drillbot/internal/report"
)

const day = 24 * time.Hour

var reviewLayout = evidence.Layout{Prefix: "drillbot"}

// daily is the drill spec addRun gives its runs (schedule "0 2 * * *").
func daily() v1alpha1.DrillSpec {
	return v1alpha1.DrillSpec{Scenario: "namespace-restore", Schedule: "0 2 * * *", Objectives: v1alpha1.Objectives{RTO: "30m", RPO: "1h"},
		Target: v1alpha1.Target{Namespace: "shop"}}
}

// addRunWith records a Completed run of drill "restore" with the given
// trigger and drill spec (as the run's snapshot), started at start.
func addRunWith(t *testing.T, runs *engine.KubeStore, trigger string, spec v1alpha1.DrillSpec, start time.Time, verdict v1alpha1.Verdict) *v1alpha1.DrillRun {
	t.Helper()
	name := "restore-" + trigger + "-" + start.UTC().Format("20060102-150405")
	by := &v1alpha1.Initiator{Kind: v1alpha1.InitiatorSchedule}
	if trigger != engine.TriggerSchedule {
		by = &v1alpha1.Initiator{Kind: v1alpha1.InitiatorUser, User: "alice"}
	}
	r := &v1alpha1.DrillRun{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), Labels: map[string]string{v1alpha1.LabelDrill: "restore"}},
		Spec: v1alpha1.DrillRunSpec{Drill: "restore", Scenario: spec.Scenario, Trigger: trigger, Snapshot: spec,
			DefinitionDigest: engine.DefinitionDigest(spec), StartedBy: by},
	}
	created, err := runs.Create(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	s, f := metav1.NewMicroTime(start), metav1.NewMicroTime(start.Add(5*time.Minute))
	created.Status = v1alpha1.DrillRunStatus{Phase: v1alpha1.PhaseCompleted, Verdict: verdict, StartedAt: &s, FinishedAt: &f,
		RTO: "4m0s", RTOTarget: "30m", RPO: "50m0s", RPOTarget: "1h", Findings: []string{"backup older than the drill's RPO window"}}
	updated, err := runs.UpdateStatus(context.Background(), created)
	if err != nil {
		t.Fatal(err)
	}
	return updated
}

func pass(t *testing.T, a *evidence.Archiver) {
	t.Helper()
	if _, err := a.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func verify(t *testing.T, store evidence.Store, k *evidence.Keyring, o evidence.VerifyOptions) evidence.Verified {
	t.Helper()
	v, err := evidence.Verify(context.Background(), store, reviewLayout, k, o)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func problems(v evidence.Verified) string {
	var out []string
	for _, c := range v.Chains {
		out = append(out, c.Problems...)
	}
	return strings.Join(out, "\n")
}

func allGaps(v evidence.Verified) []time.Time {
	var out []time.Time
	for _, c := range v.Chains {
		out = append(out, c.Gaps...)
	}
	return out
}

// writtenFromCluster is what `evidence verify --kubeconfig` passes as
// Written (cmd/drillbot clusterWritten): every place a DrillRun says it
// took, and the digest of what it wrote there.
func writtenFromCluster(t *testing.T, stores ...*engine.KubeStore) []evidence.Written {
	t.Helper()
	var out []evidence.Written
	for _, s := range stores {
		runs, err := s.List(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range runs {
			if a := r.Status.Archive; r.Status.Archived() {
				c, d, seq, ok := reviewLayout.Parse(a.Object)
				if !ok {
					t.Fatalf("run %s archived at %q, not a record's key", r.Name, a.Object)
				}
				out = append(out, evidence.Written{Chain: c + "/" + d, Seq: seq, Digest: a.Digest, Run: r.Name})
			}
		}
	}
	return out
}

// TestReviewDeletedHeadRefilledByTheDaemon: on a bucket without Object
// Lock, whoever may write it deletes the newest record (a FAIL). The
// daemon's next append reads the shortened chain and writes the next run
// at the freed place, chaining validly. The cluster's DrillRuns still say
// place 3 was the FAIL's (status.archive.digest), but verify compares only
// the highest place number, which the new record fills: "no problem", and
// the FAIL is gone from the archive and the report. The package comment
// promises the cluster's DrillRun shows the newest record missing; it does
// not once the daemon writes again.
// Rule 9 (the chain, the safeguard, fails silently) and rule 7 (the
// daemon overwrote the place of a record it knew it had written).
func TestReviewDeletedHeadRefilledByTheDaemon(t *testing.T) {
	s, k, _ := keys(t)
	runs, store, clk := newRuns(), evidence.NewMemStore(), clocktesting.NewFakeClock(t0.Add(10*day))
	a := archiver(runs, store, s, clk)
	addRun(t, runs, "restore", "0 2 * * *", t0, v1alpha1.VerdictPass)
	addRun(t, runs, "restore", "0 2 * * *", t0.Add(day), v1alpha1.VerdictPass)
	failed := addRun(t, runs, "restore", "0 2 * * *", t0.Add(2*day), v1alpha1.VerdictFail)
	pass(t, a)
	store.Remove(reviewLayout.Key("prod-eu", "restore", 3)) // no Object Lock: a delete is for good
	addRun(t, runs, "restore", "0 2 * * *", t0.Add(3*day), v1alpha1.VerdictPass)
	pass(t, a)

	v := verify(t, store, k, evidence.VerifyOptions{Written: writtenFromCluster(t, runs)})
	reported := false
	for _, r := range v.Runs() {
		reported = reported || r.Name == failed.Name
	}
	if v.Problems == 0 && !reported {
		t.Errorf("verify with the cluster's heads: no problem, yet run %s (FAIL, place 3 by its own status.archive) is in neither the archive nor the report", failed.Name)
	}
}

// overwriteStore is a bucket that does not honour If-None-Match: * (some
// S3-compatible stores ignore the header): Create overwrites. before runs
// once, just before the first Create, to let another writer in.
type overwriteStore struct {
	*evidence.MemStore
	before func()
}

func (o *overwriteStore) Create(ctx context.Context, key string, body []byte, until time.Time) error {
	if o.before != nil {
		f := o.before
		o.before = nil
		f()
	}
	o.MemStore.Remove(key)
	return o.MemStore.Create(ctx, key, body, until)
}

// TestReviewRunMarkedArchivedButItsRecordIsAnother: two drillbots writing
// one chain (two installs with the same --cluster-name, or an old and a
// new leader) on a store that ignores the conditional create. Both take
// place 1; the second write replaces the first. Both runs are marked
// archived (status.archive.digest), so both may be pruned, yet the store
// holds one of them: the archiver took the store's word and never read
// back what it wrote, and nothing checks that the store refuses overwrites.
// Rule 7 (a run pruned on the strength of a record that is not there) and
// rule 5 (an unverified answer taken as evidence).
func TestReviewRunMarkedArchivedButItsRecordIsAnother(t *testing.T) {
	ctx := context.Background()
	s, _, _ := keys(t)
	clk := clocktesting.NewFakeClock(t0.Add(time.Hour))
	store := &overwriteStore{MemStore: evidence.NewMemStore()}
	runsA, runsB := newRuns(), newRuns()
	a, b := archiver(runsA, store, s, clk), archiver(runsB, store, s, clk)
	addRun(t, runsA, "restore", "0 2 * * *", t0, v1alpha1.VerdictFail)
	addRun(t, runsB, "restore", "0 2 * * *", t0.Add(time.Minute), v1alpha1.VerdictPass)
	store.before = func() { pass(t, b) }
	pass(t, a)
	for _, rs := range []*engine.KubeStore{runsA, runsB} {
		list, _ := rs.List(ctx, "")
		for _, r := range list {
			st := r.Status.Archive
			if !r.Status.Archived() {
				continue
			}
			raw, err := store.Get(ctx, st.Object)
			if err != nil || evidence.Digest(raw) != st.Digest {
				rec, _ := evidence.Decode(raw)
				other := ""
				if rec.Run != nil {
					other = rec.Run.Name
				}
				t.Errorf("run %s is marked archived at %s (%s), but the store holds run %q's record there", r.Name, st.Object, st.Digest, other)
			}
		}
	}
}

// TestReviewAnnotatorKeySignsRunRecords: the keyring is flat. An auditor
// trusts an annotator's key (as `evidence verify --public-key` asks, for
// annotations), and that person can then sign a RunRecord: a scheduled
// PASS for a slot the daemon missed, appended to the chain like any
// record. verify counts it as a run, the gap disappears, and the report
// shows a PASS no drillbot ever observed.
// Rule 3 (what happened, as drillbot saw it, not what a person says) and
// rule 6 (a key's scope: annotations only).
func TestReviewAnnotatorKeySignsRunRecords(t *testing.T) {
	ctx := context.Background()
	s, _, daemonPub := keys(t)
	person, _, personPub := keys(t)
	runs, store, clk := newRuns(), evidence.NewMemStore(), clocktesting.NewFakeClock(t0.Add(5*day))
	a := archiver(runs, store, s, clk)
	for _, d := range []int{0, 1, 3} { // day 2 missed
		addRun(t, runs, "restore", "0 2 * * *", t0.Add(time.Duration(d)*day), v1alpha1.VerdictPass)
	}
	pass(t, a)
	fake := addRun(t, newRuns(), "restore", "0 2 * * *", t0.Add(2*day), v1alpha1.VerdictPass)
	rec, err := a.Record(*fake)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&evidence.Chain{Store: store, Layout: reviewLayout, Signer: person}).Append(ctx, rec, nil); err != nil {
		t.Fatal(err)
	}
	both, err := evidence.LoadKeyring(daemonPub) // drillbot's key, for run records
	if err != nil {
		t.Fatal(err)
	}
	if err := both.Load(evidence.RoleAnnotator, personPub); err != nil { // the person's, for annotations
		t.Fatal(err)
	}
	v := verify(t, store, both, evidence.VerifyOptions{From: t0, To: t0.Add(4 * day)})
	if v.Problems == 0 {
		t.Errorf("a run record signed by the annotator's key verified, and filled the missed slot of day 2: chain %+v", v.Chains[0].Keys)
	}
}

// TestReviewSameClusterNameTwoClustersOneChain: two clusters installed
// with the same --cluster-name (a copied values file) write one chain:
// the records carry different kube-system UIDs, which verify never
// compares. Cluster A ran on days 0 and 2, cluster B on days 1 and 3;
// verify says every slot of the drill has its run.
// Rule 6 (scope is explicit: this cluster's runs, not another's).
func TestReviewSameClusterNameTwoClustersOneChain(t *testing.T) {
	s, k, _ := keys(t)
	store, clk := evidence.NewMemStore(), clocktesting.NewFakeClock(t0.Add(5*day))
	runsA, runsB := newRuns(), newRuns()
	a, b := archiver(runsA, store, s, clk), archiver(runsB, store, s, clk)
	a.Cluster.UID, b.Cluster.UID = "kube-system-uid-a", "kube-system-uid-b"
	for d := 0; d < 4; d++ {
		rs, arch := runsA, a
		if d%2 == 1 {
			rs, arch = runsB, b
		}
		addRun(t, rs, "restore", "0 2 * * *", t0.Add(time.Duration(d)*day), v1alpha1.VerdictPass)
		pass(t, arch)
	}
	v := verify(t, store, k, evidence.VerifyOptions{From: t0, To: t0.Add(4 * day)})
	if v.Problems == 0 {
		t.Errorf("one chain holds the runs of two clusters (UIDs a and b) and verify says no problem, no gap: cluster A missed days 1 and 3")
	}
}

// TestReviewArchiveReportMergesClusters: `drillbot report --archive` is
// "one archive's report: it names its clusters itself", but Verified.Runs
// returns bare DrillRuns (no cluster) and report.Build groups by drill
// name. prod-us's newest run of "restore" FAILED; prod-eu's passed a day
// later: the report has one "restore", compliant, and 100% compliance.
// Rule 6 (a signal shared by many clusters, narrowed to none).
func TestReviewArchiveReportMergesClusters(t *testing.T) {
	s, k, _ := keys(t)
	store, clk := evidence.NewMemStore(), clocktesting.NewFakeClock(t0.Add(3*day))
	eu, us := newRuns(), newRuns()
	aEU, aUS := archiver(eu, store, s, clk), archiver(us, store, s, clk)
	aUS.Cluster = evidence.Cluster{Name: "prod-us", UID: "us-uid"}
	addRun(t, us, "restore", "0 2 * * *", t0.Add(day), v1alpha1.VerdictFail)
	addRun(t, eu, "restore", "0 2 * * *", t0.Add(2*day), v1alpha1.VerdictPass)
	pass(t, aEU)
	pass(t, aUS)
	v := verify(t, store, k, evidence.VerifyOptions{})
	if v.Problems != 0 || len(v.Chains) != 2 {
		t.Fatalf("verify: %+v", v)
	}
	rep := report.Build(v.Runs(), report.Options{Now: clk.Now(), WindowDays: 30})
	if rep.CompliantDrills == rep.TotalDrills {
		t.Errorf("report from the archive: %d of %d drills compliant (%v), but prod-us's newest run of restore FAILED",
			rep.CompliantDrills, rep.TotalDrills, rep.Drills[0].Status)
	}
}

// flakyRuns fails the status update of the named runs n times (the API
// server unavailable just after the record was written).
type flakyRuns struct {
	*engine.KubeStore
	fail map[string]int
}

func (f *flakyRuns) UpdateStatus(ctx context.Context, r *v1alpha1.DrillRun) (*v1alpha1.DrillRun, error) {
	if f.fail[r.Name] > 0 {
		f.fail[r.Name]--
		return nil, errors.New("the server is currently unable to handle the request")
	}
	return f.KubeStore.UpdateStatus(ctx, r)
}

// TestReviewRecordWrittenTwiceWhenStatusLost: run A's record is written
// at place 1 but its status update fails; run B is archived in the same
// pass at place 2. On the next pass the archiver looks only at the head
// (B) for A's record, does not find it, and writes A again at place 3.
// verify counts three runs for two, with no problem, and the report counts
// A's verdict twice (here a PASS: the pass rate and the regression base
// are inflated).
// Rule 2 (evidence tied to this run: one run's record credited twice).
func TestReviewRecordWrittenTwiceWhenStatusLost(t *testing.T) {
	s, k, _ := keys(t)
	inner, store, clk := newRuns(), evidence.NewMemStore(), clocktesting.NewFakeClock(t0.Add(time.Hour))
	first := addRun(t, inner, "restore", "0 2 * * *", t0, v1alpha1.VerdictPass)
	addRun(t, inner, "restore", "0 2 * * *", t0.Add(time.Minute), v1alpha1.VerdictFail)
	runs := &flakyRuns{KubeStore: inner, fail: map[string]int{first.Name: 1}}
	a := archiver(runs, store, s, clk)
	_, _ = a.Pass(context.Background()) // A's status update fails
	pass(t, a)
	v := verify(t, store, k, evidence.VerifyOptions{})
	ids := map[string]int{}
	for _, r := range v.Chains[0].Verified {
		if r.Run != nil {
			ids[r.Run.ID]++
		}
	}
	if ids[string(first.UID)] > 1 && v.Problems == 0 {
		t.Errorf("run %s has %d records in the chain (%d run records for 2 runs) and verify says no problem; the report lists %d runs",
			first.Name, ids[string(first.UID)], v.Chains[0].Runs, len(v.Runs()))
	}
}

// TestReviewScheduleInForceTakenFromManualRuns: gaps() takes the schedule
// in force from the newest run record of any trigger, and stops checking
// slots altogether (break) at the first slot under a suspended or
// unscheduled spec. A manual run (`drillbot run`, from a local file: a
// suspended copy, a monthly copy, an on-demand copy) changes the schedule
// verify checks: the missed slots after it are never gaps, even after
// scheduled runs show the daily schedule in force again.
// Rule 3 (configuration, and a manual run's at that, is not evidence of
// the schedule the daemon ran) and rule 1 (slots not checked reported as
// "no gap").
func TestReviewScheduleInForceTakenFromManualRuns(t *testing.T) {
	at := func(d int, h time.Duration) time.Time { return t0.Add(time.Duration(d)*day + h) }
	tests := []struct {
		name   string
		manual func(s *v1alpha1.DrillSpec)
		// scheduled are the days with a scheduled run; the manual run is
		// on day manualDay at 12:00; want are slots that must be gaps.
		scheduled []int
		manualDay int
		want      []int
	}{
		{name: "suspended copy, schedule resumed on day 3", manual: func(s *v1alpha1.DrillSpec) { s.Suspend = true },
			scheduled: []int{0, 1, 3, 7}, manualDay: 1, want: []int{4, 5, 6}},
		{name: "monthly copy", manual: func(s *v1alpha1.DrillSpec) { s.Schedule = "0 2 1 * *" },
			scheduled: []int{0, 1, 2, 7}, manualDay: 2, want: []int{3, 4, 5, 6}},
		{name: "on-demand copy", manual: func(s *v1alpha1.DrillSpec) { s.Schedule = "" },
			scheduled: []int{0, 1, 2, 7}, manualDay: 2, want: []int{3, 4, 5, 6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, k, _ := keys(t)
			runs, store, clk := newRuns(), evidence.NewMemStore(), clocktesting.NewFakeClock(at(9, 0))
			for _, d := range tt.scheduled {
				addRunWith(t, runs, engine.TriggerSchedule, daily(), at(d, 0), v1alpha1.VerdictPass)
			}
			spec := daily()
			tt.manual(&spec)
			addRunWith(t, runs, "cli", spec, at(tt.manualDay, 10*time.Hour), v1alpha1.VerdictPass)
			pass(t, archiver(runs, store, s, clk))
			v := verify(t, store, k, evidence.VerifyOptions{From: t0, To: at(8, 0)})
			gaps := allGaps(v)
			for _, d := range tt.want {
				if !slices.ContainsFunc(gaps, func(g time.Time) bool { return g.Equal(at(d, 0)) }) {
					t.Errorf("slot of day %d (%s) had no run and is not a gap; gaps %v", d, at(d, 0).Format(time.RFC3339), gaps)
				}
			}
		})
	}
}

// TestReviewOneCatchUpRunAnswersSeveralSlots: with Grace longer than the
// schedule's interval, each slot's window overlaps the next, and one run
// answers every slot whose window holds it. drillbot was down for days 1
// and 2 and ran once on day 3 (the catch-up, "once, never more"): verify
// counts that one run for the slots of days 1, 2 and 3.
// Rule 2 (one run's evidence credited to several slots).
func TestReviewOneCatchUpRunAnswersSeveralSlots(t *testing.T) {
	s, k, _ := keys(t)
	runs, store, clk := newRuns(), evidence.NewMemStore(), clocktesting.NewFakeClock(t0.Add(9*day))
	for _, st := range []time.Time{t0, t0.Add(3*day + 10*time.Hour), t0.Add(4 * day), t0.Add(5 * day)} {
		addRunWith(t, runs, engine.TriggerSchedule, daily(), st, v1alpha1.VerdictPass)
	}
	pass(t, archiver(runs, store, s, clk))
	v := verify(t, store, k, evidence.VerifyOptions{From: t0, To: t0.Add(8 * day), Grace: 72 * time.Hour})
	if g := allGaps(v); len(g) != 2 {
		t.Errorf("gaps %v, want the slots of days 1 and 2: the day-3 catch-up run is one run, for one slot", g)
	}
}

// TestReviewSlotsDependOnTheVerifiersTimeZone: a schedule without CRON_TZ
// fires in the daemon's zone (its time.Local, UTC in the image), but
// verify computes slots in the zone of From (or of the verifier's
// machine: MicroTime unmarshals to time.Local), which the record does not
// name. An auditor in New York checks March 2026: the daemon's slot of
// 2026-03-09 02:00 UTC had no run, but around the DST change (02:00 does
// not exist on 03-08 in New York) one New York "slot" spans two UTC days
// and the run of 03-08 answers it. Verified in UTC the gap is found.
// Rule 4 (one clock decides: the daemon's, not the verifier's).
func TestReviewSlotsDependOnTheVerifiersTimeZone(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	s, k, _ := keys(t)
	start := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	runs, store, clk := newRuns(), evidence.NewMemStore(), clocktesting.NewFakeClock(start.Add(20*day))
	for d := 0; d < 15; d++ {
		if d == 8 { // 2026-03-09 02:00 UTC: no run
			continue
		}
		addRunWith(t, runs, engine.TriggerSchedule, daily(), start.Add(time.Duration(d)*day), v1alpha1.VerdictPass)
	}
	pass(t, archiver(runs, store, s, clk))
	for _, loc := range []*time.Location{time.UTC, ny} {
		t.Run(loc.String(), func(t *testing.T) {
			from := time.Date(2026, 3, 2, 0, 0, 0, 0, loc) // the auditor's --from, in their zone
			v := verify(t, store, k, evidence.VerifyOptions{From: from, To: start.Add(14 * day)})
			if g := allGaps(v); len(g) != 1 {
				t.Errorf("verified from %s: gaps %v, want the one slot the daemon missed (2026-03-09T02:00:00Z)", from.Format(time.RFC3339), g)
			}
		})
	}
}

// TestReviewMissedLastSlotIsNoGap: a slot is checked only once the next
// slot has come ("the slot's run may still come"), but a scheduled run
// never comes late except as a catch-up after a restart. A monthly drill
// missed its 1 December slot; on 20 December verify prints "every record
// verified; no gap" for a period that holds that slot (a yearly drill is
// never checked by a 365-day period at all).
// Rule 1 (a slot not checked is not evidence that it was answered).
func TestReviewMissedLastSlotIsNoGap(t *testing.T) {
	s, k, _ := keys(t)
	runs, store, clk := newRuns(), evidence.NewMemStore(), clocktesting.NewFakeClock(t0.AddDate(0, 11, 20))
	spec := daily()
	spec.Schedule = "0 2 1 * *"
	for m := 0; m < 11; m++ { // 1 January to 1 November; 1 December missed
		addRunWith(t, runs, engine.TriggerSchedule, spec, t0.AddDate(0, m, 0), v1alpha1.VerdictPass)
	}
	pass(t, archiver(runs, store, s, clk))
	dec := t0.AddDate(0, 11, 0)
	v := verify(t, store, k, evidence.VerifyOptions{From: t0, To: t0.AddDate(0, 11, 19)})
	if v.Problems == 0 {
		t.Errorf("period to %s: no problem, no gap, but the slot of %s (19 days earlier) has no run", t0.AddDate(0, 11, 19).Format(time.DateOnly), dec.Format(time.RFC3339))
	}
}

// TestReviewNothingVerifiedIsNoProblem: verify of an archive where it
// finds no record (an empty bucket, or --archive one folder above the
// daemon's prefix, whose keys Layout.Parse then skips in silence) reports
// zero problems: the CLI prints "every record verified; no gap" and exits
// 0 having verified nothing.
// Rule 1 (nothing checked is not a PASS).
func TestReviewNothingVerifiedIsNoProblem(t *testing.T) {
	tests := []struct {
		name  string
		write func(t *testing.T, store *evidence.MemStore)
	}{
		{name: "empty archive", write: func(*testing.T, *evidence.MemStore) {}},
		{name: "records under a deeper prefix", write: func(t *testing.T, store *evidence.MemStore) {
			s, _, _ := keys(t)
			runs := newRuns()
			a := archiver(runs, store, s, clocktesting.NewFakeClock(t0.Add(day)))
			a.Chain.Layout = evidence.Layout{Prefix: "drillbot/eu"}
			addRun(t, runs, "restore", "0 2 * * *", t0, v1alpha1.VerdictFail)
			pass(t, a)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, k, _ := keys(t)
			store := evidence.NewMemStore()
			tt.write(t, store)
			v := verify(t, store, k, evidence.VerifyOptions{From: t0, To: t0.Add(30 * day)})
			if v.Problems == 0 {
				t.Errorf("verify found %d chains and says 0 problems: it verified nothing", len(v.Chains))
			}
		})
	}
}

// TestReviewArchiverTrustsAnUnverifiedHead: Append's "same" check reads
// the chain's head without verifying its signature. Whoever can put an
// object in the bucket (no delete needed: Object Lock does not stop it)
// writes, at the next place, a record signed with any key that names a
// finished run's ID. The archiver takes it for that run's record, marks
// the run archived (it may then be pruned) and never writes the real one:
// the run's FAIL is in neither the archive nor the cluster; verify names
// only "place 1: not verified".
// Rule 5 (an answer that does not carry the expected cause, here drillbot's
// own signature, is not evidence) and rule 7.
func TestReviewArchiverTrustsAnUnverifiedHead(t *testing.T) {
	ctx := context.Background()
	s, k, _ := keys(t)
	intruder, _, _ := keys(t)
	runs, store, clk := newRuns(), evidence.NewMemStore(), clocktesting.NewFakeClock(t0.Add(time.Hour))
	r := addRun(t, runs, "restore", "0 2 * * *", t0, v1alpha1.VerdictFail)
	forged := evidence.Record{APIVersion: v1alpha1.APIVersion, Kind: evidence.KindRun, Cluster: evidence.Cluster{Name: "prod-eu"}, Drill: "restore",
		Run: &evidence.Run{ID: string(r.UID), Name: r.Name, Result: evidence.Result{Verdict: v1alpha1.VerdictPass}}}
	if _, err := (&evidence.Chain{Store: store, Layout: reviewLayout, Signer: intruder}).Append(ctx, forged, nil); err != nil {
		t.Fatal(err)
	}
	pass(t, archiver(runs, store, s, clk))
	got, _ := runs.Get(ctx, r.Name)
	if !got.Status.Archived() {
		return
	}
	v := verify(t, store, k, evidence.VerifyOptions{})
	for _, rec := range v.Chains[0].Verified {
		if rec.Run != nil && rec.Run.ID == string(r.UID) {
			return
		}
	}
	t.Errorf("run %s (FAIL) is marked archived at %s, but no record of it verifies against drillbot's key (problems: %s)",
		r.Name, got.Status.Archive.Object, problems(v))
}

// TestReviewRecordDisagreesWithItsDrillRun: a record's evidence fields
// (what an auditor reads: result.verdict, drill, id) and its DrillRun
// (what the report reads) are never compared. A record whose
// result.verdict is FAIL and whose DrillRun says PASS, in another drill,
// verifies without a problem, and the report shows a PASS. (It takes a
// key verify trusts to write one: a signer bug, or the annotator key of
// TestReviewAnnotatorKeySignsRunRecords.)
// Rule 3 (one record, two stories: the report must read what the
// evidence says, and verify must notice when they differ).
func TestReviewRecordDisagreesWithItsDrillRun(t *testing.T) {
	ctx := context.Background()
	o := oneRun(t)
	a, store, k, rec := o.a, o.store, o.k, o.rec
	rec.Run.Result.Verdict = v1alpha1.VerdictFail
	rec.Run.DrillRun.Spec.Drill = "another-drill"
	if _, err := a.Chain.Append(ctx, rec, nil); err != nil {
		t.Fatal(err)
	}
	v := verify(t, store, k, evidence.VerifyOptions{})
	if v.Problems == 0 {
		got := v.Runs()[0]
		t.Errorf("record says FAIL in chain restore; its DrillRun says %s in drill %s; verify: no problem (the report uses the DrillRun)",
			got.Status.Verdict, got.Spec.Drill)
	}
}
