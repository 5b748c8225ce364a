package evidence

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/conversion"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
)

// VerifyOptions bound what verify checks.
type VerifyOptions struct {
	// From and To are the period whose scheduled slots must each have a
	// run record (zero From: no slot is checked).
	From, To time.Time
	// Grace is how long after its slot a scheduled run's record may still
	// come: a slot younger than Grace at To is not judged yet (pending).
	// Default: the drill's phase timeouts added up, and the archiver's
	// delay (a run started at its slot has its record by then). A run answers the newest slot at or before its start (a
	// catch-up after downtime answers one slot, the newest it missed).
	Grace time.Duration
	// Written are the places the cluster's runs say were written
	// (DrillRun status.archive): each must hold the record of that digest.
	Written []Written
	// Chain, when set ("cluster/drill"), verifies that chain only.
	Chain string
	// UseIndex reads each chain's newest index (verified) instead of the
	// records it covers, as the report does: for those places the index's
	// word stands for the records (its signature, its digests and links,
	// checked by the writer). Gaps are not checked then. Without it, the
	// newest index of each chain is checked against the records.
	UseIndex bool
}

// Written is a place of a chain a run says it took, and the digest of
// the record it wrote there.
type Written struct {
	Chain  string `json:"chain"` // "cluster/drill"
	Seq    int64  `json:"seq"`
	Digest string `json:"digest"`
	Run    string `json:"run"`
}

// archiveDelay is how long after its run finished a record may still
// come (the archiver's interval and a retry or two).
const archiveDelay = 15 * time.Minute

// runBound is, unless VerifyOptions.Grace says otherwise, how long a slot
// waits for its run's record before a slot with none is a gap: the
// scheduler starts a run at its slot, and its record comes once it has
// finished, at most the drill's phase timeouts later (a held run's at
// once), plus the archiver's delay.
func runBound(spec v1alpha1.DrillSpec) time.Duration {
	def := drill.Definition{Spec: spec}
	def.FromSpec()
	t := def.Timeouts
	return t.Preflight + t.Inject + t.Recover + t.Verify + t.Revert + archiveDelay
}

// Verified is what verify found in an archive.
type Verified struct {
	Store  string        `json:"store"`
	Chains []ChainReport `json:"chains"`
	// ArchiveProblems are the archive's own: nothing verified at all.
	ArchiveProblems []string `json:"archiveProblems,omitempty"`
	// Notes say what else was seen (objects that are not records).
	Notes []string `json:"notes,omitempty"`
	// Problems counts every problem of every chain, gaps included.
	Problems int `json:"problems"`
}

// ChainReport is one drill's chain.
type ChainReport struct {
	Cluster string `json:"cluster"`
	Drill   string `json:"drill"`
	// Records is how many places of the chain hold a record; Runs and
	// Annotations count the verified ones.
	Records     int `json:"records"`
	Runs        int `json:"runs"`
	Annotations int `json:"annotations"`
	// Keys counts the verified records per signing key id.
	Keys map[string]int `json:"keys,omitempty"`
	// Problems are records that do not verify, places with no record,
	// links that do not hold.
	Problems []string `json:"problems,omitempty"`
	// Gaps are scheduled slots in the period without a run record;
	// Pending the slots too recent at the period's end to judge.
	Gaps    []time.Time `json:"gaps,omitempty"`
	Pending []time.Time `json:"pending,omitempty"`
	// Verified are the records that verified, in chain order.
	Verified []Record `json:"-"`
}

// readers is how many records are read and verified at once.
const readers = 16

// item is one record of the archive as read and verified.
type item struct {
	key string
	// raw is the record an index carries whole (nil: read it from the
	// store); it is not kept once verified.
	raw    []byte
	later  []string
	err    error // not read
	rec    Record
	keyID  string
	oerr   error // read, not verified
	digest string
	// indexed: taken from the chain's index, not read (its word for the
	// record's signature, fields and link).
	indexed bool
}

