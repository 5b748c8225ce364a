package namespacerestore

// Review of the RPO-marker change (one labelled list for the opt-in, one
// server-side apply per stamp), written as the adversary would.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
)

// reviewNamespaces is every shape of namespace the opt-in must judge: each
// label value that is not exactly "true", both ways of terminating, the
// protected names (labelled), and names that differ only by case.
func reviewNamespaces() []runtime.Object {
	label := func(v string) map[string]string { return map[string]string{v1alpha1.LabelAllowDisaster: v} }
	gone := metav1.NewTime(time.Date(2026, 12, 6, 19, 0, 0, 0, time.UTC))
	objs := []runtime.Object{
		namespace("ok", label("true")),
		namespace("upper", label("True")),
		namespace("caps", label("TRUE")),
		namespace("false", label("false")),
		namespace("empty", label("")),
		namespace("yes", label("yes")),
		namespace("one", label("1")),
		namespace("unlabelled", nil),
		namespace("other-label", map[string]string{"drillbot.io/allow-disasters": "true", "allow-disaster": "true"}),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "phase-terminating", Labels: label("true")},
			Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "deleting", Labels: label("true"),
			DeletionTimestamp: &gone, Finalizers: []string{"example.com/hold"}}},
		namespace("shop", label("true")),
	}
	for _, p := range drill.SystemNamespaces {
		objs = append(objs, namespace(p, label("true")))
	}
	return objs
}

func reviewTargets() []string {
	t := []string{"ok", "upper", "caps", "false", "empty", "yes", "one", "unlabelled", "other-label",
		"phase-terminating", "deleting", "shop", "Shop", "SHOP", "missing", "", " shop", "shop "}
	return append(t, drill.SystemNamespaces...)
}

// TestReviewOptedInDecidesAsCheckOptIn: for every namespace shape, the one
// labelled list says yes exactly where CheckOptIn (the per-namespace GET)
// says yes, and a no is a refusal wherever CheckOptIn's is.
func TestReviewOptedInDecidesAsCheckOptIn(t *testing.T) {
	ctx := context.Background()
	c := fake.NewClientset(reviewNamespaces()...)
	targets := reviewTargets()
	got, err := OptedIn(ctx, c, targets, nil)
	if err != nil {
		t.Fatal(err)
	}
	var yes []string
	for _, ns := range targets {
		e, ok := got[ns]
		if !ok {
			t.Errorf("%q: no answer (a missing answer reads as opted in to a caller that indexes the map)", ns)
			continue
		}
		want := CheckOptIn(ctx, c, ns, nil)
		if ns == "" {
			// The GET of an empty name is a client error, not a
			// refusal; either way it is not a yes.
			if e == nil {
				t.Errorf("%q: opted in", ns)
			}
			continue
		}
		if (e == nil) != (want == nil) {
			t.Errorf("%q: OptedIn %v, CheckOptIn %v", ns, e, want)
		}
		if want != nil && engine.IsRefused(want) && !engine.IsRefused(e) {
			t.Errorf("%q: CheckOptIn refuses (%v) but OptedIn answers %v, not a refusal", ns, want, e)
		}
		if e == nil {
			yes = append(yes, ns)
		}
	}
	if !slices.Equal(yes, []string{"ok", "shop"}) {
		t.Errorf("opted in: %v, want [ok shop]", yes)
	}
}

