package evidence

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Chain appends records to the per-drill chains of an archive.
type Chain struct {
	Store  Store
	Layout Layout
	Signer *Signer
	// Retention is how long a record is retained under Object Lock (zero:
	// no retention is asked for).
	Retention time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Head is the newest record of a chain.
type Head struct {
	Seq    int64
	Digest string
	Key    string
	Record Record
	// Raw is the envelope as stored.
	Raw []byte
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
	}
	if h.Seq == 0 {
		return h, nil
	}
	raw, err := c.Store.Get(ctx, h.Key)
	if err != nil {
		return Head{}, err
	}
	h.Raw, h.Digest = raw, Digest(raw)
	if h.Record, err = Decode(raw); err != nil {
		return Head{}, fmt.Errorf("%s: %w", h.Key, err)
	}
	return h, nil
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

// Append seals rec as the next record of its chain (Seq, Prev and
// ArchivedAt are set here) and creates it. Two writers racing for one
// place: the store refuses the second (conditional create), which reads
// the chain again and takes the next place. same, when set, says whether
// the head is rec already (written by an attempt whose success was lost):
// then nothing is written and the head is returned.
func (c *Chain) Append(ctx context.Context, rec Record, same func(Record) bool) (Appended, error) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	for attempt := 0; attempt < 5; attempt++ {
		h, err := c.Head(ctx, rec.Cluster.Name, rec.Drill)
		if err != nil {
			return Appended{}, fmt.Errorf("read chain %s/%s: %w", rec.Cluster.Name, rec.Drill, err)
		}
		if h.Seq > 0 && same != nil && same(h.Record) {
			return Appended{Key: h.Key, Digest: h.Digest, Seq: h.Seq, Existing: true}, nil
		}
		rec.Seq, rec.Prev, rec.ArchivedAt = h.Seq+1, h.Digest, now().UTC()
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
		return Appended{Key: key, Digest: Digest(env), Seq: rec.Seq}, nil
	}
	return Appended{}, fmt.Errorf("chain %s/%s: every place taken by other writers after 5 attempts", rec.Cluster.Name, rec.Drill)
}
