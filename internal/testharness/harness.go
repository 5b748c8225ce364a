// Package testharness is the drillbot that integration tests run: the real
// scenario registry and engine against the local cluster, with every
// mutating request recorded, Events on DrillRuns, and logs in the test log.
package testharness

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/app"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/kube"
	"github.com/drillbot-io/drillbot/internal/localcluster"
	"github.com/drillbot-io/drillbot/internal/scenarios"
)

// RunNamespace is where the harness records DrillRuns.
const RunNamespace = "drillbot-system"

// Harness is one test's drillbot.
type Harness struct {
	T       *testing.T
	Clients *kube.Clients
	Writes  *localcluster.WriteRecorder
	Engine  *engine.Engine
	Store   *engine.KubeStore
}

// New builds a harness on cluster with the production wiring (app.New);
// it skips the test when there is no cluster.
func New(t *testing.T, cluster *localcluster.Cluster) *Harness {
	t.Helper()
	localcluster.Require(t, cluster)
	w := &localcluster.WriteRecorder{}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	// The CRD and namespace are set up before recording starts, so the
	// recorder sees only what drills write.
	if _, err := app.New(context.Background(), cluster.REST, app.Options{Namespace: RunNamespace}); err != nil {
		t.Fatal(err)
	}
	a, err := app.New(context.Background(), w.Config(cluster.REST), app.Options{Namespace: RunNamespace, Logger: log, Holder: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		a.Close(ctx)
	})
	return &Harness{T: t, Clients: a.Clients, Writes: w, Engine: a.Engine, Store: a.Store}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// Drill parses a drill document through the real loader, as drillbot would.
func (h *Harness) Drill(doc string) drill.Definition {
	h.T.Helper()
	defs, err := drill.Parse(h.T.Name()+".yaml", []byte(doc), scenarios.Registry(scenarios.Deps{}))
	if err != nil {
		h.T.Fatal(err)
	}
	return defs[0]
}

// Run runs a drill and returns the DrillRun as the cluster holds it.
func (h *Harness) Run(def drill.Definition) *v1alpha1.DrillRun {
	h.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	run, err := h.Engine.Run(ctx, def, "test")
	if err != nil {
		h.T.Fatal(err)
	}
	stored, err := h.Store.Get(ctx, run.Name)
	if err != nil {
		h.T.Fatal(err)
	}
	h.T.Logf("run %s: %s %s (RTO %s, RPO %s from %s)", stored.Name, stored.Status.Verdict, stored.Status.Reason,
		stored.Status.RTO, stored.Status.RPO, stored.Status.RPOSource)
	return stored
}

// Namespace creates a namespace with labels, deleted when the test ends.
func Namespace(t *testing.T, c *localcluster.Cluster, name string, labels map[string]string) *corev1.Namespace {
	t.Helper()
	created, err := c.Kube.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Kube.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{}) })
	return created
}

// TargetWrites are the mutating requests the drills sent, less drillbot's
// own records (DrillRuns and their Events in RunNamespace).
func (h *Harness) TargetWrites() []string {
	return h.Writes.Writes("/drillruns", "/namespaces/"+RunNamespace+"/events")
}
