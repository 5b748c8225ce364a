package evidence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
)

// KindIndex is a chain's index: a record of its own, outside the chain's
// places, that the report reads instead of every record.
const KindIndex = "RunIndex"

// IndexEvery is how often the writer indexes a chain: after a run record
// IndexEvery places or more past the newest index, the index of places 1
// to that one (annotators never write one).
const IndexEvery = 10

// Index lists a chain's places 1 to Through: each record's digest and,
// for a run record the writer verified with its own key (and whose fields
// agree with its DrillRun), the run as the report reads it. Any other
// record (an annotation, a record the writer does not vouch for) is
// carried whole, for the reader to verify itself.
type Index struct {
	Through int64        `json:"through"`
	Entries []IndexEntry `json:"entries"`
}

// IndexEntry is one place of an indexed chain.
type IndexEntry struct {
	Seq        int64     `json:"seq"`
	Digest     string    `json:"digest"`
	Kind       string    `json:"kind"`
	ArchivedAt time.Time `json:"archivedAt"`
	// ClusterUID is the record's cluster UID.
	ClusterUID string `json:"clusterUID,omitempty"`
	// Run is the run record's DrillRun as the report reads it (ReportView).
	Run *v1alpha1.DrillRun `json:"run,omitempty"`
	// Envelope is the record as stored, when Run is not given.
	Envelope json.RawMessage `json:"envelope,omitempty"`
}

// ReportView is what the DR report reads of a run: who and what it was,
// its verdict, objectives, measurements, findings and detections. The
// definition, the step log and the page stay in the run's record.
func ReportView(d v1alpha1.DrillRun) v1alpha1.DrillRun {
	st := d.Status
	return v1alpha1.DrillRun{
		ObjectMeta: metav1.ObjectMeta{Name: d.Name, UID: d.UID, Labels: d.Labels},
		Spec:       v1alpha1.DrillRunSpec{Drill: d.Spec.Drill, Scenario: d.Spec.Scenario, Trigger: d.Spec.Trigger, StartedBy: d.Spec.StartedBy},
		Status: v1alpha1.DrillRunStatus{Phase: st.Phase, Verdict: st.Verdict, Reason: st.Reason, StartedAt: st.StartedAt, FinishedAt: st.FinishedAt,
			RTO: st.RTO, RTOTarget: st.RTOTarget, RPO: st.RPO, RPOTarget: st.RPOTarget, RPOSource: st.RPOSource,
			Findings: st.Findings, Detections: st.Detections, Stop: st.Stop},
	}
}

// IndexKey is the object of a chain's index of places 1 to through.
func (l Layout) IndexKey(cluster, drill string, through int64) string {
	return fmt.Sprintf("%s%s/%010d.json", l.ChainPrefix(cluster, drill), indexFolder, through)
}

const indexFolder = "index"

// ParseIndex splits an index's object key; ok is false for other keys.
func (l Layout) ParseIndex(key string) (cluster, drill string, through int64, ok bool) {
	dir, file := path.Split(key)
	parent, folder := path.Split(strings.TrimSuffix(dir, "/"))
	if folder != indexFolder {
		return "", "", 0, false
	}
	return l.Parse(parent + file)
}

// writeIndex writes the index of places 1 to through of a chain: the
// chain's newest earlier index (through place base, as the chain's head
// read found it) if the writer's key verifies it, and the records after
// it, each linked to the one before. A place it cannot read or link leaves
// the chain unindexed (the report then reads every record).
func (c *Chain) writeIndex(ctx context.Context, cl Cluster, drill string, base, through int64) error {
	var entries []IndexEntry
	if base > 0 {
		raw, err := c.Store.Get(ctx, c.Layout.IndexKey(cl.Name, drill, base))
		if err != nil {
			return err
		}
		rec, trusted, err := c.open(raw)
		if err != nil {
			return err
		}
		if trusted && rec.Kind == KindIndex && rec.Index != nil && rec.Index.Through == base && int64(len(rec.Index.Entries)) == base {
			entries = rec.Index.Entries
		}
	}
	prev := ""
	if n := len(entries); n > 0 {
		prev = entries[n-1].Digest
	}
	for seq := int64(len(entries)) + 1; seq <= through; seq++ {
		raw, err := c.Store.Get(ctx, c.Layout.Key(cl.Name, drill, seq))
		if err != nil {
			return fmt.Errorf("place %d: %w", seq, err)
		}
		r, trusted, err := c.open(raw)
		if err == nil && !trusted {
			r, err = Decode(raw)
		}
		if err != nil {
			return fmt.Errorf("place %d: %w", seq, err)
		}
		if r.Seq != seq || r.Prev != prev {
			return fmt.Errorf("place %d does not link to place %d", seq, seq-1)
		}
		e := IndexEntry{Seq: seq, Digest: Digest(raw), Kind: r.Kind, ArchivedAt: r.ArchivedAt, ClusterUID: r.Cluster.UID}
		if trusted && r.Kind == KindRun && consistent(r) == nil {
			v := ReportView(r.Run.DrillRun)
			e.Run = &v
		} else {
			e.Envelope = raw
		}
		entries = append(entries, e)
		prev = e.Digest
	}
	idx := Record{APIVersion: v1alpha1.APIVersion, Kind: KindIndex, Cluster: cl, Drill: drill, Seq: through, ArchivedAt: c.now().UTC(),
		Index: &Index{Through: through, Entries: entries}}
	env, err := c.Signer.Seal(idx)
	if err != nil {
		return err
	}
	// No retention of its own: an index is a shortcut, not evidence (a
	// deleted one sends the report to the records; a changed one fails its
	// signature), and a superseded one may be expired by a lifecycle rule.
	if err := c.Store.Create(ctx, c.Layout.IndexKey(cl.Name, drill, through), env, time.Time{}); err != nil && !errors.Is(err, ErrExists) {
		return err
	}
	return nil
}
