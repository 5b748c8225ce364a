package tlogoutage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/scenarios/admissionprobe"
	"github.com/drillbot-io/drillbot/internal/scenarios/blockegress"
)

const (
	kyvernoNS = "kyverno"
	probeNS   = "app"
	signedImg = "registry.local/app@sha256:aaaa"
	unsigned  = "registry.local/unsigned:v1"
	canaryImg = "registry.local/canary@sha256:cccc"
	denial    = "failed to verify image"
)

func TestValidateParams(t *testing.T) {
	sel := map[string]string{"app.kubernetes.io/component": "admission-controller"}
	ok := `"probeNamespace":"app","signed":{"image":"a"},"unsigned":{"image":"b"},"canary":{"image":"c"}`
	cases := []struct {
		name     string
		selector map[string]string
		params   string
		want     string
	}{
		{"plain", sel, `{"logCIDRs":["203.0.113.7","2001:db8::/64"],` + ok + `}`, ""},
		{"no selector", nil, `{"logCIDRs":["203.0.113.7"],` + ok + `}`, "spec.target.selector: Required"},
		{"no CIDRs", sel, `{` + ok + `}`, "spec.params.logCIDRs: Required"},
		{"not a CIDR", sel, `{"logCIDRs":["rekor.sigstore.dev"],` + ok + `}`, "spec.params.logCIDRs[0]"},
		{"host bits", sel, `{"logCIDRs":["203.0.113.7/24"],` + ok + `}`, "host bits set"},
		{"too wide v4", sel, `{"logCIDRs":["10.0.0.0/8"],` + ok + `}`, "wider than /16"},
		{"everything", sel, `{"logCIDRs":["0.0.0.0/0"],` + ok + `}`, "wider than /16"},
		{"too wide v6", sel, `{"logCIDRs":["2001:db8::/32"],` + ok + `}`, "wider than /48"},
		{"no probe namespace", sel, `{"logCIDRs":["203.0.113.7"],"signed":{"image":"a"},"unsigned":{"image":"b"},"canary":{"image":"c"}}`, "spec.params.probeNamespace: Required"},
		{"bad probe namespace", sel, `{"logCIDRs":["203.0.113.7"],"probeNamespace":"App_1","signed":{"image":"a"},"unsigned":{"image":"b"},"canary":{"image":"c"}}`, "spec.params.probeNamespace: Invalid"},
		{"no canary", sel, `{"logCIDRs":["203.0.113.7"],"probeNamespace":"app","signed":{"image":"a"},"unsigned":{"image":"b"}}`, "spec.params.canary.image: Required"},
		{"no signed image", sel, `{"logCIDRs":["203.0.113.7"],"probeNamespace":"app","unsigned":{"image":"b"},"canary":{"image":"c"}}`, "spec.params.signed.image: Required"},
		{"bad window", sel, `{"logCIDRs":["203.0.113.7"],` + ok + `,"detectionWindow":"0s"}`, "spec.params.detectionWindow"},
		{"no quiet period", sel, `{"logCIDRs":["203.0.113.7"],` + ok + `,"quietPeriod":"0s"}`, ""},
		{"bad quiet period", sel, `{"logCIDRs":["203.0.113.7"],` + ok + `,"quietPeriod":"-1s"}`, "spec.params.quietPeriod"},
		{"unknown field", sel, `{"logCIDRs":["203.0.113.7"],` + ok + `,"logURL":"x"}`, "logURL"},
		{"canary reason", sel, `{"logCIDRs":["203.0.113.7"],` + ok + `,"canaryReasonContains":"my-canary"}`, ""},
		{"blank canary reason", sel, `{"logCIDRs":["203.0.113.7"],` + ok + `,"canaryReasonContains":" "}`, "spec.params.canaryReasonContains"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := v1alpha1.DrillSpec{Target: v1alpha1.Target{Namespace: kyvernoNS, Selector: tc.selector}, Params: []byte(tc.params)}
			err := Kind{}.ValidateParams(spec, field.NewPath("spec", "params")).ToAggregate()
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// admission plays an admission controller whose answers depend on whether
// drillbot's policy blocks the log: the policy in the tracker is the block.
type admission struct {
	canaryNeedsLog, signedNeedsLog, unsignedFailOpen bool
	signedQuota, unsignedTimesOut                    bool // while blocked: a quota refuses the probe; admission times out
	unsignedQuota                                    bool // while blocked: a quota refuses the unsigned probe
	brokenCanary, brokenSigned, openUnsigned         bool // before any block
	otherReason                                      bool // the unsigned image denied for another reason
	// canaryErr, when set, is what the canary's probe gets while blocked
	// instead of its policy's denial, the first canaryErrs times (all
	// times when 0): errors that say nothing of the log.
	canaryErr  func(pod *corev1.Pod) error
	canaryErrs int
	// canaryDenials, when set, is how many times the canary is denied
	// while blocked before it is admitted again (the block stops holding).
	canaryDenials int
	// cacheTTL plays Kyverno's image-verification cache: a signed image
	// verified is admitted without verification for this long (on clk).
	cacheTTL time.Duration
	// kyvernoArgs are the admission container's args; nil: the cache off.
	kyvernoArgs []string
}

// fakeKyverno is admission's state across probes.
type fakeKyverno struct {
	admission
	clk             *clocktesting.FakeClock
	blockedCanaries int
	verified        map[string]time.Time // image: the cache entry's expiry
}

// canaryDenial is how Kyverno v1.19.1 words the canary policy's rule error
// (pkg/webhooks/utils/block.go) when its call to the log fails.
const canaryDenial = "\n\nresource Pod/app/ was blocked due to the following policies \n\n" +
	"drillbot-tlog-canary:\n  transparency-log-reachable: 'failed to load context: failed to fetch data for APICall: dial tcp 203.0.113.7:443: connect: connection refused'\n"

func (k *fakeKyverno) answer(kc *fake.Clientset, pod *corev1.Pod) error {
	a := k.admission
	_, err := kc.Tracker().Get(schema.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "networkpolicies"}, kyvernoNS, PolicyName)
	blocked := err == nil
	deny := func(msg string) error {
		return apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, pod.Name, errors.New(`admission webhook "mutate.kyverno.svc-fail" denied the request: `+msg))
	}
	unanswered := apierrors.NewInternalError(errors.New(`failed calling webhook "validate.kyverno.svc-fail": context deadline exceeded`))
	switch img := pod.Spec.Containers[0].Image; {
	case img == canaryImg && pod.Labels["canary"] == "true":
		if a.brokenCanary {
			return unanswered
		}
		if blocked && a.canaryNeedsLog {
			k.blockedCanaries++
			if a.canaryErr != nil && (a.canaryErrs == 0 || k.blockedCanaries <= a.canaryErrs) {
				return a.canaryErr(pod)
			}
			if a.canaryDenials > 0 && k.blockedCanaries-a.canaryErrs > a.canaryDenials {
				return nil
			}
			return apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, pod.Name, errors.New(`admission webhook "validate.kyverno.svc-fail" denied the request: `+canaryDenial))
		}
	case img == signedImg && blocked && a.signedQuota:
		return apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, pod.Name, errors.New(`exceeded quota: pods, requested: pods=1, used: pods=10, limited: pods=10`))
	case img == signedImg:
		if exp, ok := k.verified[img]; ok && k.clk.Now().Before(exp) {
			return nil // verified from cache
		}
		if a.brokenSigned || (blocked && a.signedNeedsLog) {
			return deny(denial + " " + img + ": Get rekor: dial tcp 203.0.113.7:443: i/o timeout")
		}
		if a.cacheTTL > 0 {
			k.verified[img] = k.clk.Now().Add(a.cacheTTL)
		}
	case img == unsigned && blocked && a.unsignedQuota:
		return apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, pod.Name, errors.New(`exceeded quota: pods, requested: pods=1, used: pods=10, limited: pods=10`))
	case blocked && a.unsignedTimesOut:
		return unanswered
	case a.openUnsigned || (blocked && a.unsignedFailOpen):
	case a.otherReason:
		return deny("validation error: pod security")
	default:
		return deny(denial + " " + img + ": no signatures found")
	}
	return nil
}