// Verify reads every record of the archive and checks each signature
// against the keyring (and the key's role), each record's fields against
// the DrillRun it holds, each chain's places and links, the places the
// cluster's runs say they wrote, and each scheduled drill's slots in the
// period.
func Verify(ctx context.Context, s Store, l Layout, k *Keyring, o VerifyOptions) (Verified, error) {
	prefix := l.Prefix
	if o.Chain != "" {
		c, d, _ := strings.Cut(o.Chain, "/")
		prefix = l.ChainPrefix(c, d)
	}
	r, err := newReader(ctx, s, prefix)
	if err != nil {
		return Verified{}, err
	}
	type chainKey struct{ cluster, drill string }
	places := map[chainKey]map[int64]*item{}
	var stray []string
	type indexAt struct {
		through int64
		key     string
	}
	newestIndex := map[chainKey]indexAt{}
	for _, key := range r.keys {
		if c, d, t, ok := l.ParseIndex(key); ok {
			if ck := (chainKey{c, d}); t > newestIndex[ck].through {
				newestIndex[ck] = indexAt{t, key}
			}
			continue
		}
		c, d, seq, ok := l.Parse(key)
		if !ok {
			if !strings.Contains(key, "/"+probeFolder+"/") && !strings.HasPrefix(key, probeFolder+"/") {
				stray = append(stray, key)
			}
			continue
		}
		ck := chainKey{c, d}
		if places[ck] == nil {
			places[ck] = map[int64]*item{}
		}
		places[ck][seq] = &item{key: key}
	}
	written := map[chainKey][]Written{}
	for _, w := range o.Written {
		c, d, _ := strings.Cut(w.Chain, "/")
		ck := chainKey{c, d}
		if o.Chain != "" && w.Chain != o.Chain {
			continue
		}
		written[ck] = append(written[ck], w)
		if places[ck] == nil {
			places[ck] = map[int64]*item{}
		}
	}
	// Each chain's newest index: read in place of the records it covers
	// (UseIndex), or checked against them.
	indexes := map[chainKey]*Index{}
	indexProblems := map[chainKey][]string{}
	var chains []chainKey
	for ck := range newestIndex {
		if places[ck] != nil {
			chains = append(chains, ck)
		}
	}
	var mu sync.Mutex
	inParallel(len(chains), func(i int) {
		ck, at := chains[i], newestIndex[chains[i]]
		idx, err := r.index(ctx, k, at.key, ck.cluster, ck.drill, at.through)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			indexProblems[ck] = append(indexProblems[ck], fmt.Sprintf("index %s: %v", at.key, err))
			return
		}
		indexes[ck] = idx
	})
	if o.UseIndex {
		for ck, idx := range indexes {
			indexed(places[ck], idx, ck.cluster, ck.drill)
		}
	}
	var toRead []*item
	for _, ps := range places {
		for _, it := range ps {
			if !it.indexed && it.err == nil {
				toRead = append(toRead, it)
			}
		}
	}
	r.readAll(ctx, k, toRead)
	out := Verified{Store: s.Describe()}
	verified := 0
	for ck, ps := range places {
		cr := verifyChain(ck.cluster, ck.drill, ps, written[ck])
		cr.Problems = append(cr.Problems, indexProblems[ck]...)
		if idx := indexes[ck]; idx != nil && !o.UseIndex {
			cr.Problems = append(cr.Problems, checkIndex(idx, ps)...)
		}
		if !o.UseIndex {
			var gerr error
			if cr.Gaps, cr.Pending, gerr = gaps(cr.Verified, o); gerr != nil {
				cr.Problems = append(cr.Problems, gerr.Error())
			}
		}
		verified += len(cr.Verified)
		out.Problems += len(cr.Problems) + len(cr.Gaps)
		out.Chains = append(out.Chains, cr)
	}
	sort.Slice(out.Chains, func(i, j int) bool {
		a, b := out.Chains[i], out.Chains[j]
		return a.Cluster < b.Cluster || (a.Cluster == b.Cluster && a.Drill < b.Drill)
	})
	if verified == 0 {
		out.ArchiveProblems = append(out.ArchiveProblems, fmt.Sprintf("no record verified under %q: nothing was checked (an empty archive, the wrong prefix, or keys not trusted)", prefix))
		if len(stray) > 0 {
			out.Notes = append(out.Notes, fmt.Sprintf("%d objects under the prefix are not records of its layout <prefix>/<cluster>/<drill>/<place>.json (first: %s): is the prefix the daemon's?", len(stray), stray[0]))
		}
	}
	out.Problems += len(out.ArchiveProblems)
	return out, ctx.Err()
}

