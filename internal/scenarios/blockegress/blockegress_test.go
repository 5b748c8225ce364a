package blockegress

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/engine"
)

func TestValidateParams(t *testing.T) {
	sel := map[string]string{"app.kubernetes.io/name": "external-secrets"}
	cases := []struct {
		name     string
		selector map[string]string
		params   string
		want     string
	}{
		{"plain", sel, `{"externalSecrets":["app/db"]}`, ""},
		{"no selector", nil, `{"externalSecrets":["app/db"]}`, "spec.target.selector: Required"},
		{"no ExternalSecrets", sel, `{}`, "spec.params.externalSecrets: Required"},
		{"not namespace/name", sel, `{"externalSecrets":["db"]}`, "spec.params.externalSecrets[0]"},
		{"bad window", sel, `{"externalSecrets":["app/db"],"detectionWindow":"soon"}`, "spec.params.detectionWindow"},
		{"unknown field", sel, `{"externalSecrets":["app/db"],"detectionWindw":"1m"}`, "detectionWindw"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := v1alpha1.DrillSpec{Target: v1alpha1.Target{Namespace: "eso", Selector: tc.selector}, Params: []byte(tc.params)}
			err := Kind{}.ValidateParams(spec, field.NewPath("spec", "params")).ToAggregate()
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func apiSlice(addrs ...string) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "kubernetes", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: "kubernetes"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: addrs}},
		Ports:       []discoveryv1.EndpointPort{{Port: ptr.To[int32](6443)}},
	}
}

func TestAPIServerPeers(t *testing.T) {
	cases := []struct {
		name    string
		objs    []runtime.Object
		want    []string // CIDRs
		refused bool
	}{
		{name: "from EndpointSlices", objs: []runtime.Object{apiSlice("10.0.0.2", "10.0.0.1")}, want: []string{"10.0.0.1/32", "10.0.0.2/32"}},
		{name: "IPv6", objs: []runtime.Object{apiSlice("fd00::1")}, want: []string{"fd00::1/128"}},
		{name: "from Endpoints when no slice", objs: []runtime.Object{&corev1.Endpoints{ //nolint:staticcheck // the fallback under test
			ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default"},
			Subsets:    []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "192.168.1.5"}}, Ports: []corev1.EndpointPort{{Port: 443}}}},
		}}, want: []string{"192.168.1.5/32"}},
		{name: "nothing: refused", refused: true},
		{name: "empty slice: refused", objs: []runtime.Object{apiSlice()}, refused: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			peers, ports, err := APIServerPeers(context.Background(), fake.NewClientset(tc.objs...))
			if tc.refused {
				if !engine.IsRefused(err) {
					t.Fatalf("err = %v, want a refusal", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range peers {
				got = append(got, p.IPBlock.CIDR)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("peers %v, want %v", got, tc.want)
			}
			if len(ports) != 1 || *ports[0].Protocol != corev1.ProtocolTCP {
				t.Errorf("ports %+v", ports)
			}
		})
	}
}

func TestPolicyDeniesAllButDNSAndAPIServer(t *testing.T) {
	s := &scenario{deps: Deps{Kube: fake.NewClientset(apiSlice("10.0.0.1"))}, ns: "eso", run: "r1",
		selector: map[string]string{"app.kubernetes.io/name": "external-secrets"}}
	np, err := s.policy(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if np.Name != PolicyName || np.Namespace != "eso" || np.Labels[v1alpha1.LabelRun] != "r1" {
		t.Errorf("meta %+v", np.ObjectMeta)
	}
	if len(np.Spec.PolicyTypes) != 1 || np.Spec.PolicyTypes[0] != networkingv1.PolicyTypeEgress {
		t.Errorf("policy types %v: only egress may be restricted", np.Spec.PolicyTypes)
	}
	if np.Spec.PodSelector.MatchLabels["app.kubernetes.io/name"] != "external-secrets" {
		t.Errorf("selector %v", np.Spec.PodSelector)
	}
	var allowed []string
	for _, r := range np.Spec.Egress {
		var to []string
		for _, p := range r.To {
			to = append(to, p.IPBlock.CIDR)
		}
		if len(to) == 0 {
			to = []string{"any"}
		}
		for _, p := range r.Ports {
			allowed = append(allowed, strings.Join(to, "+")+":"+string(*p.Protocol)+"/"+p.Port.String())
		}
	}
	want := "any:UDP/53,any:TCP/53,10.0.0.1/32:TCP/6443"
	if got := strings.Join(allowed, ","); got != want {
		t.Errorf("allowed egress %s, want %s", got, want)
	}
}

func TestStatus(t *testing.T) {
	es := func(conds ...any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"status": map[string]any{"refreshTime": "2026-11-24T03:00:00Z", "conditions": conds}}}
	}
	cases := []struct {
		name              string
		u                 *unstructured.Unstructured
		ready, syncFailed bool
	}{
		{"ready", es(map[string]any{"type": "Ready", "status": "True", "reason": "SecretSynced"}), true, false},
		{"sync error", es(map[string]any{"type": "Ready", "status": "False", "reason": "SecretSyncedError"}), false, true},
		{"deleted condition is not Ready", es(map[string]any{"type": "Deleted", "status": "True"}), false, false},
		{"no status", &unstructured.Unstructured{Object: map[string]any{}}, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := status(tc.u)
			if st.ready != tc.ready || st.syncFailed != tc.syncFailed {
				t.Errorf("ready=%v syncFailed=%v, want %v %v", st.ready, st.syncFailed, tc.ready, tc.syncFailed)
			}
		})
	}
	if got := status(es()).refreshed; !got.Equal(time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)) {
		t.Errorf("refreshed %v", got)
	}
}

