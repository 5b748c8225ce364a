package evidence

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Chain appends records to the per-drill chains of an archive.
type Chain struct {
	Store  Store
	Layout Layout
	Signer *Signer
	// Trust are the keys whose records the writer takes for its own when
	// it reads the chain (to find a record it wrote, or the cluster that
	// writes the chain). Nil: the Signer's own key. A record no key of
	// Trust verifies is never taken for anything but the digest it chains
	// to.
	Trust *Keyring
	// Retention is how long a record is retained under Object Lock (zero:
	// no retention is asked for).
	Retention time.Duration
	// Now is the clock (time.Now when nil).
	Now    func() time.Time
	Logger *slog.Logger
}

// Head is the newest record of a chain.
type Head struct {
	Seq    int64
	Digest string
	Key    string
	// Record is the head's record when Trusted (a key of the chain's
	// Trust verified it); otherwise zero.
	Record  Record
	Trusted bool
	// Raw is the envelope as stored.
	Raw []byte
	// Indexed is the last place the chain's newest index covers.
	Indexed int64
}

// Place is a place of a chain and the digest of the record the writer
// wrote there (a DrillRun's status.archive).
type Place struct {
	Seq    int64
	Digest string
}

// ErrOtherCluster: the chain is written by another cluster (another
// kube-system UID) under the same cluster name.
var ErrOtherCluster = errors.New("the chain is another cluster's")

// ErrOverwrites: the store does not refuse to overwrite an object.
var ErrOverwrites = errors.New("the store does not refuse overwrites (conditional create, If-None-Match: *, not honoured)")

func (c *Chain) trust() (*Keyring, error) {
	if c.Trust != nil {
		return c.Trust, nil
	}
	k := &Keyring{}
	if err := k.Add(c.Signer.PublicKey()); err != nil {
		return nil, fmt.Errorf("trust the signer's own key: %w", err)
	}
	c.Trust = k
	return k, nil
}

func (c *Chain) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Chain) log() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// Head reads the newest record of the chain of cluster and drill (Seq 0
// when the chain is empty).
func (c *Chain) Head(ctx context.Context, cluster, drill string) (Head, error) {
	keys, err := c.Store.List(ctx, c.Layout.ChainPrefix(cluster, drill))
	if err != nil {
		return Head{}, err
	}
	var h Head
	for _, k := range keys {
		if _, _, seq, ok := c.Layout.Parse(k); ok && seq > h.Seq {
			h.Seq, h.Key = seq, k
		}
		if _, _, t, ok := c.Layout.ParseIndex(k); ok && t > h.Indexed {
			h.Indexed = t
		}
	}
	if h.Seq == 0 {
		return h, nil
	}
	if h.Raw, err = c.Store.Get(ctx, h.Key); err != nil {
		return Head{}, err
	}
	h.Digest = Digest(h.Raw)
	h.Record, h.Trusted, err = c.open(h.Raw)
	return h, err
}

// open is the record of raw when a key of Trust verifies it.
func (c *Chain) open(raw []byte) (Record, bool, error) {
	k, err := c.trust()
	if err != nil {
		return Record{}, false, err
	}
	rec, _, err := k.Open(raw)
	if err != nil {
		return Record{}, false, nil
	}
	return rec, true, nil
}

// Appended is where a record went.
type Appended struct {
	Key    string
	Digest string
	Seq    int64
	// Existing: the record was there already (an earlier attempt wrote it
	// and could not say so).
	Existing bool
}

// AppendOptions shape an append.
type AppendOptions struct {
	// After is the newest place the writer knows it wrote in the chain.
	// The record goes after it even when the store's chain is shorter
	// (its newest records deleted) or holds another record there: a
	// deleted place is never filled again, and verify names it.
	After Place
	// Same says whether a record is the one being appended (written by an
	// earlier attempt whose success was lost): then nothing is written. It
	// is asked of the trusted records archived at or after Since, newest
	// first (zero Since: the head only).
	Same  func(Record) bool
	Since time.Time
}

// scanLimit bounds how far back the chain is read for a record written by
// an earlier attempt, or for the newest trusted record.
const scanLimit = 1000

// Append seals rec as the next record of its chain (Seq, Prev and
// ArchivedAt are set here) and creates it.
func (c *Chain) Append(ctx context.Context, rec Record, same func(Record) bool) (Appended, error) {
	return c.AppendAfter(ctx, rec, AppendOptions{Same: same})
}

