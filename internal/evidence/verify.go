package evidence

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
)

// VerifyOptions bound what verify checks.
type VerifyOptions struct {
	// From and To are the period whose scheduled slots must each have a
	// run record (zero From: no slot is checked).
	From, To time.Time
	// Grace is how long after its slot a scheduled run may start and
	// still count for it (default: until the next slot).
	Grace time.Duration
	// Heads are, per chain ("cluster/drill"), the newest place the cluster
	// says was written (DrillRun status.archive.seq): a chain shorter than
	// that lost its newest records.
	Heads map[string]int64
}

// Verified is what verify found in an archive.
type Verified struct {
	Store  string        `json:"store"`
	Chains []ChainReport `json:"chains"`
	// Problems counts every problem of every chain.
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
	// Gaps are scheduled slots in the period without a run record.
	Gaps []time.Time `json:"gaps,omitempty"`
	// Verified are the records that verified, in chain order.
	Verified []Record `json:"-"`
}

// Verify reads every record of the archive and checks each signature
// against the keyring, each chain's places and links, and each scheduled
// drill's slots in the period.
func Verify(ctx context.Context, s Store, l Layout, k *Keyring, o VerifyOptions) (Verified, error) {
	r, err := newReader(ctx, s, l.Prefix)
	if err != nil {
		return Verified{}, err
	}
	keys := r.keys
	type chainKey struct{ cluster, drill string }
	places := map[chainKey]map[int64]string{}
	for _, key := range keys {
		c, d, seq, ok := l.Parse(key)
		if !ok {
			continue
		}
		ck := chainKey{c, d}
		if places[ck] == nil {
			places[ck] = map[int64]string{}
		}
		places[ck][seq] = key
	}
	for name, head := range o.Heads {
		c, d, _ := strings.Cut(name, "/")
		if ck := (chainKey{c, d}); places[ck] == nil && head > 0 {
			places[ck] = map[int64]string{}
		}
	}
	out := Verified{Store: s.Describe()}
	for ck, ps := range places {
		cr := ChainReport{Cluster: ck.cluster, Drill: ck.drill, Keys: map[string]int{}}
		var last int64
		for seq := range ps {
			last = max(last, seq)
		}
		if h := o.Heads[ck.cluster+"/"+ck.drill]; h > last {
			cr.Problems = append(cr.Problems, fmt.Sprintf("places %d to %d: no record, but the cluster's runs say they were written (deleted from the archive)", last+1, h))
		}
		var prevDigest string
		for seq := int64(1); seq <= last; seq++ {
			key, ok := ps[seq]
			if !ok {
				cr.Problems = append(cr.Problems, fmt.Sprintf("place %d: no record (deleted from the archive)", seq))
				prevDigest = ""
				continue
			}
			cr.Records++
			raw, later, err := r.read(ctx, key)
			for _, note := range later {
				cr.Problems = append(cr.Problems, fmt.Sprintf("place %d (%s): %s", seq, key, note))
			}
			if err != nil {
				cr.Problems = append(cr.Problems, fmt.Sprintf("place %d (%s): cannot be read: %v", seq, key, err))
				prevDigest = ""
				continue
			}
			digest := Digest(raw)
			rec, keyID, err := k.Open(raw)
			switch {
			case err != nil:
				cr.Problems = append(cr.Problems, fmt.Sprintf("place %d (%s): %v (changed after it was written, or signed by a key not trusted)", seq, key, err))
			case rec.Seq != seq || rec.Drill != ck.drill || rec.Cluster.Name != ck.cluster:
				cr.Problems = append(cr.Problems, fmt.Sprintf("place %d (%s): the record says it is place %d of %s/%s (moved)", seq, key, rec.Seq, rec.Cluster.Name, rec.Drill))
			case seq > 1 && prevDigest != "" && rec.Prev != prevDigest:
				cr.Problems = append(cr.Problems, fmt.Sprintf("place %d (%s): does not chain to place %d (one of them was replaced)", seq, key, seq-1))
			default:
				cr.Keys[keyID]++
				cr.Verified = append(cr.Verified, rec)
				switch rec.Kind {
				case KindRun:
					cr.Runs++
				case KindAnnotation:
					cr.Annotations++
				}
			}
			prevDigest = digest
		}
		cr.Gaps = gaps(cr.Verified, o)
		out.Problems += len(cr.Problems) + len(cr.Gaps)
		out.Chains = append(out.Chains, cr)
	}
	sort.Slice(out.Chains, func(i, j int) bool {
		a, b := out.Chains[i], out.Chains[j]
		return a.Cluster < b.Cluster || (a.Cluster == b.Cluster && a.Drill < b.Drill)
	})
	return out, ctx.Err()
}

// gaps are the slots of the drill's schedule in [From, To) that no
// scheduled run record answers: a run the schedule started (or held) at or
// after the slot and before the next one (or Grace after it). Slots are
// counted from the chain's first run record (a drill created mid-period
// has no gaps before it), under the schedule of the newest run record
// started before the slot.
func gaps(recs []Record, o VerifyOptions) []time.Time {
	if o.From.IsZero() {
		return nil
	}
	var runs []*Run
	for _, r := range recs {
		if r.Kind == KindRun && r.Run != nil && r.Run.DrillRun.Status.StartedAt != nil {
			runs = append(runs, r.Run)
		}
	}
	if len(runs) == 0 {
		return nil
	}
	sort.Slice(runs, func(i, j int) bool { return started(runs[i]).Before(started(runs[j])) })
	from := o.From
	if first := started(runs[0]); first.After(from) {
		from = first
	}
	to := o.To
	if to.IsZero() {
		to = time.Now()
	}
	var out []time.Time
	// The schedule in force at t: the newest run record's at or before t.
	specAt := func(t time.Time) v1alpha1.DrillSpec {
		spec := runs[0].Definition
		for _, r := range runs {
			if started(r).After(t) {
				break
			}
			spec = r.Definition
		}
		return spec
	}
	t := from.Add(-time.Second)
	for i := 0; i < 100000; i++ {
		spec := specAt(t)
		if spec.Schedule == "" || spec.Suspend {
			break
		}
		s, err := drill.ParseSchedule(spec.Schedule)
		if err != nil {
			break
		}
		slot := s.Next(t)
		if slot.IsZero() || !slot.Before(to) {
			break
		}
		next := s.Next(slot)
		until := next
		if o.Grace > 0 {
			until = slot.Add(o.Grace)
		}
		if until.After(to) {
			break // the slot's run may still come
		}
		found := false
		for _, r := range runs {
			st := started(r)
			if r.DrillRun.Spec.Trigger == engine.TriggerSchedule && !st.Before(slot) && st.Before(until) {
				found = true
				break
			}
		}
		if !found {
			out = append(out, slot.UTC())
		}
		t = slot
	}
	return out
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
