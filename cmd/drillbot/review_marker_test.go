package main

// Review of the RPO-marker loop change (one labelled list for the opt-in,
// one server-side apply per stamp), written as the adversary would.

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
)

func reviewNS(name string, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

func reviewOptIn(v string) map[string]string {
	return map[string]string{v1alpha1.LabelAllowDisaster: v}
}

func reviewRun(name, ns string, phase v1alpha1.Phase) v1alpha1.DrillRun {
	return v1alpha1.DrillRun{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:   v1alpha1.DrillRunSpec{Snapshot: v1alpha1.DrillSpec{Target: v1alpha1.Target{Namespace: ns}}},
		Status: v1alpha1.DrillRunStatus{Phase: phase}}
}

// reviewWrites are the namespaces of every request that is not a read.
func reviewWrites(t *testing.T, c *kubefake.Clientset) []string {
	t.Helper()
	var w []string
	for _, a := range c.Actions() {
		switch a.GetVerb() {
		case "get", "list", "watch":
		default:
			if a.GetResource().Resource != "configmaps" {
				t.Errorf("%s %s: the loop writes markers only", a.GetVerb(), a.GetResource().Resource)
			}
			w = append(w, a.GetNamespace())
		}
	}
	slices.Sort(w)
	return w
}

// TestReviewStampMarkersStampsOnlyWhatTheOldCheckAllowed: the loop writes
// in exactly the targets that CheckOptIn (the old per-namespace GET)
// accepts and no unfinished run of any phase or kind holds; a Completed run
// holds nothing. Label values other than "true", both ways of terminating,
// missing namespaces, names differing by case and the protected names
// (labelled) are never written to.
func TestReviewStampMarkersStampsOnlyWhatTheOldCheckAllowed(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)
	gone := metav1.NewTime(now.Add(-time.Hour))
	objs := []runtime.Object{
		reviewNS("ok", reviewOptIn("true")),
		reviewNS("upper", reviewOptIn("True")),
		reviewNS("empty", reviewOptIn("")),
		reviewNS("false", reviewOptIn("false")),
		reviewNS("bare", nil),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "terminating", Labels: reviewOptIn("true")},
			Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "deleting", Labels: reviewOptIn("true"), DeletionTimestamp: &gone, Finalizers: []string{"example.com/hold"}}},
		reviewNS("shop", reviewOptIn("true")),
		reviewNS("cafe", reviewOptIn("true")),
		reviewNS("bar", reviewOptIn("true")),
		reviewNS("inn", reviewOptIn("true")),
		reviewNS("pub", reviewOptIn("true")),
		reviewNS("done", reviewOptIn("true")),
	}
	targets := []string{"ok", "upper", "empty", "false", "bare", "terminating", "deleting", "shop", "cafe", "bar", "inn", "pub", "done", "Ok", "OK", "missing"}
	for _, p := range drill.SystemNamespaces {
		objs = append(objs, reviewNS(p, reviewOptIn("true")))
		targets = append(targets, p)
	}
	runs := []v1alpha1.DrillRun{
		reviewRun("shop-1", "shop", ""), // just created, no phase yet
		reviewRun("cafe-1", "cafe", v1alpha1.PhasePending),
		reviewRun("bar-1", "bar", v1alpha1.PhaseVerifying),
		reviewRun("inn-1", "inn", v1alpha1.PhaseRevertFailed),
		reviewRun("pub-1", "pub", v1alpha1.PhaseReverting),
		reviewRun("done-1", "done", v1alpha1.PhaseCompleted), // not open: engine.OpenRuns never returns it; kept here to pin the key
	}
	open := func(context.Context) ([]v1alpha1.DrillRun, error) {
		var out []v1alpha1.DrillRun
		for _, r := range runs {
			if r.Status.Phase != v1alpha1.PhaseCompleted {
				out = append(out, r)
			}
		}
		return out, nil
	}
	c := kubefake.NewClientset(objs...)
	var want []string
	held := map[string]bool{}
	rs, _ := open(ctx)
	for _, r := range rs {
		held[r.Spec.Snapshot.Target.Namespace] = true
	}
	for _, ns := range targets {
		if namespacerestore.CheckOptIn(ctx, c, ns, nil) == nil && !held[ns] {
			want = append(want, ns)
		}
	}
	slices.Sort(want)
	if !slices.Equal(want, []string{"done", "ok"}) {
		t.Fatalf("test setup: the old check allows %v", want)
	}
	c.ClearActions()
	stampMarkers(ctx, c, open, targets, nil, now, slog.New(slog.DiscardHandler))
	if got := reviewWrites(t, c); !slices.Equal(got, want) {
		t.Errorf("stamped %v, want %v (what CheckOptIn accepts and no open run holds)", got, want)
	}
	for _, ns := range want {
		cm, err := c.CoreV1().ConfigMaps(ns).Get(ctx, namespacerestore.MarkerName, metav1.GetOptions{})
		if err != nil || cm.Data[namespacerestore.MarkerKey] != now.Format(time.RFC3339Nano) {
			t.Errorf("marker in %s: %v, %v", ns, cm, err)
		}
	}
}

