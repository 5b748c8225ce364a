package localcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// RequireEnv, when set, turns missing cluster binaries into a failure
// instead of a skip. make test sets it, so CI cannot pass by skipping.
const RequireEnv = "DRILLBOT_REQUIRE_CLUSTER"

// RunTests is a package's TestMain body for integration tests: it starts one
// local cluster, runs the tests, and stops it. Without the binaries the
// tests skip (see Require), unless RequireEnv is set.
func RunTests(m *testing.M, c **Cluster) int { return runTests(m, c, Config{}) }

// RunRealNodeTests is RunTests with a cluster whose node is real (see
// node.go): pods run. Only one package at a time may use it (one real node
// per machine).
func RunRealNodeTests(m *testing.M, c **Cluster) int { return runTests(m, c, Config{RealNode: true}) }

// RunNodeAgentTests is RunRealNodeTests with Velero's node-agent on the
// real node: backups can hold pod volumes' data.
func RunNodeAgentTests(m *testing.M, c **Cluster) int {
	return runTests(m, c, Config{RealNode: true, NodeAgent: true})
}

// RunCalicoTests is RunRealNodeTests with Calico enforcing NetworkPolicy
// on the real node (calico.go) instead of kube-router.
func RunCalicoTests(m *testing.M, c **Cluster) int {
	return runTests(m, c, Config{RealNode: true, Calico: true})
}

func runTests(m *testing.M, c **Cluster, cfg Config) int {
	bins, err := BinsFromEnv()
	if err != nil {
		if os.Getenv(RequireEnv) != "" {
			fmt.Fprintln(os.Stderr, "integration tests need the local cluster:", err)
			return 1
		}
		fmt.Fprintln(os.Stderr, "integration tests will skip:", err)
		return m.Run()
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if cfg.RealNode {
		lockCtx, cancelLock := context.WithTimeout(context.Background(), 20*time.Minute)
		unlock, err := LockRealNode(lockCtx)
		cancelLock()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer unlock()
	}
	// The start's own deadline counts from when the node is this
	// package's: waiting for another package's real node is not starting.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cfg.Bins, cfg.Logger = bins, log
	var dir string // the cluster's, kept when a test fails
	cl, err := startFresh(ctx, cfg, func() (string, error) {
		d, err := os.MkdirTemp("", "drillbot-cluster-")
		dir = d
		return d, err
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start local cluster:", err)
		return 1
	}
	*c = cl
	code := m.Run()
	cl.Stop()
	if cfg.RealNode {
		if left := NodeLeftovers(dir); len(left) > 0 {
			fmt.Fprintln(os.Stderr, "the real node left behind:", strings.Join(left, "; "))
			code = 1
		}
	}
	if code == 0 {
		_ = os.RemoveAll(dir)
	} else {
		fmt.Fprintln(os.Stderr, "local cluster logs kept in", dir+"/logs")
	}
	return code
}

// Require skips the test when no cluster was started.
func Require(t *testing.T, c *Cluster) {
	t.Helper()
	if c == nil {
		t.Skip("no local cluster (run through make test, or build it with make cluster-bins)")
	}
}

// WriteRecorder wraps a rest.Config so every request it sends is recorded:
// the mutating ones for tests that assert "refused with zero writes", all
// of them for the check that a run made only the calls its plan lists.
type WriteRecorder struct {
	mu       sync.Mutex
	requests []Request
}

// Request is one recorded request.
type Request struct {
	Method string
	URL    *url.URL
}

// Config returns a copy of cfg whose requests are recorded.
func (w *WriteRecorder) Config(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			w.mu.Lock()
			u := *r.URL
			w.requests = append(w.requests, Request{Method: r.Method, URL: &u})
			w.mu.Unlock()
			return rt.RoundTrip(r)
		})
	})
	return c
}

// Requests returns the requests recorded from the from-th on, and how many
// there are in all (the from of the next call).
func (w *WriteRecorder) Requests(from int) ([]Request, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Request(nil), w.requests[min(from, len(w.requests)):]...), len(w.requests)
}

// Writes returns the recorded writes ("METHOD path") whose path contains
// none of except.
func (w *WriteRecorder) Writes(except ...string) []string {
	reqs, _ := w.Requests(0)
	var out []string
next:
	for _, r := range reqs {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			continue
		}
		wr := r.Method + " " + r.URL.Path
		for _, e := range except {
			if strings.Contains(wr, e) {
				continue next
			}
		}
		out = append(out, wr)
	}
	return out
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// realNodeLock serializes the test packages that use the machine's one
// real node (go test runs packages in parallel).
var realNodeLock = filepath.Join(os.TempDir(), "drillbot-real-node.lock")

// LockRealNode waits until no other test process uses the real node, then
// takes the node over from the project's own demo cluster if make demo (or
// make cluster-up) left it running (stopping that cluster as make
// cluster-down does, and saying so on stderr), and returns the function
// that lets the next one in. A node of any other cluster is refused.
func LockRealNode(ctx context.Context) (func(), error) {
	f, err := os.OpenFile(realNodeLock, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", realNodeLock, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for the real node (%s): %w", realNodeLock, ctx.Err())
		case <-time.After(time.Second):
		}
	}
	if err := takeOverDemoNode(os.Stderr); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// Another starts one more kwok-only cluster for the test (a fleet's other
// member, a DR cluster), with its own control plane and Velero on free
// ports and its own S3 store unless cfg names one (S3URL, with
// ReadOnlyBSL for a DR cluster reading another's backups); it stops when
// the test ends.
func Another(t *testing.T, cfg ...Config) *Cluster {
	t.Helper()
	var o Config
	if len(cfg) > 0 {
		o = cfg[0]
	}
	bins, err := BinsFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	o.Bins, o.Logger = bins, log
	c, err := startFresh(ctx, o, func() (string, error) { return t.TempDir(), nil })
	if err != nil {
		t.Fatalf("start another local cluster: %v", err)
	}
	t.Cleanup(c.Stop)
	return c
}

// startFresh starts a cluster in dir(), and once more in a new dir() when
// a port it picked was taken by another process meanwhile.
func startFresh(ctx context.Context, cfg Config, dir func() (string, error)) (*Cluster, error) {
	var err error
	if cfg.Dir, err = dir(); err != nil {
		return nil, err
	}
	c, err := Start(ctx, cfg)
	if errors.Is(err, ErrPortTaken) {
		fmt.Fprintln(os.Stderr, "start local cluster again:", err)
		if cfg.Dir, err = dir(); err != nil {
			return nil, err
		}
		c, err = Start(ctx, cfg)
	}
	return c, err
}
