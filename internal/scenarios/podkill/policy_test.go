package podkill

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/engine"
)

// fakeNet answers drillbot's connections to the canary as a policy
// engine would: accept decides from whether the check's policy exists and
// the test's phase, or decide, when set, answers per address and may also
// fail for its own reasons. The policy is read from the fake's object
// tracker, not through the Fake, so a reactor that holds the Fake's lock
// (to stage a race) does not stall the watch.
type fakeNet struct {
	kube   *fake.Clientset
	mu     sync.Mutex
	phase  string // "before" the kill, "outage" after it, "after" recovery
	accept func(phase string, policy bool) bool
	decide func(ctx context.Context, addr string, policy bool) error
}

func (f *fakeNet) setPhase(p string) { f.mu.Lock(); f.phase = p; f.mu.Unlock() }

func (f *fakeNet) set(d func(ctx context.Context, addr string, policy bool) error) {
	f.mu.Lock()
	f.decide = d
	f.mu.Unlock()
}

var errRefused = fmt.Errorf("connect: %w", syscall.ECONNREFUSED)

func (f *fakeNet) Dial(ctx context.Context, _, addr string) (net.Conn, error) {
	_, err := f.kube.Tracker().Get(networkingv1.SchemeGroupVersion.WithResource("networkpolicies"), "canary", CheckPolicyName)
	policy := err == nil
	f.mu.Lock()
	decide, phase := f.decide, f.phase
	f.mu.Unlock()
	if decide != nil {
		if err := decide(ctx, addr, policy); err != nil {
			return nil, err
		}
	} else if !f.accept(phase, policy) {
		return nil, errRefused
	}
	a, b := net.Pipe()
	_ = b.Close()
	return a, nil
}

func canaryPodObj(name, uid string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "canary", UID: types.UID(uid), Labels: map[string]string{"app": "canary"}},
		Status: corev1.PodStatus{PodIP: "10.0.0." + uid, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}}
}

func policyWorld(t *testing.T, accept func(phase string, policy bool) bool, objs ...runtime.Object) (*scenario, *fakeNet, *clocktesting.FakeClock) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "canary", Labels: map[string]string{v1alpha1.LabelAllowDisaster: "true"}}}
	kube := fake.NewClientset(append([]runtime.Object{ns, canaryPodObj("c1", "1"), canaryPodObj("c2", "2")}, objs...)...)
	f := &fakeNet{kube: kube, phase: "before", accept: accept}
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC))
	s := &scenario{deps: Deps{Kube: kube, Clock: clk, Dial: f.Dial}, run: "run-1", log: slog.New(slog.DiscardHandler),
		check: &policyCheck{p: PolicyCheck{Namespace: "canary", Selector: map[string]string{"app": "canary"}, Port: 8080}, window: time.Second}}
	return s, f, clk
}

// enforcing is a policy engine that works: the policy stops connections.
func enforcing(_ string, policy bool) bool { return !policy }

