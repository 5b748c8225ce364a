package plan_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/drillbot-io/drillbot/internal/alerts"
	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/kube"
	"github.com/drillbot-io/drillbot/internal/plan"
	"github.com/drillbot-io/drillbot/internal/scenarios"
)

const podKill = `apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata: {name: kill-web}
spec:
  scenario: pod-kill
  objectives: {rto: 5m}
  target: {namespace: shop, selector: {app: web}}
`

type halted bool

func (h halted) Halted(context.Context) (string, bool, error) { return "change freeze", bool(h), nil }

// cluster is a namespace shop (opted in or not) with a Deployment whose two
// pods are Ready.
func cluster(optIn bool) *fake.Clientset {
	labels := map[string]string{}
	if optIn {
		labels[v1alpha1.LabelAllowDisaster] = "true"
	}
	objs := []runtime.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: labels}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2)},
			Status: appsv1.DeploymentStatus{Replicas: 2, ReadyReplicas: 2, UpdatedReplicas: 2, AvailableReplicas: 2}},
	}
	for _, n := range []string{"web-a", "web-b"} {
		objs = append(objs, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: n, Namespace: "shop", Labels: map[string]string{"app": "web"},
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web-1", Controller: ptr.To(true)}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}})
	}
	return fake.NewClientset(objs...)
}

// denying answers SubjectAccessReviews: allowed unless verb and resource
// are in deny ("delete pods").
func denying(c *fake.Clientset, deny ...string) {
	c.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		sar := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview)
		ra := sar.Spec.ResourceAttributes
		for _, d := range deny {
			if d == ra.Verb+" "+ra.Resource {
				sar.Status = authorizationv1.SubjectAccessReviewStatus{Allowed: false, Reason: "no RBAC policy matched"}
				return true, sar, nil
			}
		}
		sar.Status = authorizationv1.SubjectAccessReviewStatus{Allowed: true, Reason: "RBAC: allowed"}
		return true, sar, nil
	})
}

type frozen struct{}

func (frozen) Frozen(t time.Time) (string, time.Time, bool) {
	return "year-end", time.Date(2027, 1, 4, 0, 0, 0, 0, time.UTC), true
}

type firing struct{}

func (firing) Active(context.Context) ([]alerts.Alert, error) {
	return []alerts.Alert{{Name: "EtcdDown", Labels: map[string]string{"alertname": "EtcdDown", "severity": "critical"}}}, nil
}