// kyvernoPod is an admission controller pod of Kyverno's chart running
// with args.
func kyvernoPod(name string, args ...string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: kyvernoNS, Labels: map[string]string{"app.kubernetes.io/component": "admission-controller"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "kyverno", Image: "reg.kyverno.io/kyverno/kyverno:v1.19.1",
			Args: append([]string{"--caSecretName=kyverno-svc.kyverno.svc.kyverno-tls-ca", "--servicePort=443"}, args...)}}}}
}

// cluster is a fake API server with Kyverno's pods, opted-in namespaces,
// the API server's endpoints and admission answering dry runs.
func cluster(t *testing.T, a admission, extra ...runtime.Object) *fake.Clientset {
	t.Helper()
	return clusterAt(t, a, clocktesting.NewFakeClock(time.Now()), extra...)
}

func clusterAt(t *testing.T, a admission, clk *clocktesting.FakeClock, extra ...runtime.Object) *fake.Clientset {
	t.Helper()
	args := a.kyvernoArgs
	if args == nil {
		args = []string{"--imageVerifyCacheEnabled=false"}
	}
	objs := append([]runtime.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: kyvernoNS, Labels: map[string]string{v1alpha1.LabelAllowDisaster: "true"}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: probeNS, Labels: map[string]string{v1alpha1.LabelAllowDisaster: "true"}}},
		kyvernoPod("kyverno-1", args...),
		//nolint:staticcheck // the API server's addresses, as drillbot reads them
		&corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default"},
			Subsets: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "10.0.0.1"}}, Ports: []corev1.EndpointPort{{Port: 6443}}}}},
	}, extra...)
	kc := fake.NewClientset(objs...)
	k := &fakeKyverno{admission: a, clk: clk, verified: map[string]time.Time{}}
	kc.PrependReactor("create", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
		c := action.(k8stesting.CreateActionImpl)
		if len(c.CreateOptions.DryRun) == 0 {
			t.Errorf("a pod was really created: %v", c.Object)
			return true, nil, errors.New("not a dry run")
		}
		pod := c.Object.(*corev1.Pod)
		return true, pod, k.answer(kc, pod)
	})
	return kc
}