func TestDataSumSeesEveryChange(t *testing.T) {
	base := &corev1.Secret{Data: map[string][]byte{"a": []byte("1"), "b": []byte("2")}}
	for name, other := range map[string]*corev1.Secret{
		"value changed":  {Data: map[string][]byte{"a": []byte("1"), "b": []byte("3")}},
		"key removed":    {Data: map[string][]byte{"a": []byte("1")}},
		"bytes shifted":  {Data: map[string][]byte{"a": []byte("12"), "b": []byte("")}},
		"emptied secret": {},
	} {
		if dataSum(other) == dataSum(base) {
			t.Errorf("%s: same sum", name)
		}
	}
	same := &corev1.Secret{Data: map[string][]byte{"b": []byte("2"), "a": []byte("1")}}
	if dataSum(same) != dataSum(base) {
		t.Error("same data, different sum")
	}
}

var esGVR = esVersions[0]

func externalSecret(ns, name string, ready bool) *unstructured.Unstructured {
	st := "True"
	if !ready {
		st = "False"
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec":     map[string]any{"target": map[string]any{"name": name}},
		"status":   map[string]any{"refreshTime": "2026-11-24T03:00:00Z", "conditions": []any{map[string]any{"type": "Ready", "status": st}}},
	}}
}

// TestPreflightRefusesBeforeAnyWrite: every doubt ends the drill before its
// first write.
func TestPreflightRefusesBeforeAnyWrite(t *testing.T) {
	optedIn := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "eso", Labels: map[string]string{v1alpha1.LabelAllowDisaster: "true"}}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "eso-1", Namespace: "eso", Labels: map[string]string{"app.kubernetes.io/name": "external-secrets"}}}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "app"}, Data: map[string][]byte{"v": []byte("x")}}
	leftover := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: PolicyName, Namespace: "eso"}}
	cases := []struct {
		name string
		kube []runtime.Object
		es   []runtime.Object
		want string
	}{
		{name: "ready to go", kube: []runtime.Object{optedIn, pod, secret, apiSlice("10.0.0.1")}, es: []runtime.Object{externalSecret("app", "db", true)}},
		{name: "not opted in", kube: []runtime.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "eso"}}, pod, secret, apiSlice("10.0.0.1")},
			es: []runtime.Object{externalSecret("app", "db", true)}, want: "not opted in"},
		{name: "no controller pods", kube: []runtime.Object{optedIn, secret, apiSlice("10.0.0.1")}, es: []runtime.Object{externalSecret("app", "db", true)}, want: "no pods match"},
		{name: "policy left over", kube: []runtime.Object{optedIn, pod, secret, leftover, apiSlice("10.0.0.1")},
			es: []runtime.Object{externalSecret("app", "db", true)}, want: "already exists"},
		{name: "API server unknown", kube: []runtime.Object{optedIn, pod, secret}, es: []runtime.Object{externalSecret("app", "db", true)}, want: "no API server addresses"},
		{name: "ExternalSecret missing", kube: []runtime.Object{optedIn, pod, secret, apiSlice("10.0.0.1")}, want: "ExternalSecret app/db"},
		{name: "ExternalSecret already failing", kube: []runtime.Object{optedIn, pod, secret, apiSlice("10.0.0.1")},
			es: []runtime.Object{externalSecret("app", "db", false)}, want: "not Ready before the drill"},
		{name: "Secret missing", kube: []runtime.Object{optedIn, pod, apiSlice("10.0.0.1")}, es: []runtime.Object{externalSecret("app", "db", true)}, want: "does not exist"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kc := fake.NewClientset(tc.kube...)
			dc := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
				map[schema.GroupVersionResource]string{esVersions[0]: "ExternalSecretList", esVersions[1]: "ExternalSecretList"}, tc.es...)
			s := &scenario{deps: Deps{Kube: kc, Dynamic: dc}, ns: "eso", run: "r1",
				selector: map[string]string{"app.kubernetes.io/name": "external-secrets"}, p: Params{ExternalSecrets: []string{"app/db"}}}
			err := s.Preflight(context.Background())
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Preflight = %v, want %q", err, tc.want)
			}
			for _, a := range append(kc.Actions(), dc.Actions()...) {
				if v := a.GetVerb(); v != "get" && v != "list" && v != "watch" {
					t.Errorf("preflight wrote: %s %s", v, a.GetResource().Resource)
				}
			}
		})
	}
}