func mustMatchers(t *testing.T, s string) alerts.Matchers {
	m, err := alerts.ParseMatchers(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestBuild(t *testing.T) {
	cases := []struct {
		name        string
		optIn       bool
		halted      bool
		start       *engine.StartConditions
		scheduled   bool
		deny        []string
		wantVerdict plan.Verdict
		want        []string // in the table output
	}{
		{name: "would run", optIn: true, wantVerdict: plan.WouldRun,
			want: []string{"2 pods matching app=web in shop would be deleted: web-a, web-b", "delete", "pods in shop", "THE FAULT"}},
		{name: "not opted in", wantVerdict: plan.WouldBeRefused, want: []string{"lacks the label drillbot.io/allow-disaster=true"}},
		{name: "halted", optIn: true, halted: true, wantVerdict: plan.WouldBeRefused, want: []string{"drillbot is halted (change freeze)"}},
		{name: "on demand in a freeze window", optIn: true, start: &engine.StartConditions{Freeze: frozen{}}, wantVerdict: plan.WouldRun},
		{name: "scheduled, in a freeze window", optIn: true, scheduled: true, start: &engine.StartConditions{Freeze: frozen{}}, wantVerdict: plan.WouldNotStart,
			want: []string{"not started: freeze window year-end (until 2027-01-04T00:00:00Z)"}},
		{name: "a stop condition's alert active", optIn: true, wantVerdict: plan.WouldNotStart,
			start: &engine.StartConditions{Alerts: firing{}, StopWhen: []alerts.Matchers{mustMatchers(t, `{severity="critical"}`)}},
			want:  []string{`not started: alert EtcdDown{severity="critical"} firing`}},
		{name: "service account may not delete pods", optIn: true, deny: []string{"delete pods"}, wantVerdict: plan.MissingPermissions,
			want: []string{"DENIED: delete pods in shop for system:serviceaccount:drillbot-system:drillbot: no RBAC policy matched"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := cluster(tc.optIn)
			denying(c, tc.deny...)
			doc := podKill
			if tc.scheduled {
				doc = strings.Replace(doc, "  scenario: pod-kill\n", "  scenario: pod-kill\n  schedule: \"@monthly\"\n", 1)
			}
			defs, err := drill.Parse("kill-web.yaml", []byte(doc), scenarios.Registry(scenarios.Deps{}))
			if err != nil {
				t.Fatal(err)
			}
			cfg := plan.Config{Kinds: scenarios.Registry(scenarios.Deps{Clients: &kube.Clients{Kube: c}}), Namespace: ns,
				Reviewer: plan.SAR{Kube: c}, Halt: halted(tc.halted), Start: tc.start,
				Now: func() time.Time { return time.Date(2026, 12, 24, 0, 0, 0, 0, time.UTC) }}

			p, err := plan.Build(context.Background(), cfg, defs[0], plan.ServiceAccount(ns, "drillbot"))
			if err != nil {
				t.Fatal(err)
			}

			var out bytes.Buffer
			if err := plan.Write(&out, p, "table"); err != nil {
				t.Fatal(err)
			}
			if p.Verdict != tc.wantVerdict || p.OK() != (tc.wantVerdict == plan.WouldRun) {
				t.Errorf("verdict %s, want %s\n%s", p.Verdict, tc.wantVerdict, out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			if p.Denied != len(tc.deny) {
				t.Errorf("%d calls denied, want %d", p.Denied, len(tc.deny))
			}
			// Zero writes: only reads and SubjectAccessReviews (which
			// persist nothing).
			for _, a := range c.Actions() {
				switch a.GetVerb() {
				case "get", "list", "watch":
				case "create":
					if a.GetResource().Resource != "subjectaccessreviews" {
						t.Errorf("plan wrote: %s %s", a.GetVerb(), a.GetResource().Resource)
					}
				default:
					t.Errorf("plan wrote: %s %s", a.GetVerb(), a.GetResource().Resource)
				}
			}
		})
	}
}

func TestOutputs(t *testing.T) {
	c := cluster(true)
	denying(c)
	defs, err := drill.Parse("kill-web.yaml", []byte(podKill), scenarios.Registry(scenarios.Deps{}))
	if err != nil {
		t.Fatal(err)
	}
	cfg := plan.Config{Kinds: scenarios.Registry(scenarios.Deps{Clients: &kube.Clients{Kube: c}}), Namespace: ns, Reviewer: plan.SAR{Kube: c}}
	p, err := plan.Build(context.Background(), cfg, defs[0], plan.ServiceAccount(ns, "drillbot"))
	if err != nil {
		t.Fatal(err)
	}
	for format, want := range map[string]string{
		"json":     `"verb": "delete"`,
		"markdown": "| Injecting | delete | `pods in shop` | allowed |",
		"table":    "Verdict    WOULD RUN",
	} {
		var out bytes.Buffer
		if err := plan.Write(&out, p, format); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), want) {
			t.Errorf("%s output lacks %q:\n%s", format, want, out.String())
		}
	}
	if err := plan.Write(&bytes.Buffer{}, p, "yaml"); err == nil {
		t.Error("an unknown format was accepted")
	}
}

func TestParseSubject(t *testing.T) {
	for as, want := range map[string]string{
		"drillbot":                               "system:serviceaccount:drillbot-system:drillbot",
		"ops:runner":                             "system:serviceaccount:ops:runner",
		"system:serviceaccount:ops:runner":       "system:serviceaccount:ops:runner",
		"system:serviceaccount:ops:runner:extra": "",
		"":                                       "",
		"ops:":                                   "",
	} {
		s, err := plan.ParseSubject(as, ns)
		if (err != nil) != (want == "") || s.User != want {
			t.Errorf("ParseSubject(%q) = %q, %v; want %q", as, s.User, err, want)
		}
	}
}

// runs is a RunReader over fixed DrillRuns.
type runs []v1alpha1.DrillRun

func (r runs) Get(_ context.Context, name string) (*v1alpha1.DrillRun, error) {
	for i := range r {
		if r[i].Name == name {
			return &r[i], nil
		}
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Group: "drillbot.io", Resource: "drillruns"}, name)
}

func (r runs) List(_ context.Context, selector string) ([]v1alpha1.DrillRun, error) {
	sel, err := labels.Parse(selector)
	if err != nil {
		return nil, err
	}
	var out []v1alpha1.DrillRun
	for _, x := range r {
		if sel.Matches(labels.Set(x.Labels)) {
			out = append(out, x)
		}
	}
	return out, nil
}

func drillRun(name string, phase v1alpha1.Phase, target string) v1alpha1.DrillRun {
	r := v1alpha1.DrillRun{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	if target != "" {
		r.Labels = map[string]string{v1alpha1.LabelTarget: engine.TargetHash(target)}
	}
	r.Status.Phase = phase
	return r
}

func targetLease(holder string) *coordinationv1.Lease {
	return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: engine.LeaseName("shop"), Namespace: ns},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(holder)}}
}

