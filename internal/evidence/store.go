package evidence

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrExists is returned by Create when the object exists: records are
// never overwritten.
var ErrExists = errors.New("object exists: records are never overwritten")

// ErrNotFound is returned by Get for an object that does not exist.
var ErrNotFound = errors.New("no such object")

// Store is an object store that creates objects only once.
type Store interface {
	// Create writes body under key unless an object is there (ErrExists),
	// retained until retainUntil where the store supports retention.
	Create(ctx context.Context, key string, body []byte, retainUntil time.Time) error
	// Get reads an object (ErrNotFound when absent).
	Get(ctx context.Context, key string) ([]byte, error)
	// List names the objects under prefix, in key order.
	List(ctx context.Context, prefix string) ([]string, error)
	// Describe says where the store is and what it guarantees, for
	// reports (e.g. "s3://bucket/prefix (object lock: COMPLIANCE)").
	Describe() string
}

// MemStore is a Store in memory, for tests. Its objects can be changed
// and deleted behind its back (Tamper, Remove), as an adversary with
// access to the bucket could: with Versioning, as on a bucket with Object
// Lock (a new version, a delete marker; the first version stays), without
// it, for good.
type MemStore struct {
	mu      sync.Mutex
	objects map[string][]memVersion
	// Fail, when set, is returned by every call.
	Fail error
	// Versioning keeps every version (see Versioned).
	Versioning bool
}

type memVersion struct {
	body    []byte
	deleted bool
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{objects: map[string][]memVersion{}} }

func (m *MemStore) current(key string) ([]byte, bool) {
	vs := m.objects[key]
	if len(vs) == 0 || vs[len(vs)-1].deleted {
		return nil, false
	}
	return vs[len(vs)-1].body, true
}

// Create implements Store.
func (m *MemStore) Create(_ context.Context, key string, body []byte, _ time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return m.Fail
	}
	if _, ok := m.current(key); ok {
		return ErrExists
	}
	m.objects[key] = append(m.objects[key], memVersion{body: append([]byte(nil), body...)})
	return nil
}

// Get implements Store.
func (m *MemStore) Get(_ context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return nil, m.Fail
	}
	b, ok := m.current(key)
	if !ok {
		return nil, ErrNotFound
	}
	return append([]byte(nil), b...), nil
}

// List implements Store.
func (m *MemStore) List(_ context.Context, prefix string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return nil, m.Fail
	}
	var keys []string
	for k := range m.objects {
		if _, ok := m.current(k); ok && strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys, nil
}

// Describe implements Store.
func (m *MemStore) Describe() string { return "memory" }

// Versions implements Versioned.
func (m *MemStore) Versions(_ context.Context, prefix string) (map[string][]Version, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.Versioning {
		return nil, false, nil
	}
	out := map[string][]Version{}
	for k, vs := range m.objects {
		if strings.HasPrefix(k, prefix) {
			for i, v := range vs {
				out[k] = append(out[k], Version{ID: strconv.Itoa(i), DeleteMarker: v.deleted})
			}
		}
	}
	return out, true, nil
}

// GetVersion implements Versioned.
func (m *MemStore) GetVersion(_ context.Context, key, version string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i, err := strconv.Atoi(version)
	vs := m.objects[key]
	if err != nil || i < 0 || i >= len(vs) || vs[i].deleted {
		return nil, ErrNotFound
	}
	return append([]byte(nil), vs[i].body...), nil
}

// Tamper replaces an object's bytes (a new version, with Versioning).
func (m *MemStore) Tamper(key string, body []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.Versioning {
		m.objects[key] = nil
	}
	m.objects[key] = append(m.objects[key], memVersion{body: body})
}

// Remove deletes an object (a delete marker, with Versioning).
func (m *MemStore) Remove(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.Versioning {
		delete(m.objects, key)
		return
	}
	m.objects[key] = append(m.objects[key], memVersion{deleted: true})
}

// Versioned is a Store that keeps every version of its objects (a bucket
// with versioning, as Object Lock has): verify reads each record's first
// version, the one drillbot wrote, and names every later one.
type Versioned interface {
	// Versions lists the versions of the objects under prefix, per key,
	// oldest first; ok is false when the store keeps no versions.
	Versions(ctx context.Context, prefix string) (versions map[string][]Version, ok bool, err error)
	// GetVersion reads one version of an object.
	GetVersion(ctx context.Context, key, version string) ([]byte, error)
}

// Version is one version of an object: its id, and whether it is a
// delete marker (the object was deleted; earlier versions remain).
type Version struct {
	ID           string
	DeleteMarker bool
}
