package evidence_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/evidence"
	"github.com/drillbot-io/drillbot/internal/report"
)

// countingStore counts reads.
type countingStore struct {
	evidence.Store
	gets atomic.Int64
}

func (c *countingStore) Get(ctx context.Context, key string) ([]byte, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, key)
}

// indexedArchive archives 25 runs of drill restore (every fifth a FAIL)
// and an annotation after the seventh, signed by a person's key.
func indexedArchive(t *testing.T) (*evidence.MemStore, *evidence.Keyring, *evidence.Signer) {
	t.Helper()
	ctx := context.Background()
	s, _, daemonPub := keys(t)
	person, _, personPub := keys(t)
	runs, store, clk := newRuns(), evidence.NewMemStore(), clocktesting.NewFakeClock(t0.Add(40*day))
	a := archiver(runs, store, s, clk)
	for d := 0; d < 25; d++ {
		verdict := v1alpha1.VerdictPass
		if d%5 == 4 {
			verdict = v1alpha1.VerdictFail
		}
		addRun(t, runs, "restore", "0 2 * * *", t0.Add(time.Duration(d)*day), verdict)
		pass(t, a)
		if d == 6 {
			k := &evidence.Keyring{}
			if err := k.Add(s.PublicKey()); err != nil {
				t.Fatal(err)
			}
			if _, err := evidence.Annotate(ctx, &evidence.Chain{Store: store, Layout: reviewLayout, Signer: person}, k, "prod-eu", "restore",
				"restore-"+t0.Add(4*day).Format("20060102-150405"), evidence.Annotation{Finding: 0, Owner: "platform", Due: "2026-02-01"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	k, err := evidence.LoadKeyring(daemonPub)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Load(evidence.RoleAnnotator, personPub); err != nil {
		t.Fatal(err)
	}
	return store, k, s
}

func TestReportFromTheIndexIsTheReportFromTheRecords(t *testing.T) {
	ctx := context.Background()
	store, k, _ := indexedArchive(t)
	for _, through := range []int64{10, 20} {
		if _, err := store.Get(ctx, reviewLayout.IndexKey("prod-eu", "restore", through)); err != nil {
			t.Fatalf("index through place %d: %v", through, err)
		}
	}
	full := verify(t, store, k, evidence.VerifyOptions{})
	counted := &countingStore{Store: store}
	fast, err := evidence.Verify(ctx, counted, reviewLayout, k, evidence.VerifyOptions{UseIndex: true})
	if err != nil {
		t.Fatal(err)
	}
	if full.Problems != 0 || fast.Problems != 0 {
		t.Fatalf("problems: from the records %q, from the index %q", problems(full), problems(fast))
	}
	// The 26 places: 20 from the index (one read), 6 read.
	if n := counted.gets.Load(); n != 7 {
		t.Errorf("the report read %d objects, want 7 (the newest index, the 6 places after it)", n)
	}
	now := t0.Add(30 * day)
	build := func(v evidence.Verified) string {
		return jsonOf(t, report.Build(v.Runs(), report.Options{Now: now, WindowDays: 60, LastN: 30}))
	}
	if a, b := build(full), build(fast); a != b {
		t.Errorf("the report from the index differs from the report from the records:\n%s\n%s", a, b)
	}
	// Run by run, what the report reads is the same, the annotation and
	// the archive's place and digest included.
	views := func(v evidence.Verified) string {
		var out []v1alpha1.DrillRun
		for _, r := range v.Runs() {
			view := evidence.ReportView(r)
			view.Status.Archive = r.Status.Archive
			out = append(out, view)
		}
		return jsonOf(t, out)
	}
	if a, b := views(full), views(fast); a != b {
		t.Errorf("runs from the index differ from the runs from the records:\n%s\n%s", a, b)
	}
	if got := views(fast); !strings.Contains(got, "remediation of finding 1: owner platform, due 2026-02-01") || strings.Count(got, `"verdict":"FAIL"`) != 5 {
		t.Errorf("runs from the index lack the annotation or the 5 FAILs: %s", got)
	}
}

func TestAnIndexThatIsNotTheRecordsIsFound(t *testing.T) {
	ctx := context.Background()
	store, k, s := indexedArchive(t)
	key := reviewLayout.IndexKey("prod-eu", "restore", 20)
	raw, err := store.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := evidence.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	// Signed with drillbot's own key (a bug, or the key stolen): place
	// 5's FAIL listed as a PASS.
	rec.Index.Entries[4].Run.Status.Verdict = v1alpha1.VerdictPass
	forged, err := s.Seal(rec)
	if err != nil {
		t.Fatal(err)
	}
	store.Tamper(key, forged)
	v := verify(t, store, k, evidence.VerifyOptions{})
	if !strings.Contains(problems(v), "index through place 20: place 5's run is not the record's") {
		t.Errorf("verify: %q, want the index's place 5 named", problems(v))
	}

	// Signed by the annotator's key: not an index the report takes; it
	// reads the records instead, and says so.
	_, _, _ = keys(t)
	person, _, _ := keys(t)
	byPerson, err := person.Seal(rec)
	if err != nil {
		t.Fatal(err)
	}
	store.Tamper(key, byPerson)
	fast, err := evidence.Verify(ctx, store, reviewLayout, k, evidence.VerifyOptions{UseIndex: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(problems(fast), "index "+key) || len(fast.Runs()) != 25 {
		t.Errorf("an index no trusted key signed: problems %q, %d runs; want it named and the 25 runs read from their records", problems(fast), len(fast.Runs()))
	}
	for _, r := range fast.Runs() {
		if r.Name == "restore-"+t0.Add(4*day).Format("20060102-150405") && r.Status.Verdict != v1alpha1.VerdictFail {
			t.Errorf("run %s: %s, want its record's FAIL", r.Name, r.Status.Verdict)
		}
	}
}

func TestARecordAfterTheIndexMustChainToIt(t *testing.T) {
	ctx := context.Background()
	store, k, s := indexedArchive(t)
	key := reviewLayout.Key("prod-eu", "restore", 21)
	raw, _ := store.Get(ctx, key)
	rec, err := evidence.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	rec.Prev = "sha256:00"
	env, err := s.Seal(rec)
	if err != nil {
		t.Fatal(err)
	}
	store.Tamper(key, env)
	fast, err := evidence.Verify(ctx, store, reviewLayout, k, evidence.VerifyOptions{UseIndex: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(problems(fast), "place 21 ("+key+"): does not chain to place 20") {
		t.Errorf("from the index: %q, want place 21 named", problems(fast))
	}
}