// TestReviewStampMarkersNeverTouchesARestoredMarkerOfAnOpenRun: Velero has
// restored shop and its run is verifying; the restored marker (the RPO
// evidence) must keep its bytes and resourceVersion through many ticks,
// whatever happens to the other targets.
func TestReviewStampMarkersNeverTouchesARestoredMarkerOfAnOpenRun(t *testing.T) {
	ctx := context.Background()
	restored := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: namespacerestore.MarkerName, Namespace: "shop",
		Labels: map[string]string{"velero.io/restore-name": "shop-restore-1"}},
		Data: map[string]string{namespacerestore.MarkerKey: "2026-12-06T18:00:00Z"}}
	c := kubefake.NewClientset(reviewNS("shop", reviewOptIn("true")), reviewNS("cafe", reviewOptIn("true")), restored)
	before, err := c.CoreV1().ConfigMaps("shop").Get(ctx, namespacerestore.MarkerName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, phase := range []v1alpha1.Phase{v1alpha1.PhaseRecovering, v1alpha1.PhaseVerifying, v1alpha1.PhaseReverting, v1alpha1.PhaseRevertFailed} {
		open := func(context.Context) ([]v1alpha1.DrillRun, error) {
			return []v1alpha1.DrillRun{reviewRun("shop-restore-1", "shop", phase)}, nil
		}
		for i := range 3 {
			stampMarkers(ctx, c, open, []string{"shop", "cafe"}, nil, time.Date(2026, 12, 6, 20, i, 0, 0, time.UTC), slog.New(slog.DiscardHandler))
		}
	}
	after, err := c.CoreV1().ConfigMaps("shop").Get(ctx, namespacerestore.MarkerName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != before.ResourceVersion || after.Data[namespacerestore.MarkerKey] != "2026-12-06T18:00:00Z" {
		t.Errorf("restored marker changed while its run was open: %v -> %v", before, after)
	}
	for _, a := range c.Actions() {
		if a.GetNamespace() == "shop" && a.GetVerb() != "get" {
			t.Errorf("%s in shop while a run holds it", a.GetVerb())
		}
	}
}

// TestReviewStampMarkersUnknownOptInStampsNothing: when the opted-in list
// cannot be read (RBAC not yet updated on upgrade: list namespaces denied;
// a 5xx), nothing is stamped, not even in targets that were opted in.
func TestReviewStampMarkersUnknownOptInStampsNothing(t *testing.T) {
	for _, fail := range []error{
		apierrors.NewForbidden(corev1.Resource("namespaces"), "", errors.New("cannot list resource \"namespaces\" at the cluster scope")),
		apierrors.NewServiceUnavailable("etcd"),
	} {
		c := kubefake.NewClientset(reviewNS("shop", reviewOptIn("true")))
		c.PrependReactor("list", "namespaces", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, fail })
		stampMarkers(context.Background(), c, func(context.Context) ([]v1alpha1.DrillRun, error) { return nil, nil },
			[]string{"shop"}, nil, time.Now(), slog.New(slog.DiscardHandler))
		if w := reviewWrites(t, c); len(w) != 0 {
			t.Errorf("%v: stamped %v with the opt-in unknown", fail, w)
		}
	}
}

// TestReviewMarkerLoopSparesTheDrillsVeleroNamespace: the drill's own
// opt-in check (Preflight) protects its Velero namespace
// (params.veleroNamespace) even when labelled; the daemon's marker loop
// must not write where the drill itself refuses to act.
func TestReviewMarkerLoopSparesTheDrillsVeleroNamespace(t *testing.T) {
	def := drill.Definition{Name: "nr", Spec: v1alpha1.DrillSpec{Scenario: namespacerestore.Name,
		Target: v1alpha1.Target{Namespace: "backups"}, Params: json.RawMessage(`{"veleroNamespace":"backups","backup":{"schedule":"daily"}}`)}}
	c := kubefake.NewClientset(reviewNS("backups", reviewOptIn("true")))
	if err := namespacerestore.CheckOptIn(context.Background(), c, "backups", []string{"backups"}); err == nil {
		t.Fatal("test setup: the drill's check accepts its Velero namespace")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // one tick, then markerLoop returns
	c.ClearActions()
	markerLoop(ctx, c, func(context.Context) ([]v1alpha1.DrillRun, error) { return nil, nil }, []drill.Definition{def}, nil, time.Hour, slog.New(slog.DiscardHandler))
	if w := reviewWrites(t, c); len(w) != 0 {
		t.Errorf("stamped a marker in %v: the drill's Velero namespace, which its Preflight refuses as protected", w)
	}
}