// verifyChain checks one chain's records, read and verified, in order.
func verifyChain(cluster, drill string, ps map[int64]*item, written []Written) ChainReport {
	cr := ChainReport{Cluster: cluster, Drill: drill, Keys: map[string]int{}}
	digests := map[int64]string{}
	var prevDigest string
	prevOK := false // the place before holds a record that verified
	type runSeen struct {
		seq   int64
		phase v1alpha1.Phase
	}
	runAt := map[string]runSeen{}
	uids := map[string][]int64{}
	seqs := make([]int64, 0, len(ps))
	for seq := range ps {
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	var expect int64 = 1
	for _, seq := range seqs {
		switch {
		case seq == expect+1:
			cr.Problems = append(cr.Problems, fmt.Sprintf("place %d: no record (deleted from the archive)", expect))
		case seq > expect:
			cr.Problems = append(cr.Problems, fmt.Sprintf("places %d to %d: no record (deleted from the archive)", expect, seq-1))
		}
		if seq != expect {
			prevDigest, prevOK = "", false
		}
		expect = seq + 1
		it := ps[seq]
		cr.Records++
		for _, note := range it.later {
			cr.Problems = append(cr.Problems, fmt.Sprintf("place %d (%s): %s", seq, it.key, note))
		}
		if it.err != nil {
			cr.Problems = append(cr.Problems, fmt.Sprintf("place %d (%s): cannot be read: %v", seq, it.key, it.err))
			prevDigest, prevOK = "", false
			continue
		}
		digest := it.digest
		digests[seq] = digest
		rec := it.rec
		ok := false
		switch {
		case it.oerr != nil:
			cr.Problems = append(cr.Problems, fmt.Sprintf("place %d (%s): %v (changed after it was written, or signed by a key not trusted for it)", seq, it.key, it.oerr))
		case rec.Seq != seq || rec.Drill != drill || rec.Cluster.Name != cluster:
			cr.Problems = append(cr.Problems, fmt.Sprintf("place %d (%s): the record says it is place %d of %s/%s (moved)", seq, it.key, rec.Seq, rec.Cluster.Name, rec.Drill))
		case seq > 1 && prevDigest != "" && rec.Prev != prevDigest && prevOK:
			// Two records a trusted key verifies, not linked: one of them
			// replaced the one written there.
			cr.Problems = append(cr.Problems, fmt.Sprintf("place %d (%s): does not chain to place %d (one of them was replaced)", seq, it.key, seq-1))
		default:
			if seq > 1 && prevDigest != "" && rec.Prev != prevDigest {
				// The place before does not verify: it is the replaced one,
				// and this record, verified, still counts.
				cr.Problems = append(cr.Problems, fmt.Sprintf("place %d (%s): chains to a record other than the one at place %d, which does not verify (replaced); this record counts", seq, it.key, seq-1))
			}
			if err := consistent(rec); err != nil && !it.indexed {
				cr.Problems = append(cr.Problems, fmt.Sprintf("place %d (%s): %v", seq, it.key, err))
				break
			}
			if rec.Kind == KindRun {
				phase := rec.Run.DrillRun.Status.Phase
				if first, dup := runAt[rec.Run.ID]; dup && first.phase != v1alpha1.PhaseRevertFailed {
					cr.Problems = append(cr.Problems, fmt.Sprintf("place %d (%s): run %s's record again (first at place %d): counted once", seq, it.key, rec.Run.Name, first.seq))
					break
				}
				// A run archived RevertFailed is archived again once its
				// revert succeeded: the later record is the run's.
				runAt[rec.Run.ID] = runSeen{seq, phase}
				if uid := rec.Cluster.UID; uid != "" {
					uids[uid] = append(uids[uid], seq)
				}
			}
			ok = true
			cr.Keys[it.keyID]++
			rec.digest = digest
			cr.Verified = append(cr.Verified, rec)
			switch rec.Kind {
			case KindRun:
				cr.Runs++
			case KindAnnotation:
				cr.Annotations++
			}
		}
		prevDigest, prevOK = digest, ok
	}
	if len(uids) > 1 {
		var parts []string
		for uid, seqs := range uids {
			parts = append(parts, fmt.Sprintf("%s (%d runs, first at place %d)", uid, len(seqs), seqs[0]))
		}
		sort.Strings(parts)
		cr.Problems = append(cr.Problems, "run records of more than one cluster share this chain (kube-system UIDs "+strings.Join(parts, ", ")+
			"): two clusters are installed with one --cluster-name, so neither's slots are evidenced by this chain alone")
	}
	sort.Slice(written, func(i, j int) bool { return written[i].Seq < written[j].Seq })
	for _, w := range written {
		switch got, ok := digests[w.Seq]; {
		case ps[w.Seq] == nil:
			cr.Problems = append(cr.Problems, fmt.Sprintf("place %d: no record, but run %s says it wrote one there (deleted from the archive)", w.Seq, w.Run))
		case !ok:
			// not readable: named above
		case w.Digest != "" && got != w.Digest:
			cr.Problems = append(cr.Problems, fmt.Sprintf("place %d: not the record run %s wrote there (%s, found %s): replaced", w.Seq, w.Run, w.Digest, got))
		}
	}
	return cr
}

// index reads and verifies a chain's index: signed by a key trusted for
// run records, of this chain, listing every place 1 to through in order.
func (r *reader) index(ctx context.Context, k *Keyring, key, cluster, drill string, through int64) (*Index, error) {
	raw, _, err := r.read(ctx, key)
	if err != nil {
		return nil, err
	}
	rec, _, err := k.Open(raw)
	if err != nil {
		return nil, err
	}
	if rec.Kind != KindIndex || rec.Index == nil || rec.Cluster.Name != cluster || rec.Drill != drill || rec.Index.Through != through {
		return nil, fmt.Errorf("not the index of places 1 to %d of %s/%s", through, cluster, drill)
	}
	for i, e := range rec.Index.Entries {
		if e.Seq != int64(i+1) || (e.Run == nil) == (len(e.Envelope) == 0) {
			return nil, fmt.Errorf("entry %d is not place %d with a run or a record", i+1, i+1)
		}
	}
	if int64(len(rec.Index.Entries)) != through {
		return nil, fmt.Errorf("%d entries for %d places", len(rec.Index.Entries), through)
	}
	return rec.Index, nil
}

// indexed puts the index's entries in the places they cover: a run the
// writer vouched for as its view, any other record as carried, to be
// verified like one read from the store.
func indexed(ps map[int64]*item, idx *Index, cluster, drill string) {
	prev := ""
	for _, e := range idx.Entries {
		it := &item{key: fmt.Sprintf("index entry %d", e.Seq), digest: e.Digest}
		if e.Run != nil {
			it.indexed = true
			it.rec = Record{APIVersion: v1alpha1.APIVersion, Kind: KindRun, Cluster: Cluster{Name: cluster, UID: e.ClusterUID}, Drill: drill, Seq: e.Seq, Prev: prev,
				ArchivedAt: e.ArchivedAt, Run: &Run{ID: string(e.Run.UID), Name: e.Run.Name, DrillRun: *e.Run}}
		} else {
			it.raw = e.Envelope
			if d := Digest(e.Envelope); d != e.Digest {
				it.err = fmt.Errorf("the index carries a record of digest %s, listed as %s", d, e.Digest)
			}
		}
		if old := ps[e.Seq]; old != nil {
			it.key = old.key
		}
		ps[e.Seq] = it
		prev = e.Digest
	}
}

// checkIndex compares a chain's index with the records read: each
// entry's digest is the record's, each run the record's view.
func checkIndex(idx *Index, ps map[int64]*item) []string {
	var out []string
	for _, e := range idx.Entries {
		it := ps[e.Seq]
		switch {
		case it == nil || it.err != nil:
			out = append(out, fmt.Sprintf("index through place %d: place %d is listed, the archive has no readable record there", idx.Through, e.Seq))
		case it.digest != e.Digest:
			out = append(out, fmt.Sprintf("index through place %d: place %d is listed as %s, the record there is %s", idx.Through, e.Seq, e.Digest, it.digest))
		case e.Run != nil && (it.oerr != nil || it.rec.Run == nil || !sameFields.DeepEqual(*e.Run, ReportView(it.rec.Run.DrillRun))):
			out = append(out, fmt.Sprintf("index through place %d: place %d's run is not the record's", idx.Through, e.Seq))
		}
	}
	return out
}

// consistent checks that a run record's evidence fields are the ones its
// DrillRun decides (what an auditor reads and what the report reads tell
// one story), and that an annotation names a run.
func consistent(rec Record) error {
	switch rec.Kind {
	case KindRun:
		if rec.Run == nil {
			return fmt.Errorf("a run record without its run")
		}
		d := rec.Run.DrillRun
		if d.Spec.Drill != rec.Drill {
			return fmt.Errorf("record of chain %s holds a DrillRun of drill %q", rec.Drill, d.Spec.Drill)
		}
		if sc := rec.Run.Scope.Cluster; sc != "" && sc != rec.Cluster.Name {
			return fmt.Errorf("record of cluster %s says its scope is cluster %s", rec.Cluster.Name, sc)
		}
		want, got := decided(derive(d, zoneOf(rec.Run.ScheduleZone))), decided(*rec.Run)
		if !sameFields.DeepEqual(want, got) {
			w, _ := json.Marshal(want)
			g, _ := json.Marshal(got)
			return fmt.Errorf("the record's fields (%s) are not what its DrillRun %s says (%s)", diff(g, w), d.Name, diff(w, g))
		}
	case KindAnnotation:
		if rec.Annotation == nil || rec.Annotation.Run == "" {
			return fmt.Errorf("an annotation that names no run")
		}
	default:
		return fmt.Errorf("unknown kind of record %q", rec.Kind)
	}
	return nil
}

// sameFields compares a record's fields with those derived again: nil
// and empty alike, and times as instants (a MicroTime decodes to the
// local zone, a time.Time to the zone it was written in).
var sameFields = conversion.EqualitiesOrDie(
	func(a, b time.Time) bool { return a.Equal(b) },
	func(a, b metav1.MicroTime) bool { return a.Equal(&b) },
	func(a, b metav1.Time) bool { return a.Equal(&b) },
)

// decided is a run's fields that its DrillRun decides.
func decided(r Run) Run {
	return Run{ID: r.ID, Name: r.Name, StartedBy: r.StartedBy, Definition: r.Definition, DefinitionDigest: r.DefinitionDigest,
		Source: r.Source, Result: r.Result, Steps: r.Steps, DataChecks: r.DataChecks, Findings: r.Findings,
		NextScheduledRun: r.NextScheduledRun, Scope: Scope{Namespaces: r.Scope.Namespaces}}
}

// diff names the top-level fields of a (JSON) that differ from b's.
func diff(a, b []byte) string {
	var ma, mb map[string]json.RawMessage
	if json.Unmarshal(a, &ma) != nil || json.Unmarshal(b, &mb) != nil {
		return "?"
	}
	var out []string
	for k, v := range ma {
		if !bytes.Equal(v, mb[k]) {
			out = append(out, k+"="+string(v))
		}
	}
	for k := range mb {
		if _, ok := ma[k]; !ok {
			out = append(out, k+" absent")
		}
	}
	sort.Strings(out)
	s := strings.Join(out, ", ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// gaps are the slots of the drill's schedule in [From, To) that no
// scheduled run record answers, and those too recent to judge (Grace
// after the slot is past To). Slots are computed as the daemon's
// scheduler did: under the schedule of the newest scheduled run record
// started before the slot (a manual run, from whatever file, says nothing
// of the schedule in force), in the zone the records name. A run answers
// the newest slot at or before its start, and one slot only. Slots are
// counted from the chain's first scheduled run record (a drill created
// mid-period has no gaps before it).
func gaps(recs []Record, o VerifyOptions) (gaps, pending []time.Time, err error) {
	if o.From.IsZero() {
		return nil, nil, nil
	}
	var runs []*Run
	for _, r := range recs {
		if r.Kind == KindRun && r.Run != nil && r.Run.DrillRun.Status.StartedAt != nil && r.Run.DrillRun.Spec.Trigger == engine.TriggerSchedule {
			runs = append(runs, r.Run)
		}
	}
	if len(runs) == 0 {
		return nil, nil, nil
	}
	sort.Slice(runs, func(i, j int) bool { return started(runs[i]).Before(started(runs[j])) })
	loc, err := time.LoadLocation(runs[len(runs)-1].ScheduleZone)
	if err != nil {
		return nil, nil, fmt.Errorf("slots not checked: the records' schedule zone %q: %w", runs[len(runs)-1].ScheduleZone, err)
	}
	to := o.To
	if to.IsZero() {
		to = time.Now()
	}
	from := o.From
	if first := started(runs[0]); first.After(from) {
		from = first
	}
	used := make([]bool, len(runs))
	t := from.Add(-time.Second).In(loc)
	for i := 0; i < 100000; i++ {
		// The schedule in force at t: the newest scheduled run's at or
		// before t.
		spec, nextRun := runs[0].Definition, -1
		for j, r := range runs {
			if started(r).After(t) {
				nextRun = j
				break
			}
			spec = r.Definition
		}
		s, ok := scheduleOf(spec)
		if !ok {
			// Not scheduled then: the next scheduled run says when it was again.
			if nextRun < 0 {
				break
			}
			t = started(runs[nextRun]).Add(-time.Second).In(loc)
			continue
		}
		slot := s.Next(t)
		// A scheduled run of another schedule started before that slot:
		// the schedule had changed by then, and its slots are the ones.
		for changed := true; changed && !slot.IsZero(); {
			changed = false
			for _, r := range runs {
				st := started(r)
				if !st.After(t) || st.After(slot) || sameSchedule(r.Definition, spec) {
					continue
				}
				ns, ok := scheduleOf(r.Definition)
				if !ok {
					break
				}
				spec, s, t, changed = r.Definition, ns, st.Add(-time.Nanosecond).In(loc), true
				slot = s.Next(t)
				break
			}
		}
		if slot.IsZero() || !slot.Before(to) {
			break
		}
		next := s.Next(slot)
		found, changed := false, -1
		for j, r := range runs {
			st := started(r)
			if used[j] || st.Before(slot) || (!next.IsZero() && !st.Before(next)) {
				continue
			}
			if !sameSchedule(r.Definition, spec) {
				// A run of another schedule in this slot's window: the
				// schedule changed within it, so neither schedule's slot
				// here is known to have been due.
				if changed < 0 {
					changed = j
				}
				continue
			}
			used[j], found = true, true
			break
		}
		if !found && changed >= 0 {
			t = started(runs[changed]).Add(-time.Nanosecond).In(loc)
			continue
		}
		wait := o.Grace
		if wait <= 0 {
			wait = runBound(spec)
		}
		switch {
		case found:
		case slot.Add(wait).After(to):
			pending = append(pending, slot.UTC())
		default:
			gaps = append(gaps, slot.UTC())
		}
		t = slot
	}
	return gaps, pending, nil
}

// sameSchedule says whether two definitions schedule alike.
func sameSchedule(a, b v1alpha1.DrillSpec) bool {
	return a.Schedule == b.Schedule && a.Suspend == b.Suspend
}

func started(r *Run) time.Time { return r.DrillRun.Status.StartedAt.Time }

// reader reads each record as it was first written: from a store that
// keeps versions, its first version (and what happened to it since);
// otherwise what the store holds now.
type reader struct {
	s        Store
	keys     []string
	versions map[string][]Version // nil: the store keeps none
}

func newReader(ctx context.Context, s Store, prefix string) (*reader, error) {
	r := &reader{s: s}
	if vs, ok := s.(Versioned); ok {
		versions, ok, err := vs.Versions(ctx, prefix)
		if err != nil {
			return nil, err
		}
		if ok {
			r.versions = versions
			for k := range versions {
				r.keys = append(r.keys, k)
			}
			sort.Strings(r.keys)
			return r, nil
		}
	}
	keys, err := s.List(ctx, prefix)
	r.keys = keys
	return r, err
}

// readAll reads and verifies every item, readers at a time.
func (r *reader) readAll(ctx context.Context, k *Keyring, items []*item) {
	inParallel(len(items), func(i int) {
		it := items[i]
		raw := it.raw
		if raw == nil { // a record an index carries is not read again
			raw, it.later, it.err = r.read(ctx, it.key)
		}
		it.raw = nil
		if it.err == nil {
			it.digest = Digest(raw)
			it.rec, it.keyID, it.oerr = k.Open(raw)
		}
	})
}

// inParallel calls fn(0) to fn(n-1), readers at a time.
func inParallel(n int, fn func(i int)) {
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(readers, n) {
		wg.Go(func() {
			for i := range work {
				fn(i)
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
}

// read is the record at key as first written, and notes of every later
// version (an overwrite, a delete marker): attempts on the evidence,
// which the first version outlived.
func (r *reader) read(ctx context.Context, key string) (raw []byte, later []string, err error) {
	vs := r.versions[key]
	if r.versions == nil || len(vs) == 0 {
		raw, err = r.s.Get(ctx, key)
		return raw, nil, err
	}
	first := -1
	for i, v := range vs {
		if !v.DeleteMarker {
			first = i
			break
		}
	}
	if first < 0 {
		return nil, nil, fmt.Errorf("only delete markers: every version deleted")
	}
	// Every other entry is a later attempt: a store may list a delete
	// marker with no time (versitygw v1.8.0 did), so its place in the
	// order says nothing.
	for i, v := range vs {
		if i == first {
			continue
		}
		if v.DeleteMarker {
			later = append(later, "deleted later (a delete marker hides it; its first version is kept and is what was verified)")
		} else {
			later = append(later, "overwritten later by version "+v.ID+" (its first version is kept and is what was verified)")
		}
	}
	raw, err = r.s.(Versioned).GetVersion(ctx, key, vs[first].ID)
	return raw, later, err
}
