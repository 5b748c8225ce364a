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
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/kube"
	"github.com/drillbot-io/drillbot/internal/localcluster"
	"github.com/drillbot-io/drillbot/internal/notify"
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

// New builds a harness on cluster; it skips the test when there is none.
func New(t *testing.T, cluster *localcluster.Cluster) *Harness {
	t.Helper()
	localcluster.Require(t, cluster)
	ctx := context.Background()
	if err := kube.EnsureCRD(ctx, cluster.REST, v1alpha1.DrillRunCRD); err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: RunNamespace}}
	if _, err := cluster.Kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	w := &localcluster.WriteRecorder{}
	clients, err := kube.NewClients(w.Config(cluster.REST))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	kinds := scenarios.Registry(scenarios.Deps{Clients: clients, Clock: clock.RealClock{}, Logger: log, Protected: []string{RunNamespace}})
	store := &engine.KubeStore{Client: clients.Dynamic, Namespace: RunNamespace}
	recorder, stop := notify.NewEventRecorder(cluster.Kube)
	t.Cleanup(stop)
	return &Harness{T: t, Clients: clients, Writes: w, Store: store,
		Engine: engine.New(engine.Config{Store: store, Kinds: kinds, Logger: log, Holder: t.Name(),
			Observers: []engine.Observer{notify.Events{Recorder: recorder}}})}
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