// TestReviewOptedInRechecksWhatTheListReturns: the label selector is the
// server's filter, not the evidence. A list answer that ignores it (an
// aggregated or proxied API, a broken cache) must not opt anything in.
func TestReviewOptedInRechecksWhatTheListReturns(t *testing.T) {
	c := fake.NewClientset()
	all := &corev1.NamespaceList{Items: []corev1.Namespace{
		*namespace("unlabelled", nil),
		*namespace("upper", map[string]string{v1alpha1.LabelAllowDisaster: "True"}),
		{ObjectMeta: metav1.ObjectMeta{Name: "terminating", Labels: map[string]string{v1alpha1.LabelAllowDisaster: "true"}},
			Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}},
		*namespace("kube-system", map[string]string{v1alpha1.LabelAllowDisaster: "true"}),
		*namespace("ok", map[string]string{v1alpha1.LabelAllowDisaster: "true"}),
	}}
	var selector string
	c.PrependReactor("list", "namespaces", func(a k8stesting.Action) (bool, runtime.Object, error) {
		selector = a.(k8stesting.ListAction).GetListRestrictions().Labels.String()
		return true, all, nil
	})
	got, err := OptedIn(context.Background(), c, []string{"unlabelled", "upper", "terminating", "kube-system", "ok"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if selector != v1alpha1.LabelAllowDisaster+"=true" {
		t.Errorf("selector %q, want %s=true", selector, v1alpha1.LabelAllowDisaster)
	}
	for ns, e := range got {
		if (e == nil) != (ns == "ok") {
			t.Errorf("%s: %v", ns, e)
		}
	}
}

// TestReviewOptedInListErrorIsNoAnswer: a failed list (403, 5xx, timeout)
// is "unknown" for every target, never a set of refusals nor of yeses.
func TestReviewOptedInListErrorIsNoAnswer(t *testing.T) {
	for _, fail := range []error{
		apierrors.NewForbidden(corev1.Resource("namespaces"), "", errors.New("rbac")),
		apierrors.NewInternalError(errors.New("etcd")),
		context.DeadlineExceeded,
	} {
		c := fake.NewClientset(optedIn("ok"))
		c.PrependReactor("list", "namespaces", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, fail })
		got, err := OptedIn(context.Background(), c, []string{"ok"}, nil)
		if err == nil || got != nil {
			t.Errorf("%v: answered %v, %v; want no map and the error", fail, got, err)
		}
	}
}

// markerManagers returns the managers of the marker's data.timestamp.
func markerOwners(t *testing.T, cm *corev1.ConfigMap) []string {
	t.Helper()
	var out []string
	for _, m := range cm.ManagedFields {
		if m.FieldsV1 == nil {
			continue
		}
		var f map[string]any
		if err := json.Unmarshal(m.FieldsV1.Raw, &f); err != nil {
			t.Fatal(err)
		}
		if d, ok := f["f:data"].(map[string]any); ok {
			if _, ok := d["f:"+MarkerKey]; ok {
				out = append(out, m.Manager+"/"+string(m.Operation))
			}
		}
	}
	return out
}

// TestReviewTouchMarkerStampsARestoredMarkerOwnedByOthers: a marker
// restored from a backup carries Velero's labels and other managers'
// fields (an Update and a conflicting Apply). The forced apply reports
// success only when the stored bytes are the new time; Velero's labels
// stay (the inventory tells restored objects by them).
func TestReviewTouchMarkerStampsARestoredMarkerOwnedByOthers(t *testing.T) {
	ctx := context.Background()
	c := fake.NewClientset(optedIn("shop"))
	old := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	cms := c.CoreV1().ConfigMaps("shop")
	// Velero re-creates the restored marker (an Update-operation owner).
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: MarkerName, Namespace: "shop",
		Labels: map[string]string{"velero.io/restore-name": "r1", "velero.io/backup-name": "b1", "app.kubernetes.io/managed-by": "someone"}},
		Data: map[string]string{MarkerKey: old.Format(time.RFC3339Nano), "note": "kept"}},
		metav1.CreateOptions{FieldManager: "velero-server"}); err != nil {
		t.Fatal(err)
	}
	// Another applier claims the timestamp: a non-forced apply would conflict.
	if _, err := cms.Apply(ctx, corev1ac.ConfigMap(MarkerName, "shop").WithData(map[string]string{MarkerKey: old.Add(time.Hour).Format(time.RFC3339Nano)}),
		metav1.ApplyOptions{FieldManager: "kubectl", Force: true}); err != nil {
		t.Fatal(err)
	}
	for i, now := range []time.Time{time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC), time.Date(2026, 12, 6, 20, 1, 0, 123456789, time.FixedZone("CET", 3600))} {
		c.ClearActions()
		if err := TouchMarker(ctx, c, "shop", now); err != nil {
			t.Fatalf("stamp %d: %v", i, err)
		}
		acts := c.Actions()
		if len(acts) != 1 {
			t.Fatalf("stamp %d: %d requests, want one apply: %v", i, len(acts), acts)
		}
		p, ok := acts[0].(k8stesting.PatchAction)
		if !ok || p.GetPatchType() != types.ApplyPatchType || p.GetName() != MarkerName || p.GetNamespace() != "shop" {
			t.Fatalf("stamp %d: %#v, want a server-side apply of %s/%s", i, acts[0], "shop", MarkerName)
		}
		cm, err := cms.Get(ctx, MarkerName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := cm.Data[MarkerKey], now.UTC().Format(time.RFC3339Nano); got != want {
			t.Errorf("stamp %d: marker holds %q, want %q (an apply that reported success changed nothing)", i, got, want)
		}
		if cm.Labels["velero.io/restore-name"] != "r1" || cm.Labels["app.kubernetes.io/managed-by"] != "drillbot" {
			t.Errorf("stamp %d: labels %v", i, cm.Labels)
		}
		if o := markerOwners(t, cm); !slices.Equal(o, []string{MarkerFieldManager + "/Apply"}) {
			t.Errorf("stamp %d: data.%s owned by %v, want only %s", i, MarkerKey, o, MarkerFieldManager)
		}
		if ts, err := time.Parse(time.RFC3339Nano, cm.Data[MarkerKey]); err != nil || !ts.Equal(now) {
			t.Errorf("stamp %d: marker %q does not parse back to %v: %v", i, cm.Data[MarkerKey], now, err)
		}
	}
}