func newScenario(kc *fake.Clientset, clk *clocktesting.FakeClock, cidrs ...string) *scenario {
	if len(cidrs) == 0 {
		cidrs = []string{"203.0.113.7/32"}
	}
	return &scenario{deps: Deps{Kube: kc, Clock: clk}, ns: kyvernoNS, run: "r1",
		selector: map[string]string{"app.kubernetes.io/component": "admission-controller"},
		window:   time.Minute, interval: time.Millisecond, timer: time.After,
		p: Params{LogCIDRs: cidrs, ProbeNamespace: probeNS, ReasonContains: denial,
			Signed: admissionprobe.PodSpec{Image: signedImg}, Unsigned: admissionprobe.PodSpec{Image: unsigned},
			Canary: admissionprobe.PodSpec{Image: canaryImg, Labels: map[string]string{"canary": "true"}}}}
}

// onlyReadsAndDryRuns fails the test on any write that is not a dry run.
func onlyReadsAndDryRuns(t *testing.T, kc *fake.Clientset) {
	t.Helper()
	for _, a := range kc.Actions() {
		switch v := a.GetVerb(); v {
		case "get", "list", "watch":
		case "create":
			if c, ok := a.(k8stesting.CreateActionImpl); !ok || len(c.CreateOptions.DryRun) == 0 {
				t.Errorf("wrote: %s %s", v, a.GetResource().Resource)
			}
		default:
			t.Errorf("wrote: %s %s", v, a.GetResource().Resource)
		}
	}
}

// TestPreflightRefusesBeforeAnyWrite: every doubt ends the drill before
// its first write, admission's own answers before the block included.
func TestPreflightRefusesBeforeAnyWrite(t *testing.T) {
	leftover := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: PolicyName, Namespace: kyvernoNS}}
	cases := []struct {
		name  string
		a     admission
		cidrs []string
		extra []runtime.Object
		edit  func(*fake.Clientset)
		want  string
	}{
		{name: "ready to go"},
		{name: "probe namespace not opted in", edit: func(kc *fake.Clientset) {
			_ = kc.Tracker().Update(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: probeNS}}, "")
		}, want: "not opted in"},
		{name: "no admission pods", edit: func(kc *fake.Clientset) {
			_ = kc.Tracker().Delete(schema.GroupVersionResource{Version: "v1", Resource: "pods"}, kyvernoNS, "kyverno-1")
		}, want: "no pods match"},
		{name: "policy left over", extra: []runtime.Object{leftover}, want: "already exists"},
		{name: "the log's CIDR holds the API server", cidrs: []string{"10.0.0.0/24"}, want: "contains the API server's address 10.0.0.1"},
		{name: "canary not admitted", a: admission{brokenCanary: true}, want: "the canary"},
		{name: "signed already denied", a: admission{brokenSigned: true}, want: "deploys already fail"},
		{name: "unsigned already admitted", a: admission{openUnsigned: true}, want: "not enforced now"},
		{name: "unsigned denied for another reason", a: admission{otherReason: true}, want: "not denied as expected"},
		{name: "cache args Kyverno would not start with", a: admission{kyvernoArgs: []string{"--imageVerifyCacheTTLDuration=soon"}},
			want: "whether Kyverno caches image verifications cannot be told"},
		{name: "not Kyverno's pods", edit: func(kc *fake.Clientset) {
			p := kyvernoPod("kyverno-1")
			p.Spec.Containers[0].Name, p.Spec.Containers[0].Image = "webhook", "ghcr.io/sigstore/policy-controller:v0.12"
			_ = kc.Tracker().Update(schema.GroupVersionResource{Version: "v1", Resource: "pods"}, p, kyvernoNS)
		}, want: "runs no Kyverno container"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kc := cluster(t, tc.a, tc.extra...)
			if tc.edit != nil {
				tc.edit(kc)
				kc.ClearActions()
			}
			s := newScenario(kc, clocktesting.NewFakeClock(time.Now()), tc.cidrs...)
			err := s.Preflight(context.Background())
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Preflight = %v, want %q", err, tc.want)
			}
			onlyReadsAndDryRuns(t, kc)
		})
	}
}

