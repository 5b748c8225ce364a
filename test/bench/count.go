package bench

import (
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"k8s.io/client-go/rest"
)

// Counter counts the requests a client makes and the response bytes it
// reads, by wrapping its transport.
type Counter struct {
	requests atomic.Int64
	bytes    atomic.Int64
	mu       sync.Mutex
	byVerb   map[string]int64
}

// Config returns a copy of cfg whose requests c counts.
func (c *Counter) Config(cfg *rest.Config) *rest.Config {
	out := rest.CopyConfig(cfg)
	out.Wrap(func(rt http.RoundTripper) http.RoundTripper { return &countingRT{rt: rt, c: c} })
	return out
}

// Requests is the number of requests so far.
func (c *Counter) Requests() int64 { return c.requests.Load() }

// Bytes is the number of response body bytes read so far.
func (c *Counter) Bytes() int64 { return c.bytes.Load() }

// ByMethod is the number of requests per HTTP method.
func (c *Counter) ByMethod() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.byVerb))
	for k, v := range c.byVerb {
		out[k] = v
	}
	return out
}

// Reset zeroes the counts.
func (c *Counter) Reset() {
	c.requests.Store(0)
	c.bytes.Store(0)
	c.mu.Lock()
	c.byVerb = nil
	c.mu.Unlock()
}

type countingRT struct {
	rt http.RoundTripper
	c  *Counter
}

func (t *countingRT) RoundTrip(req *http.Request) (*http.Response, error) {
	t.c.requests.Add(1)
	t.c.mu.Lock()
	if t.c.byVerb == nil {
		t.c.byVerb = map[string]int64{}
	}
	t.c.byVerb[req.Method]++
	t.c.mu.Unlock()
	resp, err := t.rt.RoundTrip(req)
	if resp != nil && resp.Body != nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &t.c.bytes}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}