// TestReviewTouchMarkerErrorIsReported: an apply the server refuses (a
// terminating namespace, an immutable marker, RBAC) is an error, never a
// silent success.
func TestReviewTouchMarkerErrorIsReported(t *testing.T) {
	c := fake.NewClientset(optedIn("shop"))
	c.PrependReactor("patch", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(corev1.Resource("namespaces"), "shop", errors.New("namespace shop is being terminated"))
	})
	if err := TouchMarker(context.Background(), c, "shop", time.Now()); err == nil {
		t.Fatal("a refused apply reported success")
	}
}

// reviewRBAC answers requests as the API server's RBAC would with the
// kind's grants: verb "patch" for an apply, plus "create" (with the name)
// when the apply creates the object.
func reviewRBAC(t *testing.T, c *fake.Clientset, grants []engine.Grant) *[]string {
	t.Helper()
	var denied []string
	allowed := func(verb, resource, ns, name string) bool {
		for _, g := range grants {
			if g.Namespace != "" && g.Namespace != ns {
				continue
			}
			r := g.Rule
			if !slices.Contains(r.APIGroups, "") || !slices.Contains(r.Resources, resource) || !slices.Contains(r.Verbs, verb) {
				continue
			}
			if len(r.ResourceNames) == 0 || (name != "" && slices.Contains(r.ResourceNames, name)) {
				return true
			}
		}
		return false
	}
	c.PrependReactor("*", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		name := ""
		if n, ok := a.(interface{ GetName() string }); ok {
			name = n.GetName()
		}
		res := a.GetResource().Resource
		deny := func(verb string) (bool, runtime.Object, error) {
			d := fmt.Sprintf("%s %s %s/%s", verb, res, a.GetNamespace(), name)
			denied = append(denied, d)
			return true, nil, apierrors.NewForbidden(a.GetResource().GroupResource(), name, errors.New(d))
		}
		if !allowed(a.GetVerb(), res, a.GetNamespace(), name) {
			return deny(a.GetVerb())
		}
		if p, ok := a.(k8stesting.PatchAction); ok && p.GetPatchType() == types.ApplyPatchType {
			if _, err := c.Tracker().Get(a.GetResource(), a.GetNamespace(), name); apierrors.IsNotFound(err) && !allowed("create", res, a.GetNamespace(), name) {
				return deny("create")
			}
		}
		return false, nil, nil
	})
	return &denied
}