func TestPolicyBlocksOnlyTheLog(t *testing.T) {
	kc := cluster(t, admission{})
	s := newScenario(kc, clocktesting.NewFakeClock(time.Now()), "203.0.113.7/32", "2001:db8::/64", "198.51.100.0/24")
	if err := s.Preflight(context.Background()); err != nil {
		t.Fatal(err)
	}
	np := s.np
	if np.Name != PolicyName || np.Labels[v1alpha1.LabelRun] != "r1" || len(np.Spec.PolicyTypes) != 1 || np.Spec.PolicyTypes[0] != networkingv1.PolicyTypeEgress {
		t.Fatalf("policy %+v: an egress-only policy of the run", np.ObjectMeta)
	}
	var rules []string
	for _, r := range np.Spec.Egress {
		var parts []string
		for _, p := range r.To {
			switch {
			case p.IPBlock != nil:
				parts = append(parts, p.IPBlock.CIDR+" except "+strings.Join(p.IPBlock.Except, "+"))
			case p.NamespaceSelector != nil && len(p.NamespaceSelector.MatchLabels) == 0 && p.PodSelector == nil:
				parts = append(parts, "every pod")
			}
		}
		for _, p := range r.Ports {
			parts = append(parts, string(*p.Protocol)+"/"+p.Port.String())
		}
		rules = append(rules, strings.Join(parts, ","))
	}
	want := "0.0.0.0/0 except 198.51.100.0/24+203.0.113.7/32,::/0 except 2001:db8::/64 | UDP/53,TCP/53 | 10.0.0.1/32 except ,TCP/6443 | every pod"
	if got := strings.Join(rules, " | "); got != want {
		t.Errorf("egress\n got %s\nwant %s", got, want)
	}
}

type marks []string

func (m *marks) Mark(name string) { *m = append(*m, name) }

type journal struct {
	kc   *fake.Clientset
	fail bool
	undo any
}

func (j *journal) Record(_ context.Context, _, _ string, undo any) error {
	if _, err := j.kc.NetworkingV1().NetworkPolicies(kyvernoNS).Get(context.Background(), PolicyName, metav1.GetOptions{}); err == nil {
		return errors.New("the policy exists before its undo was recorded")
	}
	if j.fail {
		return errors.New("journal unavailable")
	}
	j.undo = undo
	return nil
}

// TestRun: the whole run against admission that behaves each way the plan
// cares about; the block is gone after Recover whatever the verdict.
func TestRun(t *testing.T) {
	cases := []struct {
		name         string
		a            admission
		inconclusive string
		failures     []string
		marks        string
		finding      string
	}{
		{name: "key-based fallback works", a: admission{canaryNeedsLog: true},
			marks: "log-unreachable,outage-probed,unblocked,log-reachable", finding: "signed image admitted (key-based fallback)"},
		{name: "deploys stop while the log is down", a: admission{canaryNeedsLog: true, signedNeedsLog: true},
			failures: []string{"while the log was unreachable: deploys stop: the signed image " + signedImg + " was denied"},
			marks:    "log-unreachable,outage-probed,unblocked,log-reachable"},
		{name: "fail-open while the log is down", a: admission{canaryNeedsLog: true, unsignedFailOpen: true},
			failures: []string{"while the log was unreachable: FAIL-OPEN: the unsigned image " + unsigned + " was ADMITTED"},
			marks:    "log-unreachable,outage-probed,unblocked,log-reachable"},
		{name: "a quota refuses the signed probe: nothing said of the policy", a: admission{canaryNeedsLog: true, signedQuota: true},
			inconclusive: "while the log was unreachable: the probe of the signed image " + signedImg + " was refused before admission decided",
			marks:        "log-unreachable,outage-probed,unblocked,log-reachable"},
		{name: "admission times out on the unsigned image: fail-closed, said", a: admission{canaryNeedsLog: true, unsignedTimesOut: true},
			marks: "log-unreachable,outage-probed,unblocked,log-reachable", finding: "while the log was unreachable: the unsigned image was not admitted, but admission did not decide (unanswered)"},
		{name: "the block has no effect", a: admission{signedNeedsLog: true},
			inconclusive: "the block had no effect", marks: "unblocked,log-reachable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kc := cluster(t, tc.a)
			clk := clocktesting.NewFakeClock(time.Now())
			kc.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
				clk.Step(10 * time.Second) // each probe takes time; the window passes
				return false, nil, nil
			})
			s := newScenario(kc, clk)
			ctx := context.Background()
			if err := s.Preflight(ctx); err != nil {
				t.Fatal(err)
			}
			j := &journal{kc: kc}
			if err := s.Inject(ctx, j); err != nil {
				t.Fatal(err)
			}
			var m marks
			if err := s.Recover(ctx, &m); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(m, ","); got != tc.marks {
				t.Errorf("milestones %s, want %s", got, tc.marks)
			}
			if _, err := kc.NetworkingV1().NetworkPolicies(kyvernoNS).Get(ctx, PolicyName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("the block outlived Recover: %v", err)
			}
			v, err := s.Verify(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(v.Inconclusive, tc.inconclusive) || (tc.inconclusive == "") != (v.Inconclusive == "") {
				t.Errorf("inconclusive %q, want %q", v.Inconclusive, tc.inconclusive)
			}
			if len(v.Failures) != len(tc.failures) {
				t.Fatalf("failures %q, want %q", v.Failures, tc.failures)
			}
			for i, f := range tc.failures {
				if !strings.Contains(v.Failures[i], f) {
					t.Errorf("failure %q, want %q", v.Failures[i], f)
				}
			}
			if tc.finding != "" && !strings.Contains(strings.Join(v.Findings, "|"), tc.finding) {
				t.Errorf("findings %q, want %q", v.Findings, tc.finding)
			}
			if u, ok := j.undo.(blockegress.Undo); !ok || u.Run != "r1" || u.Policy != PolicyName || u.Namespace != kyvernoNS {
				t.Errorf("undo %#v: the run's policy", j.undo)
			}
		})
	}
}