// TestPolicyCheckOutcomes drives the check through the drill's phases
// against fake enforcers, each a way the evidence can lie.
func TestPolicyCheckOutcomes(t *testing.T) {
	cases := []struct {
		name   string
		accept func(phase string, policy bool) bool
		// during runs in the outage, before Recover's wait
		during func(s *scenario, f *fakeNet, clk *clocktesting.FakeClock)
		// readyLater: the replacements are Ready a second after the kill
		// (on the fake clock); else at once.
		readyLater       bool
		rehearsalUnknown string // Inject's rehearsal ends INCONCLUSIVE
		recoverFails     string // Recover's wait fails (FAIL)
		recoverUnknown   string
		failures         []string
		inconclusive     string
		finding          string
	}{
		{name: "enforced during the outage: PASS with the delay", accept: enforcing,
			finding: "a NetworkPolicy made right after the kill was enforced 0s later, after the killed pods' replacements were Ready (drillbot's connections to 2 canary pod(s) in canary refused"},
		{name: "drillbot's path is not policed: nothing killed, INCONCLUSIVE", accept: func(string, bool) bool { return true },
			rehearsalUnknown: "did not stop drillbot's connections"},
		{name: "the canary stays silent once the rehearsal's policy is lifted", accept: func(p string, _ bool) bool { return false },
			rehearsalUnknown: "did not accept drillbot's connections again"},
		{name: "the policy made during the outage is never enforced: FAIL", accept: func(p string, policy bool) bool { return p == "outage" || !policy },
			recoverFails: "the NetworkPolicy made during the outage is not enforced: 2 of 2"},
		{name: "silent at the kill, open once the replacements are Ready: FAIL, not a recovery before Ready",
			accept:     func(p string, policy bool) bool { return p == "after" || !policy },
			readyLater: true,
			during: func(s *scenario, f *fakeNet, clk *clocktesting.FakeClock) {
				time.Sleep(600 * time.Millisecond) // rounds see every canary refusing
				clk.Step(time.Second)              // the replacements are Ready now
				f.setPhase("after")
			},
			recoverFails: "not enforced: 2 of 2"},
		{name: "the canary is silent for its own reasons: INCONCLUSIVE after the policy is lifted",
			accept:       func(p string, policy bool) bool { return p == "before" && !policy },
			inconclusive: "did not accept drillbot's connections again"},
		{name: "enforcement that comes and goes after recovery: FAIL",
			accept: func(p string, policy bool) bool { return p == "after" || !policy },
			during: func(s *scenario, f *fakeNet, clk *clocktesting.FakeClock) {
				go func() { // once Recover has counted on the stretch, the policy leaks
					for {
						s.check.mu.Lock()
						counted := s.check.counted
						s.check.mu.Unlock()
						if counted {
							f.setPhase("after")
							return
						}
						time.Sleep(20 * time.Millisecond)
					}
				}()
			},
			failures: []string{"stopped being enforced: 2 of 2 canary pods accepted drillbot's connections again", "not enforced at verification: 2 of 2"}},
		{name: "a canary pod replaced during the outage: INCONCLUSIVE",
			accept: enforcing,
			during: func(s *scenario, f *fakeNet, clk *clocktesting.FakeClock) {
				ctx := context.Background()
				_ = f.kube.CoreV1().Pods("canary").Delete(ctx, "c2", metav1.DeleteOptions{})
				_, _ = f.kube.CoreV1().Pods("canary").Create(ctx, canaryPodObj("c2", "3"), metav1.CreateOptions{})
			},
			recoverUnknown: "the canary pods changed during the outage"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s, f, clk := policyWorld(t, tc.accept)
			s.check.canary, _ = s.canaryPods(ctx)
			j := &recordedJournal{}
			err := s.rehearsePolicy(ctx, j)
			if len(j.undos) != 1 {
				t.Fatalf("the policy's undo was not recorded before it was made: %+v", j.undos)
			}
			if tc.rehearsalUnknown != "" {
				if !engine.IsUnknown(err) || !strings.Contains(err.Error(), tc.rehearsalUnknown) {
					t.Fatalf("rehearsal: %v, want INCONCLUSIVE %q", err, tc.rehearsalUnknown)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			f.setPhase("outage")
			if err := s.policyDuringOutage(ctx); err != nil {
				t.Fatal(err)
			}
			defer s.stopPolicyWatch()
			s.ready = clk.Now()
			if tc.readyLater {
				s.ready = clk.Now().Add(time.Second)
			}
			if tc.during != nil {
				tc.during(s, f, clk)
			}
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			err = s.waitPolicyEnforced(rctx)
			switch {
			case tc.recoverFails != "":
				if err == nil || engine.IsUnknown(err) || !strings.Contains(err.Error(), tc.recoverFails) {
					t.Fatalf("recover: %v, want a failure %q", err, tc.recoverFails)
				}
				return
			case tc.recoverUnknown != "":
				if !engine.IsUnknown(err) || !strings.Contains(err.Error(), tc.recoverUnknown) {
					t.Fatalf("recover: %v, want INCONCLUSIVE %q", err, tc.recoverUnknown)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			time.Sleep(600 * time.Millisecond) // rounds after recovery
			var v engine.Verification
			if err := s.verifyPolicy(ctx, &v); err != nil {
				t.Fatal(err)
			}
			if _, err := f.kube.NetworkingV1().NetworkPolicies("canary").Get(ctx, CheckPolicyName, metav1.GetOptions{}); err == nil {
				t.Error("the policy is still there after verification")
			}
			if len(v.Failures) != len(tc.failures) {
				t.Fatalf("failures %q, want %q", v.Failures, tc.failures)
			}
			for i, want := range tc.failures {
				if !strings.Contains(v.Failures[i], want) {
					t.Errorf("failure %q, want %q", v.Failures[i], want)
				}
			}
			if tc.inconclusive == "" && v.Inconclusive != "" || !strings.Contains(v.Inconclusive, tc.inconclusive) {
				t.Errorf("inconclusive %q, want %q", v.Inconclusive, tc.inconclusive)
			}
			if tc.finding != "" && (len(v.Findings) != 1 || !strings.HasPrefix(v.Findings[0], tc.finding)) {
				t.Errorf("findings %q, want %q", v.Findings, tc.finding)
			}
			if tc.finding == "" && len(v.Findings) > 0 && tc.failures == nil {
				t.Errorf("findings %q on a run without evidence", v.Findings)
			}
		})
	}
}

// Every refusal of the check comes before the first write.
func TestPolicyPreflightRefusals(t *testing.T) {
	cases := []struct {
		name   string
		accept func(string, bool) bool
		mutate func(*fake.Clientset)
		want   string
	}{
		{name: "namespace not opted in", accept: enforcing, mutate: func(c *fake.Clientset) {
			ns, _ := c.CoreV1().Namespaces().Get(context.Background(), "canary", metav1.GetOptions{})
			ns.Labels = nil
			_, _ = c.CoreV1().Namespaces().Update(context.Background(), ns, metav1.UpdateOptions{})
		}, want: "canary"},
		{name: "a policy of the check's name is left", accept: enforcing, mutate: func(c *fake.Clientset) {
			s := &scenario{run: "old", check: &policyCheck{p: PolicyCheck{Namespace: "canary", Selector: map[string]string{"app": "canary"}}}}
			_, _ = c.NetworkingV1().NetworkPolicies("canary").Create(context.Background(), s.checkPolicy(), metav1.CreateOptions{})
		}, want: "already there"},
		{name: "no Ready canary", accept: enforcing, mutate: func(c *fake.Clientset) {
			_ = c.CoreV1().Pods("canary").Delete(context.Background(), "c1", metav1.DeleteOptions{})
			_ = c.CoreV1().Pods("canary").Delete(context.Background(), "c2", metav1.DeleteOptions{})
		}, want: "no Ready canary pod"},
		{name: "a canary does not answer before the drill", accept: func(string, bool) bool { return false }, want: "0 of 2 canary pods"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, f, _ := policyWorld(t, tc.accept)
			if tc.mutate != nil {
				tc.mutate(f.kube)
			}
			f.kube.ClearActions()
			err := s.preflightPolicy(context.Background())
			if !engine.IsRefused(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("preflight: %v, want a refusal %q", err, tc.want)
			}
			for _, a := range f.kube.Actions() {
				if a.GetVerb() != "get" && a.GetVerb() != "list" {
					t.Errorf("preflight wrote: %s %s", a.GetVerb(), a.GetResource().Resource)
				}
			}
		})
	}
}

// The undo deletes this run's policy and never another run's.
func TestRevertPolicyCheck(t *testing.T) {
	ctx := context.Background()
	s, f, _ := policyWorld(t, enforcing)
	if err := s.makePolicy(ctx); err != nil {
		t.Fatal(err)
	}
	j := &recordedJournal{}
	_ = j.Record(ctx, "policy-check", "", nil)
	entry := v1alpha1.JournalEntry{ID: "1", Action: "policy-check", Undo: []byte(`{"namespace":"canary","policy":"` + CheckPolicyName + `","run":"run-1"}`)}
	other := entry
	other.Undo = []byte(`{"namespace":"canary","policy":"` + CheckPolicyName + `","run":"another"}`)
	if err := s.Revert(ctx, other); err != nil {
		t.Fatal(err)
	}
	if _, err := f.kube.NetworkingV1().NetworkPolicies("canary").Get(ctx, CheckPolicyName, metav1.GetOptions{}); err != nil {
		t.Fatalf("another run's undo deleted this run's policy: %v", err)
	}
	f.kube.PrependReactor("delete", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		t.Error("the policy's undo touched pods")
		return true, nil, nil
	})
	if err := s.Revert(ctx, entry); err != nil {
		t.Fatal(err)
	}
	if _, err := f.kube.NetworkingV1().NetworkPolicies("canary").Get(ctx, CheckPolicyName, metav1.GetOptions{}); err == nil {
		t.Fatal("the undo left the policy")
	}
}

func TestValidateNetworkPolicyParams(t *testing.T) {
	cases := []struct {
		params string
		want   []string
	}{
		{`{"networkPolicy":{"namespace":"c","selector":{"app":"x"},"port":8080}}`, nil},
		{`{"networkPolicy":{"selector":{"app":"x"},"port":8080}}`, []string{"spec.params.networkPolicy.namespace"}},
		{`{"networkPolicy":{"namespace":"c","port":8080}}`, []string{"spec.params.networkPolicy.selector"}},
		{`{"networkPolicy":{"namespace":"c","selector":{"app":"x y"},"port":8080}}`, []string{"spec.params.networkPolicy.selector"}},
		{`{"networkPolicy":{"namespace":"c","selector":{"app":"x"},"port":0}}`, []string{"spec.params.networkPolicy.port"}},
		{`{"networkPolicy":{"namespace":"c","selector":{"app":"x"},"port":8080,"prot":"tcp"}}`, []string{"spec.params"}},
	}
	for _, tc := range cases {
		t.Run(tc.params, func(t *testing.T) {
			spec := v1alpha1.DrillSpec{Params: []byte(tc.params), Target: v1alpha1.Target{Namespace: "app", Selector: map[string]string{"app": "web"}}}
			errs := Kind{}.ValidateParams(spec, field.NewPath("spec", "params"))
			if len(errs) != len(tc.want) {
				t.Fatalf("errors %v, want fields %v", errs, tc.want)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(errs[i].Field, w) {
					t.Errorf("error %v, want field %s", errs[i], w)
				}
			}
		})
	}
}