// TestBuildTargetHeld: a run whose revert failed holds its
// target's Lease, so the engine refuses every run of the target; plan
// must say so (WOULD NOT RUN, naming the run and its phase), read-only,
// and must not mistake a finished or deleted holder for a busy target. An
// unreadable lock is an error, not "free".
func TestBuildTargetHeld(t *testing.T) {
	for _, tc := range []struct {
		name     string
		lease    *coordinationv1.Lease
		runs     runs
		leaseErr error
		want     plan.Verdict
		says     []string
		wantErr  string
	}{
		{name: "a RevertFailed run holds the Lease", lease: targetLease("kill-web-1"), runs: runs{drillRun("kill-web-1", v1alpha1.PhaseRevertFailed, "shop")},
			want: plan.WouldNotRun, says: []string{"HELD", "kill-web-1", "RevertFailed"}},
		{name: "an unfinished run not yet in the Lease", runs: runs{drillRun("kill-web-2", v1alpha1.PhaseInjecting, "shop")},
			want: plan.WouldNotRun, says: []string{"HELD", "kill-web-2", "Injecting"}},
		{name: "the holder completed", lease: targetLease("kill-web-1"), runs: runs{drillRun("kill-web-1", v1alpha1.PhaseCompleted, "shop")}, want: plan.WouldRun},
		{name: "the holder was pruned", lease: targetLease("gone"), want: plan.WouldRun},
		{name: "another target's run", runs: runs{drillRun("other", v1alpha1.PhaseRevertFailed, "db")}, want: plan.WouldRun},
		{name: "the Lease cannot be read", leaseErr: errors.New("etcdserver: request timed out"), wantErr: "request timed out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cluster(true)
			denying(c)
			if tc.lease != nil {
				if _, err := c.CoordinationV1().Leases(ns).Create(context.Background(), tc.lease, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			if tc.leaseErr != nil {
				c.PrependReactor("get", "leases", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, tc.leaseErr })
			}
			c.ClearActions()
			defs, err := drill.Parse("kill-web.yaml", []byte(podKill), scenarios.Registry(scenarios.Deps{}))
			if err != nil {
				t.Fatal(err)
			}
			cfg := plan.Config{Kinds: scenarios.Registry(scenarios.Deps{Clients: &kube.Clients{Kube: c}}), Namespace: ns,
				Reviewer: plan.SAR{Kube: c}, Leases: c.CoordinationV1(), Runs: tc.runs}
			p, err := plan.Build(context.Background(), cfg, defs[0], plan.ServiceAccount(ns, "drillbot"))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := plan.Write(&out, p, "table"); err != nil {
				t.Fatal(err)
			}
			if p.Verdict != tc.want || p.OK() != (tc.want == plan.WouldRun) {
				t.Errorf("verdict %s, want %s\n%s", p.Verdict, tc.want, out.String())
			}
			for _, w := range tc.says {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			for _, a := range c.Actions() {
				if v := a.GetVerb(); v != "get" && v != "list" && v != "watch" && !(v == "create" && a.GetResource().Resource == "subjectaccessreviews") {
					t.Errorf("plan wrote: %s %s", v, a.GetResource().Resource)
				}
			}
		})
	}
}