func TestRevertIsIdempotent(t *testing.T) {
	mine := map[string]string{v1alpha1.LabelRun: "r1", "app.kubernetes.io/managed-by": "drillbot"}
	kc := fake.NewClientset(&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: PolicyName, Namespace: "eso", Labels: mine}},
		&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "app-policy", Namespace: "eso"}})
	s := &scenario{deps: Deps{Kube: kc}}
	e := v1alpha1.JournalEntry{ID: "block-egress", Undo: []byte(`{"namespace":"eso","policy":"` + PolicyName + `","run":"r1"}`)}
	for i := range 2 {
		if err := s.Revert(context.Background(), e); err != nil {
			t.Fatalf("revert %d: %v", i, err)
		}
	}
	list, _ := kc.NetworkingV1().NetworkPolicies("eso").List(context.Background(), metav1.ListOptions{})
	if len(list.Items) != 1 || list.Items[0].Name != "app-policy" {
		t.Errorf("policies left: %v; only drillbot's may go", list.Items)
	}
	if err := s.Revert(context.Background(), v1alpha1.JournalEntry{ID: "x", Undo: []byte(`{}`)}); err == nil {
		t.Error("an undo naming no policy was accepted")
	}
}

// TestRevertLeavesAnotherRunsPolicy: a late undo of one run (the sweep's
// retry, say) never deletes the policy another run created under the same
// name; an undo of an older drillbot (no run recorded) deletes only a
// policy drillbot manages.
func TestRevertLeavesAnotherRunsPolicy(t *testing.T) {
	cases := []struct {
		name, undo string
		labels     map[string]string
		wantGone   bool
	}{
		{"another run's policy", `"run":"r1"`, map[string]string{v1alpha1.LabelRun: "r2", "app.kubernetes.io/managed-by": "drillbot"}, false},
		{"this run's policy", `"run":"r2"`, map[string]string{v1alpha1.LabelRun: "r2", "app.kubernetes.io/managed-by": "drillbot"}, true},
		{"older undo, drillbot's policy", `"run":""`, map[string]string{"app.kubernetes.io/managed-by": "drillbot"}, true},
		{"older undo, someone else's policy of that name", `"run":""`, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kc := fake.NewClientset(&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: PolicyName, Namespace: "eso", Labels: tc.labels}})
			s := &scenario{deps: Deps{Kube: kc}}
			e := v1alpha1.JournalEntry{ID: "1-block-egress", Undo: []byte(`{"namespace":"eso","policy":"` + PolicyName + `",` + tc.undo + `}`)}
			if err := s.Revert(context.Background(), e); err != nil {
				t.Fatal(err)
			}
			_, err := kc.NetworkingV1().NetworkPolicies("eso").Get(context.Background(), PolicyName, metav1.GetOptions{})
			if gone := err != nil; gone != tc.wantGone {
				t.Errorf("policy gone %v, want %v", gone, tc.wantGone)
			}
		})
	}
}