// TestQuietPeriod: after the block nothing is asked until the quiet
// period has passed (a connection to the log kept alive would otherwise
// carry the canary through the block).
func TestQuietPeriod(t *testing.T) {
	kc := cluster(t, admission{canaryNeedsLog: true})
	s := newScenario(kc, clocktesting.NewFakeClock(time.Now()))
	s.quiet = 100 * time.Second
	ctx := context.Background()
	if err := s.Preflight(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Inject(ctx, &journal{kc: kc}); err != nil {
		t.Fatal(err)
	}
	probes := func() int {
		n := 0
		for _, a := range kc.Actions() {
			if a.GetVerb() == "create" && a.GetResource().Resource == "pods" {
				n++
			}
		}
		return n
	}
	atInject := probes()
	var waits []time.Duration
	s.timer = func(d time.Duration) <-chan time.Time {
		if len(waits) == 0 && probes() != atInject {
			t.Errorf("admission was asked %d times before the quiet period", probes()-atInject)
		}
		waits = append(waits, d)
		ch := make(chan time.Time, 1)
		ch <- time.Time{}
		return ch
	}
	if err := s.Recover(ctx, &marks{}); err != nil {
		t.Fatal(err)
	}
	if len(waits) == 0 || waits[0] != 100*time.Second {
		t.Errorf("waits %v: the first must be the quiet period", waits)
	}
	if !s.effect {
		t.Error("the canary was not refused after the quiet period")
	}
}

// TestInjectRecordsTheUndoFirst: a journal that cannot record leaves no
// policy behind.
func TestInjectRecordsTheUndoFirst(t *testing.T) {
	kc := cluster(t, admission{})
	s := newScenario(kc, clocktesting.NewFakeClock(time.Now()))
	if err := s.Preflight(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Inject(context.Background(), &journal{kc: kc, fail: true}); err == nil {
		t.Fatal("Inject succeeded without its undo")
	}
	if _, err := kc.NetworkingV1().NetworkPolicies(kyvernoNS).Get(context.Background(), PolicyName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the policy was created without its undo: %v", err)
	}
}

// TestRevertDeletesOnlyTheRunsPolicy: the undo deletes the run's policy and
// is idempotent; another run's policy of that name stays.
func TestRevertDeletesOnlyTheRunsPolicy(t *testing.T) {
	mine := map[string]string{v1alpha1.LabelRun: "r1", "app.kubernetes.io/managed-by": "drillbot"}
	theirs := map[string]string{v1alpha1.LabelRun: "r2", "app.kubernetes.io/managed-by": "drillbot"}
	e := v1alpha1.JournalEntry{ID: "1-block-tlog", Undo: []byte(`{"namespace":"kyverno","policy":"` + PolicyName + `","run":"r1"}`)}
	for name, tc := range map[string]struct {
		labels   map[string]string
		wantGone bool
	}{"the run's": {mine, true}, "another run's": {theirs, false}} {
		t.Run(name, func(t *testing.T) {
			kc := fake.NewClientset(&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: PolicyName, Namespace: kyvernoNS, Labels: tc.labels}})
			s := &scenario{deps: Deps{Kube: kc}}
			for range 2 {
				if err := s.Revert(context.Background(), e); err != nil {
					t.Fatal(err)
				}
			}
			_, err := kc.NetworkingV1().NetworkPolicies(kyvernoNS).Get(context.Background(), PolicyName, metav1.GetOptions{})
			if gone := apierrors.IsNotFound(err); gone != tc.wantGone {
				t.Errorf("gone %v, want %v", gone, tc.wantGone)
			}
		})
	}
}

var _ engine.Milestones = (*marks)(nil)

// outcome is a whole run's: its milestones and verification.
type outcome struct {
	marks string
	v     engine.Verification
	err   error // Preflight's
	s     *scenario
}

// runOn runs the drill against admission a on a fake clock that each probe
// and each wait advance, as a real run's would.
func runOn(t *testing.T, a admission, edit func(*scenario)) outcome {
	t.Helper()
	clk := clocktesting.NewFakeClock(time.Now())
	kc := clusterAt(t, a, clk)
	kc.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		clk.Step(2 * time.Second)
		return false, nil, nil
	})
	s := newScenario(kc, clk)
	s.timer = func(d time.Duration) <-chan time.Time {
		clk.Step(d)
		ch := make(chan time.Time, 1)
		ch <- clk.Now()
		return ch
	}
	if edit != nil {
		edit(s)
	}
	ctx := context.Background()
	if err := s.Preflight(ctx); err != nil {
		onlyReadsAndDryRuns(t, kc)
		return outcome{err: err, s: s}
	}
	if err := s.Inject(ctx, &journal{kc: kc}); err != nil {
		t.Fatal(err)
	}
	var m marks
	if err := s.Recover(ctx, &m); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.NetworkingV1().NetworkPolicies(kyvernoNS).Get(ctx, PolicyName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the block outlived Recover: %v", err)
	}
	v, err := s.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return outcome{marks: strings.Join(m, ","), v: v, s: s}
}