// TestReviewMarkerGrantsCoverTheLoopAndTheDrill: with exactly the kind's
// grants (and nothing else), the daemon's opt-in list and the first and
// later stamps, and the drill's own stamp before its backup, are allowed;
// the old verb (update) is no longer granted; every request the code makes
// is a call of the plan.
func TestReviewMarkerGrantsCoverTheLoopAndTheDrill(t *testing.T) {
	ctx := context.Background()
	def := drill.Definition{Name: "nr", Spec: v1alpha1.DrillSpec{Scenario: Name, Target: v1alpha1.Target{Namespace: "shop"},
		Params: json.RawMessage(`{"backup":{"create":true}}`)}}
	grants := Kind{}.Permissions(def)
	for _, g := range grants {
		if slices.Contains(g.Rule.Resources, "configmaps") && slices.Contains(g.Rule.Verbs, "update") {
			t.Errorf("configmaps update still granted: %+v", g.Rule)
		}
		if slices.Contains(g.Rule.Resources, "namespaces") && g.Namespace == "" && len(g.Rule.ResourceNames) == 0 &&
			!slices.Equal(g.Rule.Verbs, []string{"list"}) {
			t.Errorf("namespaces granted cluster-wide beyond list: %+v", g.Rule)
		}
	}
	c := fake.NewClientset(optedIn("shop"), optedIn("cafe"))
	denied := reviewRBAC(t, c, grants)
	ok, err := OptedIn(ctx, c, []string{"shop"}, nil)
	if err != nil || ok["shop"] != nil {
		t.Fatalf("opt-in with the kind's grants: %v, %v", ok, err)
	}
	for i := range 2 { // the first stamp creates, the next patches
		if err := TouchMarker(ctx, c, "shop", time.Now()); err != nil {
			t.Fatalf("stamp %d with the kind's grants: %v", i, err)
		}
	}
	// Not a target: no grant lets the first stamp create a marker there.
	if err := TouchMarker(ctx, c, "cafe", time.Now()); err == nil {
		t.Errorf("created a marker in a namespace that is no target of the drill")
	}
	if len(*denied) != 1 {
		t.Errorf("denied %v, want only the create in cafe", *denied)
	}
	// Every request made is a planned call (Inject or BetweenRuns).
	calls := Kind{}.Calls(def)
	planned := func(verb, resource, ns string) bool {
		return slices.ContainsFunc(calls, func(c engine.Call) bool {
			return c.Verb == verb && c.Resource == resource && (c.Namespace == ns || c.Namespace == "") &&
				(c.Phase == engine.BetweenRuns || c.Phase == v1alpha1.PhaseInjecting)
		})
	}
	for _, a := range c.Actions() {
		if a.GetNamespace() == "cafe" {
			continue
		}
		if !planned(a.GetVerb(), a.GetResource().Resource, a.GetNamespace()) {
			t.Errorf("%s %s in %q: not in the plan", a.GetVerb(), a.GetResource().Resource, a.GetNamespace())
		}
	}
	for _, want := range []struct {
		phase          v1alpha1.Phase
		verb, resource string
	}{
		{engine.BetweenRuns, "list", "namespaces"}, {engine.BetweenRuns, "patch", "configmaps"}, {engine.BetweenRuns, "create", "configmaps"},
		{v1alpha1.PhaseInjecting, "patch", "configmaps"}, {v1alpha1.PhaseInjecting, "create", "configmaps"},
	} {
		if !slices.ContainsFunc(calls, func(c engine.Call) bool {
			return c.Phase == want.phase && c.Verb == want.verb && c.Resource == want.resource
		}) {
			t.Errorf("plan lacks %s %s %s", want.phase, want.verb, want.resource)
		}
		if slices.ContainsFunc(calls, func(c engine.Call) bool {
			return c.Phase == want.phase && c.Verb == "update" && c.Resource == "configmaps"
		}) {
			t.Errorf("plan still has %s update configmaps", want.phase)
		}
	}
}

// TestTargetIsNotTheVeleroNamespace: a drill whose target is its own Velero
// namespace does not load (the field named), so neither the drill nor the
// marker loop ever acts there.
func TestTargetIsNotTheVeleroNamespace(t *testing.T) {
	for _, tc := range []struct {
		target, params string
		ok             bool
	}{
		{"backups", `{"veleroNamespace":"backups","backup":{"schedule":"daily"}}`, false},
		{"velero", `{"backup":{"schedule":"daily"}}`, false},
		{"shop", `{"veleroNamespace":"backups","backup":{"schedule":"daily"}}`, true},
	} {
		spec := v1alpha1.DrillSpec{Scenario: Name, Target: v1alpha1.Target{Namespace: tc.target}, Params: json.RawMessage(tc.params),
			Objectives: v1alpha1.Objectives{RTO: "30m", RPO: "1h"}}
		errs := (Kind{}).ValidateParams(spec, field.NewPath("spec", "params"))
		if got := len(errs) == 0; got != tc.ok || (!tc.ok && !strings.Contains(errs.ToAggregate().Error(), "spec.target.namespace")) {
			t.Errorf("target %s, params %s: %v", tc.target, tc.params, errs)
		}
	}
}
