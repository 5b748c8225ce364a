package evidence_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/evidence"
	"github.com/drillbot-io/drillbot/internal/report"
)

var t0 = time.Date(2026, 1, 1, 2, 0, 0, 0, time.UTC)

// keys writes a key pair into dir and returns the signer and a keyring
// trusting it.
func keys(t *testing.T) (*evidence.Signer, *evidence.Keyring, string) {
	t.Helper()
	dir := t.TempDir()
	priv, pub, err := evidence.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	privPath, pubPath := filepath.Join(dir, "key.pem"), filepath.Join(dir, "key.pub")
	if err := os.WriteFile(privPath, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pubPath, pub, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := evidence.LoadSigner(privPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err := evidence.LoadKeyring(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	return s, k, pubPath
}

func newRuns() *engine.KubeStore {
	client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{v1alpha1.DrillRunResource: "DrillRunList"})
	return &engine.KubeStore{Client: client, Namespace: "drillbot-system"}
}

// addRun records a Completed run of drill that started at start.
func addRun(t *testing.T, runs *engine.KubeStore, drillName, schedule string, start time.Time, verdict v1alpha1.Verdict) *v1alpha1.DrillRun {
	t.Helper()
	name := drillName + "-" + start.Format("20060102-150405")
	spec := v1alpha1.DrillSpec{Scenario: "namespace-restore", Schedule: schedule, Objectives: v1alpha1.Objectives{RTO: "30m", RPO: "1h"},
		Target: v1alpha1.Target{Namespace: "shop"}}
	r := &v1alpha1.DrillRun{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), Labels: map[string]string{v1alpha1.LabelDrill: drillName}},
		Spec: v1alpha1.DrillRunSpec{Drill: drillName, Scenario: "namespace-restore", Trigger: engine.TriggerSchedule, Snapshot: spec,
			DefinitionDigest: engine.DefinitionDigest(spec), StartedBy: &v1alpha1.Initiator{Kind: v1alpha1.InitiatorSchedule}},
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

func archiver(runs evidence.Runs, store evidence.Store, s *evidence.Signer, clk *clocktesting.FakeClock) *evidence.Archiver {
	return &evidence.Archiver{
		Runs: runs, Cluster: evidence.Cluster{Name: "prod-eu", UID: "ks-uid"}, Clock: clk,
		Chain:    &evidence.Chain{Store: store, Layout: evidence.Layout{Prefix: "drillbot"}, Signer: s, Now: clk.Now},
		Classify: engine.Registry{}.Evidence,
		Page:     func(r v1alpha1.DrillRun) ([]byte, error) { return []byte("<html>" + r.Name + "</html>"), nil },
	}
}

// archivedRun is an archiver over an empty store, one PASS run of drill
// restore (started at t0, not archived yet) and the run's record.
type archivedRun struct {
	a     *evidence.Archiver
	store *evidence.MemStore
	k     *evidence.Keyring
	runs  *engine.KubeStore
	run   *v1alpha1.DrillRun
	rec   evidence.Record
}

func oneRun(t *testing.T) archivedRun {
	t.Helper()
	s, k, _ := keys(t)
	runs, store := newRuns(), evidence.NewMemStore()
	a := archiver(runs, store, s, clocktesting.NewFakeClock(t0.Add(time.Hour)))
	r := addRun(t, runs, "restore", "0 2 * * *", t0, v1alpha1.VerdictPass)
	rec, err := a.Record(*r)
	if err != nil {
		t.Fatal(err)
	}
	return archivedRun{a: a, store: store, k: k, runs: runs, run: r, rec: rec}
}

// jsonOf is v as JSON.
func jsonOf(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// recordKeys are the archive's records (the probe object left out).
func recordKeys(t *testing.T, store evidence.Store) []string {
	t.Helper()
	all, err := store.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range all {
		if _, _, _, ok := (evidence.Layout{Prefix: "drillbot"}).Parse(k); ok {
			out = append(out, k)
		}
	}
	return out
}

func TestArchiveOnceSignedAndChained(t *testing.T) {
	ctx := context.Background()
	s, k, _ := keys(t)
	runs, store, clk := newRuns(), evidence.NewMemStore(), clocktesting.NewFakeClock(t0.Add(time.Hour))
	a := archiver(runs, store, s, clk)
	first := addRun(t, runs, "restore", "0 2 * * *", t0, v1alpha1.VerdictPass)
	second := addRun(t, runs, "restore", "0 2 * * *", t0.Add(24*time.Hour), v1alpha1.VerdictFail)
	if pending, err := a.Pass(ctx); err != nil || pending != 0 {
		t.Fatalf("Pass = %d, %v", pending, err)
	}
	keysBefore := recordKeys(t, store)
	if pending, err := a.Pass(ctx); err != nil || pending != 0 {
		t.Fatalf("second Pass = %d, %v", pending, err)
	}
	keysAfter := recordKeys(t, store)
	if len(keysBefore) != 2 || len(keysAfter) != 2 {
		t.Fatalf("objects: %v then %v, want 2 (one per run, once)", keysBefore, keysAfter)
	}
	for i, r := range []*v1alpha1.DrillRun{first, second} {
		got, err := runs.Get(ctx, r.Name)
		if err != nil {
			t.Fatal(err)
		}
		st, want := got.Status.Archive, (evidence.Layout{Prefix: "drillbot"}).Key("prod-eu", "restore", int64(i+1))
		if st == nil || st.Seq != int64(i+1) || st.Object != want || !strings.HasPrefix(st.Digest, "sha256:") {
			t.Fatalf("run %s archive status = %+v", r.Name, st)
		}
	}
	v, err := evidence.Verify(ctx, store, evidence.Layout{Prefix: "drillbot"}, k, evidence.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v.Problems != 0 || len(v.Chains) != 1 || v.Chains[0].Runs != 2 {
		t.Fatalf("verify = %+v", v)
	}
	rec := v.Chains[0].Verified[1]
	if rec.Prev == "" || rec.Run.Result.Verdict != v1alpha1.VerdictFail || rec.Run.StartedBy.Kind != v1alpha1.InitiatorSchedule ||
		rec.Run.DefinitionDigest != second.Spec.DefinitionDigest || rec.Run.TestType == "" || rec.Run.Page == "" ||
		rec.Run.Result.RTOMet == nil || !*rec.Run.Result.RTOMet || rec.Run.NextScheduledRun == nil ||
		!rec.Run.NextScheduledRun.Equal(t0.Add(48*time.Hour)) {
		t.Fatalf("record = %+v", rec.Run)
	}
}

func TestArchiveRetriedAndVisibleWhenStoreFails(t *testing.T) {
	ctx := context.Background()
	s, _, _ := keys(t)
	runs, store, clk := newRuns(), evidence.NewMemStore(), clocktesting.NewFakeClock(t0.Add(time.Hour))
	a := archiver(runs, store, s, clk)
	var seen []error
	a.Observe = func(_ *v1alpha1.DrillRun, err error) { seen = append(seen, err) }
	r := addRun(t, runs, "restore", "", t0, v1alpha1.VerdictPass)
	store.Fail = errors.New("connection refused")
	if pending, _ := a.Pass(ctx); pending != 1 {
		t.Fatalf("pending = %d, want 1", pending)
	}
	got, _ := runs.Get(ctx, r.Name)
	if st := got.Status.Archive; st == nil || st.Attempts != 1 || !strings.Contains(st.LastError, "connection refused") || got.Status.Archived() {
		t.Fatalf("archive status after a failed write = %+v", st)
	}
	// Not due yet: no second attempt.
	store.Fail = nil
	clk.Step(10 * time.Second)
	if pending, _ := a.Pass(ctx); pending != 1 || len(seen) != 1 {
		t.Fatalf("before the backoff: pending %d, attempts %d", pending, len(seen))
	}
	clk.Step(30 * time.Second)
	if pending, _ := a.Pass(ctx); pending != 0 || len(seen) != 2 || seen[1] != nil {
		t.Fatalf("after the backoff: pending %d, attempts %v", pending, seen)
	}
	got, _ = runs.Get(ctx, r.Name)
	if st := got.Status.Archive; !got.Status.Archived() || st.Attempts != 2 || st.LastError != "" {
		t.Fatalf("archive status = %+v", st)
	}
}

// A write that landed but whose success was never recorded on the run (a
// crash in between) is not written twice.
func TestArchiveLostSuccessNotWrittenTwice(t *testing.T) {
	ctx := context.Background()
	o := oneRun(t)
	a, store, runs, r, rec := o.a, o.store, o.runs, o.run, o.rec
	if _, err := a.Chain.Append(ctx, rec, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	objs := recordKeys(t, store)
	got, _ := runs.Get(ctx, r.Name)
	if len(objs) != 1 || !got.Status.Archived() || got.Status.Archive.Seq != 1 {
		t.Fatalf("objects %v, status %+v", objs, got.Status.Archive)
	}
}

func TestOverwriteRefusedAndRacingWritersTakeDistinctPlaces(t *testing.T) {
	ctx := context.Background()
	s, k, _ := keys(t)
	store := evidence.NewMemStore()
	if err := store.Create(ctx, "a", []byte("1"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := store.Create(ctx, "a", []byte("2"), time.Time{}); !errors.Is(err, evidence.ErrExists) {
		t.Fatalf("overwrite: %v, want ErrExists", err)
	}
	// A store whose first Create of place 1 loses to another writer.
	racing := &raceStore{MemStore: evidence.NewMemStore()}
	c := &evidence.Chain{Store: racing, Layout: evidence.Layout{Prefix: "p"}, Signer: s}
	record := func(id string) evidence.Record {
		r := v1alpha1.DrillRun{ObjectMeta: metav1.ObjectMeta{Name: id, UID: types.UID(id)}, Spec: v1alpha1.DrillRunSpec{Drill: "d"}}
		rec, err := (&evidence.Archiver{Cluster: evidence.Cluster{Name: "c"}}).Record(r)
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	rec := record("mine")
	racing.before = func() {
		other := record("theirs")
		if _, err := (&evidence.Chain{Store: racing.MemStore, Layout: c.Layout, Signer: s}).Append(ctx, other, nil); err != nil {
			t.Fatal(err)
		}
	}
	app, err := c.Append(ctx, rec, nil)
	if err != nil || app.Seq != 2 {
		t.Fatalf("Append = %+v, %v; want place 2 after losing place 1", app, err)
	}
	v, err := evidence.Verify(ctx, racing, c.Layout, k, evidence.VerifyOptions{})
	if err != nil || v.Problems != 0 || v.Chains[0].Runs != 2 {
		t.Fatalf("verify = %+v, %v", v, err)
	}
}

// raceStore lets another writer in just before its first Create.
type raceStore struct {
	*evidence.MemStore
	before func()
}

func (r *raceStore) Create(ctx context.Context, key string, body []byte, until time.Time) error {
	if r.before != nil {
		f := r.before
		r.before = nil
		f()
	}
	return r.MemStore.Create(ctx, key, body, until)
}

func TestVerifyFindsTamperingDeletionAndGaps(t *testing.T) {
	ctx := context.Background()
	l := evidence.Layout{Prefix: "drillbot"}
	setup := func(t *testing.T) (*evidence.MemStore, *evidence.Keyring, *evidence.Signer) {
		s, k, _ := keys(t)
		runs, store, clk := newRuns(), evidence.NewMemStore(), clocktesting.NewFakeClock(t0.Add(5*24*time.Hour))
		for day := 0; day < 4; day++ {
			addRun(t, runs, "restore", "0 2 * * *", t0.Add(time.Duration(day)*24*time.Hour+time.Minute), v1alpha1.VerdictPass)
		}
		if _, err := archiver(runs, store, s, clk).Pass(ctx); err != nil {
			t.Fatal(err)
		}
		return store, k, s
	}
	key := func(seq int64) string { return l.Key("prod-eu", "restore", seq) }
	period := evidence.VerifyOptions{From: t0, To: t0.Add(4 * 24 * time.Hour)}
	tests := []struct {
		name   string
		change func(t *testing.T, m *evidence.MemStore, s *evidence.Signer)
		opts   evidence.VerifyOptions
		want   []string
		gaps   int
	}{
		{name: "untouched", opts: period},
		{name: "a record's bytes changed", change: func(t *testing.T, m *evidence.MemStore, _ *evidence.Signer) {
			raw, _ := m.Get(ctx, key(2))
			m.Tamper(key(2), []byte(strings.Replace(string(raw), `"payload":"`, `"payload":"A`, 1)))
		}, want: []string{"place 2", "not verified"}},
		{name: "a record in the middle deleted", change: func(_ *testing.T, m *evidence.MemStore, _ *evidence.Signer) { m.Remove(key(2)) },
			opts: period, want: []string{"place 2: no record"}, gaps: 1},
		{name: "a record replaced by another validly signed one", change: func(t *testing.T, m *evidence.MemStore, s *evidence.Signer) {
			raw, _ := m.Get(ctx, key(3))
			rec, err := evidence.Decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			rec.Prev = "sha256:0000"
			rec.Run.Result.Verdict = v1alpha1.VerdictPass
			env, err := s.Seal(rec)
			if err != nil {
				t.Fatal(err)
			}
			m.Tamper(key(3), env)
		}, want: []string{"place 3", "does not chain to place 2"}},
		{name: "the newest record deleted, the cluster says it was written", change: func(_ *testing.T, m *evidence.MemStore, _ *evidence.Signer) { m.Remove(key(4)) },
			opts: evidence.VerifyOptions{Written: []evidence.Written{{Chain: "prod-eu/restore", Seq: 4, Run: "restore-4"}}}, want: []string{"place 4: no record, but run restore-4 says it wrote one there"}},
		{name: "two slots missed", opts: evidence.VerifyOptions{From: t0, To: t0.Add(6 * 24 * time.Hour)}, gaps: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, k, s := setup(t)
			if tt.change != nil {
				tt.change(t, store, s)
			}
			v, err := evidence.Verify(ctx, store, l, k, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			ch := v.Chains[0]
			text := strings.Join(ch.Problems, "\n")
			if len(tt.want) == 0 && len(ch.Problems) != 0 {
				t.Fatalf("problems: %s", text)
			}
			for _, w := range tt.want {
				if !strings.Contains(text, w) {
					t.Errorf("problems %q lack %q", text, w)
				}
			}
			if len(ch.Gaps) != tt.gaps {
				t.Errorf("gaps = %v, want %d", ch.Gaps, tt.gaps)
			}
			if v.Problems != len(ch.Problems)+len(ch.Gaps) {
				t.Errorf("Problems = %d", v.Problems)
			}
		})
	}
}

// TestVerifyReadsFirstVersions: on a store that keeps versions (Object
// Lock), an overwrite and a delete are attempts the first version outlived:
// each is named, and the record drillbot wrote is still the one verified
// and reported.
func TestVerifyReadsFirstVersions(t *testing.T) {
	ctx := context.Background()
	s, k, _ := keys(t)
	runs, clk := newRuns(), clocktesting.NewFakeClock(t0.Add(time.Hour))
	store := evidence.NewMemStore()
	store.Versioning = true
	for day := 0; day < 3; day++ {
		addRun(t, runs, "restore", "0 2 * * *", t0.Add(time.Duration(day)*24*time.Hour), v1alpha1.VerdictFail)
	}
	if _, err := archiver(runs, store, s, clk).Pass(ctx); err != nil {
		t.Fatal(err)
	}
	l := evidence.Layout{Prefix: "drillbot"}
	raw, _ := store.Get(ctx, l.Key("prod-eu", "restore", 2))
	rec, _ := evidence.Decode(raw)
	rec.Run.Result.Verdict = v1alpha1.VerdictPass // a better verdict, signed with the real key even
	forged, err := s.Seal(rec)
	if err != nil {
		t.Fatal(err)
	}
	store.Tamper(l.Key("prod-eu", "restore", 2), forged)
	store.Remove(l.Key("prod-eu", "restore", 3))
	v, err := evidence.Verify(ctx, store, l, k, evidence.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ch := v.Chains[0]
	text := strings.Join(ch.Problems, "\n")
	if len(ch.Problems) != 2 || !strings.Contains(text, "place 2") || !strings.Contains(text, "overwritten later") ||
		!strings.Contains(text, "place 3") || !strings.Contains(text, "deleted later") {
		t.Fatalf("problems:\n%s", text)
	}
	if ch.Runs != 3 {
		t.Fatalf("%d runs verified, want the 3 first versions", ch.Runs)
	}
	for _, r := range v.Runs() {
		if r.Status.Verdict != v1alpha1.VerdictFail {
			t.Errorf("run %s reported %s: the overwrite's verdict, not the original's", r.Name, r.Status.Verdict)
		}
	}
}

func TestAnnotationIsItsOwnSignedRecord(t *testing.T) {
	ctx := context.Background()
	s, k, daemonPub := keys(t)
	person, _, personPub := keys(t)
	runs, store, clk := newRuns(), evidence.NewMemStore(), clocktesting.NewFakeClock(t0.Add(time.Hour))
	r := addRun(t, runs, "restore", "", t0, v1alpha1.VerdictFail)
	if _, err := archiver(runs, store, s, clk).Pass(ctx); err != nil {
		t.Fatal(err)
	}
	l := evidence.Layout{Prefix: "drillbot"}
	before, _ := store.Get(ctx, l.Key("prod-eu", "restore", 1))
	c := &evidence.Chain{Store: store, Layout: l, Signer: person}
	if _, err := evidence.Annotate(ctx, c, k, "prod-eu", "restore", r.Name, evidence.Annotation{Finding: 5, Owner: "alice"}); err == nil {
		t.Fatal("an annotation of a finding the run does not have was accepted")
	}
	app, err := evidence.Annotate(ctx, c, k, "prod-eu", "restore", r.Name, evidence.Annotation{Finding: 0, Owner: "platform-team", Due: "2026-02-01"})
	if err != nil || app.Seq != 2 {
		t.Fatalf("Annotate = %+v, %v", app, err)
	}
	after, _ := store.Get(ctx, l.Key("prod-eu", "restore", 1))
	if string(before) != string(after) {
		t.Fatal("the run's record changed")
	}
	// Trusting only the daemon's key, the annotation does not verify.
	v, _ := evidence.Verify(ctx, store, l, k, evidence.VerifyOptions{})
	if v.Problems != 1 {
		t.Fatalf("with the daemon's key only: %+v", v.Chains[0].Problems)
	}
	both, err := evidence.LoadKeyring(daemonPub, personPub)
	if err != nil {
		t.Fatal(err)
	}
	v, _ = evidence.Verify(ctx, store, l, both, evidence.VerifyOptions{})
	if v.Problems != 0 || v.Chains[0].Annotations != 1 || len(v.Chains[0].Keys) != 2 {
		t.Fatalf("with both keys: %+v", v.Chains[0])
	}
	got := v.Runs()
	if len(got) != 1 || !strings.Contains(strings.Join(got[0].Status.Findings, "\n"), "remediation of finding 1: owner platform-team, due 2026-02-01") {
		t.Fatalf("runs from the archive: %+v", got)
	}
}

// TestReportFromArchiveFindsRegression: the report built from a year of
// archived runs (the cluster keeps a few) finds the newest runs slower
// than the drill's own baseline.
func TestReportFromArchiveFindsRegression(t *testing.T) {
	ctx := context.Background()
	s, k, _ := keys(t)
	runs, store, clk := newRuns(), evidence.NewMemStore(), clocktesting.NewFakeClock(t0.Add(400*24*time.Hour))
	a := archiver(runs, store, s, clk)
	for i := 0; i < 12; i++ {
		r := addRun(t, runs, "restore", "0 2 1 * *", t0.Add(time.Duration(i)*30*24*time.Hour), v1alpha1.VerdictPass)
		r.Status.RTO = "4m0s"
		if i >= 6 {
			r.Status.RTO = "9m0s"
		}
		if _, err := runs.UpdateStatus(ctx, r); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Pass(ctx); err != nil {
			t.Fatal(err)
		}
		if err := runs.Delete(ctx, r.Name); err != nil { // pruned from the cluster
			t.Fatal(err)
		}
	}
	v, err := evidence.Verify(ctx, store, evidence.Layout{Prefix: "drillbot"}, k, evidence.VerifyOptions{})
	if err != nil || v.Problems != 0 {
		t.Fatalf("verify: %v, %+v", err, v)
	}
	rep := report.Build(v.Runs(), report.Options{Now: clk.Now(), WindowDays: 400})
	if len(rep.Drills) != 1 || len(rep.Drills[0].Regressions) != 1 || !strings.Contains(rep.Drills[0].Regressions[0], "RTO regressing") {
		t.Fatalf("report from the archive: %+v", rep.Drills)
	}
}

// alwaysOverwrites is a bucket that ignores If-None-Match: * altogether.
type alwaysOverwrites struct{ *evidence.MemStore }

func (o alwaysOverwrites) Create(ctx context.Context, key string, body []byte, until time.Time) error {
	o.MemStore.Remove(key)
	return o.MemStore.Create(ctx, key, body, until)
}

// swapsOnRead is a bucket that answers a read of key with other bytes.
type swapsOnRead struct {
	*evidence.MemStore
	key string
}

func (s swapsOnRead) Get(ctx context.Context, key string) ([]byte, error) {
	if key == s.key {
		return []byte(`{"payloadType":"x"}`), nil
	}
	return s.MemStore.Get(ctx, key)
}

func TestArchiverRefusesAStoreItCannotTrust(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		store func() evidence.Store
		want  string
	}{
		{name: "overwrites every object", store: func() evidence.Store { return alwaysOverwrites{evidence.NewMemStore()} }, want: "does not refuse overwrites"},
		{name: "holds another record right after the create",
			store: func() evidence.Store {
				return swapsOnRead{MemStore: evidence.NewMemStore(), key: evidence.Layout{Prefix: "drillbot"}.Key("prod-eu", "restore", 1)}
			}, want: "holds another record right after it was created"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, _ := keys(t)
			runs, clk := newRuns(), clocktesting.NewFakeClock(t0.Add(time.Hour))
			r := addRun(t, runs, "restore", "0 2 * * *", t0, v1alpha1.VerdictFail)
			if _, err := archiver(runs, tt.store(), s, clk).Pass(ctx); err != nil {
				t.Fatal(err)
			}
			got, _ := runs.Get(ctx, r.Name)
			if got.Status.Archived() || got.Status.Archive == nil || !strings.Contains(got.Status.Archive.LastError, tt.want) {
				t.Errorf("archive status %+v, want not archived, the error naming %q", got.Status.Archive, tt.want)
			}
		})
	}
}

func TestDeletedNewestRecordsPlaceIsNeverFilledAgain(t *testing.T) {
	s, k, _ := keys(t)
	runs, store, clk := newRuns(), evidence.NewMemStore(), clocktesting.NewFakeClock(t0.Add(10*24*time.Hour))
	a := archiver(runs, store, s, clk)
	for d := 0; d < 3; d++ {
		addRun(t, runs, "restore", "0 2 * * *", t0.Add(time.Duration(d)*24*time.Hour), v1alpha1.VerdictPass)
	}
	pass(t, a)
	store.Remove(reviewLayout.Key("prod-eu", "restore", 3))
	next := addRun(t, runs, "restore", "0 2 * * *", t0.Add(3*24*time.Hour), v1alpha1.VerdictPass)
	pass(t, a)
	got, _ := runs.Get(context.Background(), next.Name)
	if got.Status.Archive.Seq != 4 {
		t.Errorf("the run after the deleted newest record went to place %d, want 4 (place 3 stays empty)", got.Status.Archive.Seq)
	}
	// Without the cluster's word, the hole alone names the deletion.
	v := verify(t, store, k, evidence.VerifyOptions{})
	if !strings.Contains(problems(v), "place 3: no record") {
		t.Errorf("verify: %q, want place 3 named", problems(v))
	}
}

func TestVerifyNamesARunRecordedTwice(t *testing.T) {
	ctx := context.Background()
	o := oneRun(t)
	a, store, k, rec := o.a, o.store, o.k, o.rec
	for i := 0; i < 2; i++ {
		if _, err := a.Chain.Append(ctx, rec, nil); err != nil {
			t.Fatal(err)
		}
	}
	v := verify(t, store, k, evidence.VerifyOptions{})
	if !strings.Contains(problems(v), "record again (first at place 1)") || len(v.Runs()) != 1 {
		t.Errorf("one run recorded twice: problems %q, %d runs in the report, want it named and counted once", problems(v), len(v.Runs()))
	}
}

func TestArchiverRefusesAChainOfAnotherCluster(t *testing.T) {
	ctx := context.Background()
	s, _, _ := keys(t)
	store, clk := evidence.NewMemStore(), clocktesting.NewFakeClock(t0.Add(time.Hour))
	runsA, runsB := newRuns(), newRuns()
	a, b := archiver(runsA, store, s, clk), archiver(runsB, store, s, clk)
	b.Cluster.UID = "another-uid"
	addRun(t, runsA, "restore", "0 2 * * *", t0, v1alpha1.VerdictPass)
	rb := addRun(t, runsB, "restore", "0 2 * * *", t0.Add(time.Minute), v1alpha1.VerdictPass)
	pass(t, a)
	pass(t, b)
	got, _ := runsB.Get(ctx, rb.Name)
	if got.Status.Archived() || !strings.Contains(got.Status.Archive.LastError, "give each cluster a --cluster-name of its own") {
		t.Errorf("second cluster's run: %+v, want not archived, the error saying why", got.Status.Archive)
	}
}

func TestSlotsPendingAndZone(t *testing.T) {
	s, k, _ := keys(t)
	runs, store, clk := newRuns(), evidence.NewMemStore(), clocktesting.NewFakeClock(t0.Add(3*24*time.Hour))
	a := archiver(runs, store, s, clk)
	a.Zone = "Europe/Berlin" // 02:00 Berlin is 01:00 UTC in January
	for d := 0; d < 2; d++ {
		addRun(t, runs, "restore", "0 2 * * *", t0.Add(time.Duration(d)*24*time.Hour-time.Hour), v1alpha1.VerdictPass)
	}
	pass(t, a)
	// The period ends 30 minutes after the third slot (day 2, 01:00 UTC).
	v := verify(t, store, k, evidence.VerifyOptions{From: t0.Add(-2 * time.Hour), To: t0.Add(2*24*time.Hour - 30*time.Minute)})
	ch := v.Chains[0]
	if len(ch.Gaps) != 0 || len(ch.Pending) != 1 || !ch.Pending[0].Equal(t0.Add(2*24*time.Hour-time.Hour)) {
		t.Errorf("gaps %v, pending %v; want no gap and the slot of day 2 01:00 UTC pending", ch.Gaps, ch.Pending)
	}
	a.Zone = "Mars/Olympus"
	addRun(t, runs, "restore", "0 2 * * *", t0.Add(2*24*time.Hour-time.Hour), v1alpha1.VerdictPass)
	pass(t, a)
	v = verify(t, store, k, evidence.VerifyOptions{From: t0, To: t0.Add(3 * 24 * time.Hour)})
	if !strings.Contains(problems(v), `slots not checked: the records' schedule zone "Mars/Olympus"`) {
		t.Errorf("a zone verify cannot load: problems %q, want it named", problems(v))
	}
}

// TestRecordOfARunInMemoryVerifies: a DrillRun held in memory has its
// times to the nanosecond, the API's to the microsecond; the record's
// fields must be what verify derives again from the DrillRun it holds,
// or every honest record is a problem.
func TestRecordOfARunInMemoryVerifies(t *testing.T) {
	ctx := context.Background()
	s, k, _ := keys(t)
	store := evidence.NewMemStore()
	a := archiver(newRuns(), store, s, clocktesting.NewFakeClock(t0.Add(time.Hour)))
	start := metav1.NewMicroTime(t0.Add(123456789 * time.Nanosecond))
	end := metav1.NewMicroTime(start.Add(4*time.Minute + 987654321*time.Nanosecond))
	r := v1alpha1.DrillRun{ObjectMeta: metav1.ObjectMeta{Name: "restore-1", UID: "uid-1"},
		Spec: v1alpha1.DrillRunSpec{Drill: "restore", Scenario: "namespace-restore", Trigger: engine.TriggerSchedule},
		Status: v1alpha1.DrillRunStatus{Phase: v1alpha1.PhaseCompleted, Verdict: v1alpha1.VerdictPass, StartedAt: &start, FinishedAt: &end,
			Steps:      []v1alpha1.Step{{Phase: v1alpha1.PhasePreflight, StartedAt: start, FinishedAt: &end}},
			Milestones: []v1alpha1.Milestone{{Name: "recovered", At: end}}}}
	rec, err := a.Record(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Chain.Append(ctx, rec, nil); err != nil {
		t.Fatal(err)
	}
	if v := verify(t, store, k, evidence.VerifyOptions{}); v.Problems != 0 {
		t.Errorf("an honest record: %d problems: %s", v.Problems, problems(v))
	}
}

// TestRunArchivedAgainOnceItsRevertSucceeded: a run whose revert failed
// is archived at once (its FAIL, its fault maybe still active); once a
// retry reverts it, it is archived again, and the later record is the
// run's in the reports, without a problem.
func TestRunArchivedAgainOnceItsRevertSucceeded(t *testing.T) {
	ctx := context.Background()
	s, k, _ := keys(t)
	runs, store, clk := newRuns(), evidence.NewMemStore(), clocktesting.NewFakeClock(t0.Add(time.Hour))
	a := archiver(runs, store, s, clk)
	r := addRun(t, runs, "restore", "0 2 * * *", t0, v1alpha1.VerdictFail)
	r.Status.Phase = v1alpha1.PhaseRevertFailed
	r, err := runs.UpdateStatus(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	pass(t, a)
	first, _ := runs.Get(ctx, r.Name)
	if !first.Status.Archived() || first.Status.Archive.Phase != v1alpha1.PhaseRevertFailed {
		t.Fatalf("a RevertFailed run: archive %+v, want archived as RevertFailed", first.Status.Archive)
	}
	pass(t, a) // nothing new
	first.Status.Phase = v1alpha1.PhaseCompleted
	if _, err := runs.UpdateStatus(ctx, first); err != nil {
		t.Fatal(err)
	}
	clk.Step(time.Hour) // past the backoff of its one attempt
	pass(t, a)
	pass(t, a)
	got, _ := runs.Get(ctx, r.Name)
	if got.Status.Archive.Seq != 2 || got.Status.Archive.Phase != v1alpha1.PhaseCompleted || len(recordKeys(t, store)) != 2 {
		t.Fatalf("after the revert: archive %+v, records %v; want place 2, Completed, two records", got.Status.Archive, recordKeys(t, store))
	}
	v := verify(t, store, k, evidence.VerifyOptions{})
	if v.Problems != 0 || len(v.Runs()) != 1 || v.Runs()[0].Status.Phase != v1alpha1.PhaseCompleted {
		t.Errorf("verify: %d problems (%s), runs %d, want one Completed run", v.Problems, problems(v), len(v.Runs()))
	}
}