// passed is what makes a PASS: no failure and nothing inconclusive.
func (o outcome) passed() bool {
	return o.err == nil && len(o.v.Failures) == 0 && o.v.Inconclusive == ""
}

func (o outcome) String() string {
	return fmt.Sprintf("preflight %v; inconclusive %q; failures %q; findings %q; marks %s", o.err, o.v.Inconclusive, o.v.Failures, o.v.Findings, o.marks)
}

// TestCanaryErrorsAreNotEvidence (EVIDENCE rule 5): the canary
// shows the block took effect only by its policy's own denial. An error on
// its probe (the API server's 503, a webhook timeout, a NotFound, another
// policy's denial) says nothing of the log: retried within the detection
// window, then INCONCLUSIVE; never the proof that the fallback worked.
func TestCanaryErrorsAreNotEvidence(t *testing.T) {
	gr := schema.GroupResource{Resource: "pods"}
	errs := map[string]func(*corev1.Pod) error{
		"503": func(*corev1.Pod) error {
			return apierrors.NewServiceUnavailable("the server is currently unable to handle the request")
		},
		"webhook timeout": func(*corev1.Pod) error {
			return apierrors.NewInternalError(errors.New(`failed calling webhook "validate.kyverno.svc-fail": failed to call webhook: Post "https://kyverno-svc.kyverno.svc:443/validate/fail?timeout=10s": context deadline exceeded`))
		},
		"NotFound": func(*corev1.Pod) error {
			return apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, probeNS)
		},
		"another policy's denial": func(p *corev1.Pod) error {
			return apierrors.NewForbidden(gr, p.Name, errors.New(`admission webhook "validate.kyverno.svc-fail" denied the request: `+
				"\n\nresource Pod/app/ was blocked due to the following policies \n\ndisallow-latest-tag:\n  require-image-tag: 'validation error: An image tag is required.'\n"))
		},
		"a quota": func(p *corev1.Pod) error {
			return apierrors.NewForbidden(gr, p.Name, errors.New("exceeded quota: pods, requested: pods=1, used: pods=10, limited: pods=10"))
		},
	}
	for name, canaryErr := range errs {
		t.Run(name+" throughout: inconclusive", func(t *testing.T) {
			o := runOn(t, admission{canaryNeedsLog: true, canaryErr: canaryErr}, nil)
			if o.passed() || !strings.Contains(o.v.Inconclusive, "was never denied by its policy") {
				t.Fatalf("%v: want INCONCLUSIVE, the canary never denied by its policy", o)
			}
			if strings.Contains(strings.Join(o.v.Findings, "|"), "key-based fallback") {
				t.Errorf("findings %q credit the fallback", o.v.Findings)
			}
			if o.marks != "unblocked,log-reachable" {
				t.Errorf("milestones %s: the log was never shown unreachable", o.marks)
			}
		})
		t.Run(name+" then the policy's denial: retried, PASS", func(t *testing.T) {
			o := runOn(t, admission{canaryNeedsLog: true, canaryErr: canaryErr, canaryErrs: 2}, nil)
			if !o.passed() || !strings.Contains(strings.Join(o.v.Findings, "|"), "key-based fallback") {
				t.Fatalf("%v: want PASS once the canary's policy denies it", o)
			}
		})
	}
}

// TestCanaryDenialByItsPolicy: the canary's policy named in the denial is
// the evidence (by default the shipped policy's name; canaryReasonContains
// names another).
func TestCanaryDenialByItsPolicy(t *testing.T) {
	cases := []struct {
		name, reason string
		pass         bool
	}{
		{"the shipped policy's name", "", true},
		{"the rule's message", "transparency-log-reachable", true},
		{"a policy that did not deny it", "my-own-tlog-canary", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := runOn(t, admission{canaryNeedsLog: true}, func(s *scenario) {
				if tc.reason != "" {
					s.p.CanaryReasonContains = tc.reason
				}
			})
			if o.passed() != tc.pass {
				t.Fatalf("%v: want pass %v", o, tc.pass)
			}
		})
	}
}

// TestCanaryAskedAgainAfterTheProbes: the canary denied once, then
// admitted while the block is still in place (the log reached another way,
// a policy's enforcement that comes and goes): the signed and unsigned
// probes' answers may not have been given under the outage: INCONCLUSIVE.
func TestCanaryAskedAgainAfterTheProbes(t *testing.T) {
	cases := []struct {
		name         string
		a            admission
		inconclusive string
	}{
		{name: "the block held", a: admission{canaryNeedsLog: true}},
		{name: "admitted again after the probes", a: admission{canaryNeedsLog: true, canaryDenials: 1},
			inconclusive: "admitted again after the signed and unsigned probes"},
		{name: "only errors after the probes", a: admission{canaryNeedsLog: true, canaryDenials: 1,
			canaryErr: func(*corev1.Pod) error { return apierrors.NewServiceUnavailable("etcd leader changed") }},
			inconclusive: "not shown to hold"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.a
			if a.canaryErr != nil { // errors only after the first denial
				a.canaryErrs = 0
				inner := a.canaryErr
				n := 0
				a.canaryErr = func(p *corev1.Pod) error {
					if n++; n == 1 {
						return apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, p.Name, errors.New(`admission webhook "validate.kyverno.svc-fail" denied the request: `+canaryDenial))
					}
					return inner(p)
				}
			}
			o := runOn(t, a, nil)
			if tc.inconclusive == "" {
				if !o.passed() {
					t.Fatalf("%v: want PASS", o)
				}
				return
			}
			if o.passed() || !strings.Contains(o.v.Inconclusive, tc.inconclusive) {
				t.Fatalf("%v: want INCONCLUSIVE with %q", o, tc.inconclusive)
			}
			if strings.Contains(strings.Join(o.v.Findings, "|"), "key-based fallback") {
				t.Errorf("findings %q credit the fallback", o.v.Findings)
			}
		})
	}
}