// AppendAfter seals rec as the next record of its chain and creates it.
// Two writers racing for one place: the store refuses the second
// (conditional create), which reads the chain again and takes the next
// place. What was created is read back: a store that kept something else
// there does not refuse overwrites (ErrOverwrites). A chain whose newest
// trusted record names another cluster UID is refused (ErrOtherCluster).
func (c *Chain) AppendAfter(ctx context.Context, rec Record, o AppendOptions) (Appended, error) {
	for attempt := 0; attempt < 5; attempt++ {
		h, err := c.Head(ctx, rec.Cluster.Name, rec.Drill)
		if err != nil {
			return Appended{}, fmt.Errorf("read chain %s/%s: %w", rec.Cluster.Name, rec.Drill, err)
		}
		found, owner, err := c.scan(ctx, h, rec, o)
		if err != nil {
			return Appended{}, fmt.Errorf("read chain %s/%s: %w", rec.Cluster.Name, rec.Drill, err)
		}
		if found.Seq > 0 {
			return found, nil
		}
		if owner != "" && rec.Cluster.UID != "" && owner != rec.Cluster.UID {
			return Appended{}, fmt.Errorf("%w: chain %s/%s is written by the cluster whose kube-system UID is %s; this cluster's is %s: give each cluster a --cluster-name of its own",
				ErrOtherCluster, rec.Cluster.Name, rec.Drill, owner, rec.Cluster.UID)
		}
		prevSeq, prevDigest := h.Seq, h.Digest
		switch a := o.After; {
		case a.Seq > h.Seq:
			c.log().Error("archive chain shorter than this cluster's runs say: its newest records were deleted; the next record goes after them",
				"chain", rec.Cluster.Name+"/"+rec.Drill, "archiveHead", h.Seq, "written", a.Seq)
			prevSeq, prevDigest = a.Seq, a.Digest
		case a.Seq > 0 && a.Seq == h.Seq && a.Digest != "" && a.Digest != h.Digest:
			c.log().Error("archive chain's newest record is not the one this cluster wrote there: replaced; the next record chains to the one written",
				"chain", rec.Cluster.Name+"/"+rec.Drill, "place", a.Seq, "written", a.Digest, "found", h.Digest)
			prevDigest = a.Digest
		}
		rec.Seq, rec.Prev, rec.ArchivedAt = prevSeq+1, prevDigest, c.now().UTC()
		env, err := c.Signer.Seal(rec)
		if err != nil {
			return Appended{}, err
		}
		key := c.Layout.Key(rec.Cluster.Name, rec.Drill, rec.Seq)
		var retain time.Time
		if c.Retention > 0 {
			retain = rec.ArchivedAt.Add(c.Retention)
		}
		err = c.Store.Create(ctx, key, env, retain)
		if errors.Is(err, ErrExists) {
			continue // another writer took the place: read the chain again
		}
		if err != nil {
			return Appended{}, err
		}
		back, err := c.Store.Get(ctx, key)
		if err != nil {
			return Appended{}, fmt.Errorf("read back %s: %w", key, err)
		}
		if !bytes.Equal(back, env) {
			return Appended{}, fmt.Errorf("%s holds another record right after it was created (%s, not %s): %w", key, Digest(back), Digest(env), ErrOverwrites)
		}
		if rec.Kind == KindRun && rec.Seq-h.Indexed >= IndexEvery {
			// The report's shortcut; the record is written either way.
			if err := c.writeIndex(ctx, rec.Cluster, rec.Drill, h.Indexed, rec.Seq); err != nil {
				c.log().Warn("chain not indexed: the report reads its records one by one", "chain", rec.Cluster.Name+"/"+rec.Drill, "through", rec.Seq, "err", err)
			}
		}
		return Appended{Key: key, Digest: Digest(env), Seq: rec.Seq}, nil
	}
	return Appended{}, fmt.Errorf("chain %s/%s: every place taken by other writers after 5 attempts", rec.Cluster.Name, rec.Drill)
}

// scan reads the chain back from its head: the record o.Same names, if
// one archived since o.Since is there (zero Since: the head only), and the
// kube-system UID of the newest trusted record (the cluster that writes
// the chain). Records no trusted key verifies are passed over.
func (c *Chain) scan(ctx context.Context, h Head, rec Record, o AppendOptions) (found Appended, owner string, err error) {
	for seq, n := h.Seq, 0; seq >= 1 && n < scanLimit; seq, n = seq-1, n+1 {
		key := c.Layout.Key(rec.Cluster.Name, rec.Drill, seq)
		r, trusted, raw := h.Record, h.Trusted, h.Raw
		if seq != h.Seq {
			if raw, err = c.Store.Get(ctx, key); errors.Is(err, ErrNotFound) {
				continue
			} else if err != nil {
				return Appended{}, "", err
			}
			if r, trusted, err = c.open(raw); err != nil {
				return Appended{}, "", err
			}
		} else if !trusted {
			c.log().Warn("archive chain's newest record is not signed by this writer's key: passed over", "key", key)
			// Another install of the same name, with a key of its own,
			// says so in the record (what it says is not trusted, but a
			// chain it writes is not this cluster's to share).
			if other, err := Decode(raw); err == nil && other.Cluster.UID != "" && other.Cluster.UID != rec.Cluster.UID {
				return Appended{}, other.Cluster.UID, nil
			}
		}
		if !trusted {
			continue
		}
		if r.Seq != seq || r.Cluster.Name != rec.Cluster.Name || r.Drill != rec.Drill {
			continue // a copy of a record at another place is not a record of this one
		}
		if owner == "" {
			owner = r.Cluster.UID
		}
		recent := seq == h.Seq || (!o.Since.IsZero() && !r.ArchivedAt.Before(o.Since))
		if o.Same != nil && recent && o.Same(r) {
			return Appended{Key: key, Digest: Digest(raw), Seq: seq, Existing: true}, owner, nil
		}
		if !recent || o.Same == nil || o.Since.IsZero() {
			return Appended{}, owner, nil // older records were written before the run finished
		}
	}
	return Appended{}, owner, nil
}

// Probe learns whether the store refuses to overwrite an object: it
// creates the cluster's probe object, and again; the second create must
// be refused. The probe object is kept (one per cluster).
func (c *Chain) Probe(ctx context.Context, cluster string) error {
	key := c.Layout.ProbeKey(cluster)
	body, err := json.Marshal(map[string]string{"probe": "drillbot creates this object twice: the second create must be refused", "cluster": cluster})
	if err != nil {
		return err
	}
	for i := 0; i < 2; i++ {
		err := c.Store.Create(ctx, key, body, time.Time{})
		if errors.Is(err, ErrExists) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("probe %s: %w", key, err)
		}
	}
	return fmt.Errorf("probe %s created twice: %w", key, ErrOverwrites)
}