// TestImageVerifyCache (EVIDENCE rule 2): Kyverno answers a
// verified image from its cache (on by default, 60 min) without verifying
// it: the signed image admitted during the block may have been verified
// before it, while the log was reachable (drillbot's own preflight probe
// fills the cache). Here deploys need the log (the truth is FAIL), but a
// cache that still holds the preflight's verification admits the signed
// image during the block.
func TestImageVerifyCache(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		ttl     time.Duration // the fake's cache
		limit   time.Duration // timeouts.recover
		refused string
		failure string // the truth, seen
	}{
		{name: "on at its default: refused", args: []string{}, ttl: time.Hour, limit: 35 * time.Minute,
			refused: "image-verification cache is on (TTL 1h0m0s"},
		{name: "TTL 0 is the default 60m: refused", args: []string{"--imageVerifyCacheTTLDuration=0"}, ttl: time.Hour, limit: 35 * time.Minute,
			refused: "TTL 1h0m0s"},
		{name: "on, short TTL: waited out, the truth seen", args: []string{"--imageVerifyCacheTTLDuration=1m"}, ttl: time.Minute, limit: 35 * time.Minute,
			failure: "while the log was unreachable: deploys stop"},
		{name: "on, TTL longer than the recover timeout allows: refused", args: []string{"-imageVerifyCacheEnabled=true", "--imageVerifyCacheTTLDuration", "30m"}, ttl: 30 * time.Minute, limit: 20 * time.Minute,
			refused: "timeouts.recover"},
		{name: "off", args: []string{"--imageVerifyCacheEnabled=false"}, limit: 35 * time.Minute,
			failure: "while the log was unreachable: deploys stop"},
		{name: "negative TTL stores nothing", args: []string{"--imageVerifyCacheTTLDuration=-1s"}, limit: 35 * time.Minute,
			failure: "while the log was unreachable: deploys stop"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := runOn(t, admission{canaryNeedsLog: true, signedNeedsLog: true, cacheTTL: tc.ttl, kyvernoArgs: tc.args}, func(s *scenario) {
				s.limit = tc.limit
			})
			if o.passed() {
				t.Fatalf("%v: PASS with a cache that answers for the log", o)
			}
			if tc.refused != "" {
				if o.err == nil || !engine.IsRefused(o.err) || !strings.Contains(o.err.Error(), tc.refused) {
					t.Fatalf("%v: want refused with %q", o, tc.refused)
				}
				return
			}
			if o.err != nil || !strings.Contains(strings.Join(o.v.Failures, "|"), tc.failure) {
				t.Fatalf("%v: want the failure %q", o, tc.failure)
			}
		})
	}
}

// TestCacheReadAgainAfterTheProbes: the admission controller's pods are
// read again after the probes; one started since the preflight with the
// cache on (a rollout), or pods that cannot be read, leave the probes'
// answers unexplained: INCONCLUSIVE.
func TestCacheReadAgainAfterTheProbes(t *testing.T) {
	blocked := func(kc *fake.Clientset) bool {
		_, err := kc.Tracker().Get(schema.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "networkpolicies"}, kyvernoNS, PolicyName)
		return err == nil
	}
	cases := []struct {
		name         string
		preflight    []string // the pods' args then
		during       func(kc *fake.Clientset) (bool, runtime.Object, error)
		inconclusive string
	}{
		{name: "a pod with the cache on appeared", during: func(*fake.Clientset) (bool, runtime.Object, error) {
			return true, &corev1.PodList{Items: []corev1.Pod{*kyvernoPod("kyverno-2")}}, nil
		}, inconclusive: "pod kyverno-2 runs with Kyverno's image-verification cache on (TTL 1h0m0s)"},
		{name: "a longer TTL than was waited", preflight: []string{"--imageVerifyCacheTTLDuration=30s"}, during: func(*fake.Clientset) (bool, runtime.Object, error) {
			return true, &corev1.PodList{Items: []corev1.Pod{*kyvernoPod("kyverno-2", "--imageVerifyCacheTTLDuration=10m")}}, nil
		}, inconclusive: "which a wait of 35s after the block took effect does not outlast"},
		{name: "the pods cannot be read", during: func(*fake.Clientset) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewServiceUnavailable("etcd leader changed")
		}, inconclusive: "could not be read after the probes"},
		{name: "the same pods"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := runOn(t, admission{canaryNeedsLog: true, kyvernoArgs: tc.preflight}, func(s *scenario) {
				kc := s.deps.Kube.(*fake.Clientset)
				if tc.during != nil {
					kc.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
						if !blocked(kc) {
							return false, nil, nil
						}
						return tc.during(kc)
					})
				}
			})
			if tc.inconclusive == "" {
				if !o.passed() {
					t.Fatalf("%v: want PASS", o)
				}
				return
			}
			if o.passed() || !strings.Contains(o.v.Inconclusive, tc.inconclusive) {
				t.Fatalf("%v: want INCONCLUSIVE with %q", o, tc.inconclusive)
			}
		})
	}
}

// TestVerifyCacheFromArgs: Kyverno v1.19.1's flags (cmd/internal/flag.go)
// as its Go flag package parses them from the running container's args.
func TestVerifyCacheFromArgs(t *testing.T) {
	cases := []struct {
		name string
		args []string
		on   bool
		ttl  time.Duration
		err  string
	}{
		{"defaults", nil, true, time.Hour, ""},
		{"off", []string{"--imageVerifyCacheEnabled=false"}, false, 0, ""},
		{"off, single dash, 0", []string{"-imageVerifyCacheEnabled=0"}, false, 0, ""},
		{"bare bool is true", []string{"--imageVerifyCacheEnabled=false", "--imageVerifyCacheEnabled"}, true, time.Hour, ""},
		{"last wins", []string{"--imageVerifyCacheEnabled=false", "--imageVerifyCacheEnabled=true"}, true, time.Hour, ""},
		{"ttl", []string{"--imageVerifyCacheTTLDuration=90s"}, true, 90 * time.Second, ""},
		{"ttl as the next arg", []string{"--imageVerifyCacheTTLDuration", "2m", "--servicePort=443"}, true, 2 * time.Minute, ""},
		{"ttl 0 is the default", []string{"--imageVerifyCacheTTLDuration=0s"}, true, time.Hour, ""},
		{"negative ttl stores nothing", []string{"--imageVerifyCacheTTLDuration=-5m"}, false, 0, ""},
		{"other flags' values skipped", []string{"--tufMirror", "https://x", "--imageVerifyCacheEnabled=false"}, false, 0, ""},
		{"parsing stops at --", []string{"--", "--imageVerifyCacheEnabled=false"}, true, time.Hour, ""},
		{"bad bool", []string{"--imageVerifyCacheEnabled=nope"}, false, 0, "imageVerifyCacheEnabled"},
		{"bad duration", []string{"--imageVerifyCacheTTLDuration=1hour"}, false, 0, "imageVerifyCacheTTLDuration"},
		{"ttl without a value", []string{"--imageVerifyCacheTTLDuration"}, false, 0, "imageVerifyCacheTTLDuration"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := verifyCacheFromArgs(tc.args)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.on != tc.on || (c.on && c.ttl != tc.ttl) {
				t.Errorf("got on=%v ttl=%s, want on=%v ttl=%s", c.on, c.ttl, tc.on, tc.ttl)
			}
		})
	}
}

// TestUnsignedProbeRefusedIsNoPass: a quota or RBAC that
// refuses the unsigned probe before admission decided says nothing of the
// signing policy (EVIDENCE rules 1 and 5): it is not fail-closed, and the
// run must not PASS on it, as a refused signed probe does not.
func TestUnsignedProbeRefusedIsNoPass(t *testing.T) {
	kc := cluster(t, admission{canaryNeedsLog: true, unsignedQuota: true})
	clk := clocktesting.NewFakeClock(time.Now())
	s := newScenario(kc, clk)
	ctx := context.Background()
	if err := s.Preflight(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Inject(ctx, &journal{kc: kc}); err != nil {
		t.Fatal(err)
	}
	var m marks
	if err := s.Recover(ctx, &m); err != nil {
		t.Fatal(err)
	}
	v, err := s.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Failures) != 0 || !strings.Contains(v.Inconclusive, "the probe of the unsigned image "+unsigned+" was refused before admission decided") {
		t.Errorf("failures %q inconclusive %q findings %q: want INCONCLUSIVE, the unsigned probe refused before admission decided", v.Failures, v.Inconclusive, v.Findings)
	}
}

// TestVerifyCacheBareBoolStopsParsing: Go's flag package
// does not give a bool flag the next arg: "--profile true" stops parsing
// at "true", and every flag after it is ignored, so Kyverno runs with its
// cache on whatever follows. Read as "--profile=true" the cache would look
// off: the drill would not wait it out, and a signed image answered from
// it would be credited to the key-based fallback.
func TestVerifyCacheBareBoolStopsParsing(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"Kyverno's bool flag, bare", []string{"--profile", "true", "--imageVerifyCacheEnabled=false"}},
		{"a flag Kyverno's flag.go does not define", []string{"--someNewToggle", "on", "--imageVerifyCacheEnabled=false"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := verifyCacheFromArgs(tc.args)
			if err == nil && !c.on {
				t.Errorf("args %q read as the cache off; Kyverno may stop parsing before the flag that turns it off", tc.args)
			}
		})
	}
}
