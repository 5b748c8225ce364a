package podkill

// Adversarial review of params.networkPolicy (fb0e426): each test is a way
// the check's verdict or finding can be better (or worse) than the truth.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
)

func reviewEnforcing(_ context.Context, _ string, policy bool) error {
	if policy {
		return errRefused
	}
	return nil
}

func reviewLeaking(context.Context, string, bool) error { return nil }

func reviewWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func (c *policyCheck) snapshot() (since time.Time, accepted int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.since, c.newest.accepted
}

// reviewOutage: preflight's canary, the rehearsal, then the policy made
// after the kill with its watch running (replacements Ready at once).
func reviewOutage(t *testing.T, decide func(context.Context, string, bool) error, afterRehearsal func()) (*scenario, *fakeNet, *clocktesting.FakeClock) {
	t.Helper()
	ctx := context.Background()
	s, f, clk := policyWorld(t, enforcing)
	f.set(decide)
	s.check.canary, _ = s.canaryPods(ctx)
	if err := s.rehearsePolicy(ctx, &recordedJournal{}); err != nil {
		t.Fatal(err)
	}
	if afterRehearsal != nil {
		afterRehearsal()
	}
	if err := s.policyDuringOutage(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stopPolicyWatch)
	s.ready = clk.Now()
	return s, f, clk
}

func reviewRecover(t *testing.T, s *scenario) error {
	t.Helper()
	rctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return s.waitPolicyEnforced(rctx)
}

// policy.go:303-312: Recover copies since, then lists the canary pods
// (an API call), then sets counted = the copy. A leak in between resets
// since without "broken" (counted is still zero); the new stretch has a
// new since, so counted never equals since again and no later leak is
// recorded either. Enforcement that came and went, twice, is a PASS.
func TestReviewPolicyLeakWhileRecoverListsCanaryIsLost(t *testing.T) {
	s, f, clk := reviewOutage(t, reviewEnforcing, nil)
	var armed atomic.Bool
	armed.Store(true)
	f.kube.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetNamespace() != "canary" || !armed.CompareAndSwap(true, false) {
			return false, nil, nil
		}
		// While Recover reads the canary pods, a round sees the policy leak,
		// then enforcement comes back.
		f.set(reviewLeaking)
		reviewWaitFor(t, "a leaking round", func() bool { _, n := s.check.snapshot(); return n > 0 })
		clk.Step(time.Second) // time passes (the fake clock stands still otherwise)
		f.set(reviewEnforcing)
		reviewWaitFor(t, "a refused round", func() bool { since, n := s.check.snapshot(); return n == 0 && !since.IsZero() })
		return false, nil, nil
	})
	if err := reviewRecover(t, s); err != nil {
		t.Fatal(err)
	}
	// After recovery was declared, the policy leaks again for a while.
	clk.Step(time.Second)
	f.set(reviewLeaking)
	reviewWaitFor(t, "a leaking round after recovery", func() bool { _, n := s.check.snapshot(); return n > 0 })
	clk.Step(time.Second)
	f.set(reviewEnforcing)
	reviewWaitFor(t, "a refused round", func() bool { since, n := s.check.snapshot(); return n == 0 && !since.IsZero() })
	var v engine.Verification
	if err := s.verifyPolicy(context.Background(), &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Failures) == 0 {
		t.Errorf("two leaks of the policy (one while Recover checked the canary, one after recovery) and no failure: failures %q, inconclusive %q, findings %q",
			v.Failures, v.Inconclusive, v.Findings)
	}
}

// policy.go:244-247: the round Verify cuts short is dropped whole, but an
// accepted connection in it is a leak whatever the rest of the round would
// have said. With Calico a refused dial takes the whole dialTimeout, so the
// watch is nearly always inside a dial when Verify stops it.
func TestReviewPolicyLeakInRoundCutShortIsDropped(t *testing.T) {
	s, f, _ := reviewOutage(t, reviewEnforcing, nil)
	if err := reviewRecover(t, s); err != nil {
		t.Fatal(err)
	}
	blocked := make(chan struct{})
	var once sync.Once
	f.set(func(ctx context.Context, addr string, policy bool) error {
		if strings.HasPrefix(addr, "10.0.0.1:") {
			return nil // c1 accepts with the policy in place: a leak
		}
		once.Do(func() { close(blocked) })
		<-ctx.Done() // c2: a dropped SYN, the dial runs until its deadline
		return ctx.Err()
	})
	<-blocked
	f.set(reviewEnforcing) // the leak was brief
	var v engine.Verification
	if err := s.verifyPolicy(context.Background(), &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Failures) == 0 {
		t.Errorf("c1 accepted drillbot's connection with the policy in place after recovery, and no failure: failures %q, findings %q", v.Failures, v.Findings)
	}
}

// policy.go:101-110 (dial): every error is a refusal. An error that is not
// the policy's (drillbot's own pod without a route while calico-node is
// down, the dialer failing before it connects) is counted as enforcement.
// Here the policy is never enforced during the outage; drillbot's dials
// fail for their own reason until the policy is lifted: PASS.
func TestReviewPolicyDialErrorCountsAsEnforcement(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"network unreachable", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ENETUNREACH)}},
		{"the dialer fails before connecting", errors.New("enter the network namespace of pid 4242: no such process")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var outage, down atomic.Bool
			// The enforcer enforces the rehearsal's policy, never the one
			// made during the outage; drillbot's path is down from the kill.
			s, f, _ := reviewOutage(t, func(ctx context.Context, addr string, policy bool) error {
				switch {
				case down.Load():
					return tc.err
				case !outage.Load():
					return reviewEnforcing(ctx, addr, policy)
				}
				return nil
			}, func() { outage.Store(true); down.Store(true) })
			f.kube.PrependReactor("delete", "networkpolicies", func(k8stesting.Action) (bool, runtime.Object, error) {
				down.Store(false) // drillbot's path is back by the time the policy is lifted
				return false, nil, nil
			})
			rerr := reviewRecover(t, s)
			var v engine.Verification
			if rerr == nil {
				if err := s.verifyPolicy(context.Background(), &v); err != nil {
					t.Fatal(err)
				}
			}
			if rerr == nil && len(v.Failures) == 0 && v.Inconclusive == "" {
				t.Errorf("PASS on dial errors that are not the policy's (%v): findings %q", tc.err, v.Findings)
			}
		})
	}
}

// policy.go:253-254 and 354-359: the delay is measured from the first round
// of the stretch, even when that round was before the replacements were
// Ready, where the silence cannot be told from the policy's. Here the
// canary is silent from the kill (not the policy: it is silent without it
// too), the replacements are Ready 10 s later, and only then is the policy
// enforced: the finding says "0s later, before ... Ready".
func TestReviewPolicyDelayCreditsSilenceBeforeReady(t *testing.T) {
	ctx := context.Background()
	s, f, clk := policyWorld(t, func(p string, policy bool) bool {
		if p == "outage" {
			return false // no connection gets through, policy or not
		}
		return !policy
	})
	s.check.canary, _ = s.canaryPods(ctx)
	if err := s.rehearsePolicy(ctx, &recordedJournal{}); err != nil {
		t.Fatal(err)
	}
	f.setPhase("outage")
	if err := s.policyDuringOutage(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.stopPolicyWatch()
	time.Sleep(400 * time.Millisecond)
	clk.Step(10 * time.Second)
	s.ready = clk.Now()
	f.setPhase("after") // the policy is enforced from here on
	if err := reviewRecover(t, s); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	var v engine.Verification
	if err := s.verifyPolicy(ctx, &v); err != nil {
		t.Fatal(err)
	}
	for _, fd := range v.Findings {
		if strings.Contains(fd, "before the killed pods' replacements were Ready") {
			t.Errorf("the finding credits the policy with a silence that preceded it (first enforced round began 10s after the policy was made): %q", fd)
		}
	}
}

func reviewTargetPod(name string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "calico-system", Labels: map[string]string{"k8s-app": "calico-node"},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "calico-node", UID: "ds", Controller: ptr.To(true)}}},
		Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}}
}

type stampedJournal struct {
	mu    sync.Mutex
	first time.Time
}

// RecordRehearsal is the engine's: recorded, not the disaster's start.
func (j *stampedJournal) RecordRehearsal(context.Context, string, string, any) error { return nil }

func (j *stampedJournal) Record(context.Context, string, string, any) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.first.IsZero() {
		j.first = time.Now()
	}
	return nil
}

// podkill.go:347-352 with policy.go:210: the rehearsal's journal entry is
// the run's first Record, which the engine takes as the disaster's start
// (engine.Journal: "The first Record of a run marks the disaster's start";
// engine.go:585, RTO at engine.go:628, alert detection in alerts.go:295).
// The rehearsal (up to 2 x 30 s) is charged to the RTO and the breakdown,
// and an alert fired by the rehearsal's policy is credited as detecting
// the kill.
func TestReviewPolicyRehearsalIsChargedToTheOutage(t *testing.T) {
	ctx := context.Background()
	s, f, _ := policyWorld(t, enforcing, reviewTargetPod("calico-node-a"))
	s.ns, s.selector = "calico-system", "k8s-app=calico-node"
	var made atomic.Int64
	f.kube.PrependReactor("create", "networkpolicies", func(k8stesting.Action) (bool, runtime.Object, error) {
		made.Store(time.Now().UnixNano())
		return false, nil, nil
	})
	var killedAt time.Time
	f.kube.PrependReactor("delete", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		killedAt = time.Now()
		return false, nil, nil
	})
	// The enforcer takes 300 ms to apply a new policy (Felix syncing).
	f.set(func(_ context.Context, _ string, policy bool) error {
		if policy && time.Since(time.Unix(0, made.Load())) > 300*time.Millisecond {
			return errRefused
		}
		return nil
	})
	s.check.canary, _ = s.canaryPods(ctx)
	j := &stampedJournal{}
	if err := s.Inject(ctx, j); err != nil {
		t.Fatal(err)
	}
	s.stopPolicyWatch()
	if d := killedAt.Sub(j.first); d > 100*time.Millisecond {
		t.Errorf("the disaster starts (first journal Record) %s before the pods are killed: the rehearsal is charged to the RTO", d.Round(time.Millisecond))
	}
}

// podkill.go:325-369: Inject lists the pods to kill, then rehearses (up to
// 2 x 30 s), then deletes them, ignoring NotFound. A pod that left during
// the rehearsal (a DaemonSet rollout) is still counted as killed; its
// replacement, made by the rollout, is then credited as the recovery of a
// kill that never happened (package comment, rule 1: "deleted").
func TestReviewPolicyPodGoneDuringRehearsalCountedAsKilled(t *testing.T) {
	ctx := context.Background()
	s, f, _ := policyWorld(t, enforcing, reviewTargetPod("calico-node-a"))
	s.ns, s.selector = "calico-system", "k8s-app=calico-node"
	podGVR := corev1.SchemeGroupVersion.WithResource("pods")
	var once sync.Once
	f.kube.PrependReactor("create", "networkpolicies", func(k8stesting.Action) (bool, runtime.Object, error) {
		once.Do(func() { // during the rehearsal, a rollout replaces the pod
			_ = f.kube.Tracker().Delete(podGVR, "calico-system", "calico-node-a")
			_ = f.kube.Tracker().Add(reviewTargetPod("calico-node-b"))
		})
		return false, nil, nil
	})
	s.check.canary, _ = s.canaryPods(ctx)
	var deleted []string
	f.kube.PrependReactor("delete", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		name := a.(k8stesting.DeleteAction).GetName()
		if _, err := f.kube.Tracker().Get(podGVR, "calico-system", name); err == nil {
			deleted = append(deleted, name)
		}
		return false, nil, nil
	})
	err := s.Inject(ctx, &recordedJournal{})
	s.stopPolicyWatch()
	if err == nil && len(deleted) == 0 {
		t.Errorf("Inject succeeded with killed %v, but drillbot deleted no pod (it was gone before the kill): a rollout's replacement would be this run's recovery", s.killed)
	}
}

// policy.go:197-201 and 233-234: the engine's one-run-per-target lock is
// the target's namespace (engine.TargetKey), not the canary's: two drills
// on other targets sharing a canary overlap. Another run's rehearsal
// policy, made in this run's gap between its rehearsal and its kill, makes
// the create after the kill fail AlreadyExists, returned unclassified: the
// engine's phaseFailed records a FAIL of inject, with calico-node killed
// and nothing learnt about it. drillbot's own object decided the verdict
// (rule 8); it is INCONCLUSIVE at worst.
func TestReviewPolicyAnotherRunsPolicyFailsTheRun(t *testing.T) {
	ctx := context.Background()
	s, f, _ := policyWorld(t, enforcing)
	s.check.canary, _ = s.canaryPods(ctx)
	if err := s.rehearsePolicy(ctx, &recordedJournal{}); err != nil {
		t.Fatal(err)
	}
	other := &scenario{run: "run-2", check: s.check}
	if _, err := f.kube.NetworkingV1().NetworkPolicies("canary").Create(ctx, other.checkPolicy(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err := s.policyDuringOutage(ctx)
	s.stopPolicyWatch()
	if err == nil || !engine.IsUnknown(err) {
		t.Errorf("after the kill, another run's policy of the check's name makes this run's error %v (unknown: %v): the engine records a FAIL", err, engine.IsUnknown(err))
	}
}

// Every request the check sends is planned in the phase it is sent in
// (drillbot plan lists calls by phase).
func TestReviewPolicyCallsPlannedByPhase(t *testing.T) {
	ctx := context.Background()
	s, f, clk := policyWorld(t, enforcing)
	f.set(reviewEnforcing)
	def := drill.Definition{Spec: v1alpha1.DrillSpec{Scenario: Name,
		Target: v1alpha1.Target{Namespace: "calico-system", Selector: map[string]string{"k8s-app": "calico-node"}},
		Params: []byte(`{"networkPolicy":{"namespace":"canary","selector":{"app":"canary"},"port":8080}}`)}}
	calls := Kind{}.Calls(def)
	check := func(phase v1alpha1.Phase) {
		t.Helper()
		for _, a := range f.kube.Actions() {
			name, ns := "", a.GetNamespace()
			if n, ok := a.(interface{ GetName() string }); ok {
				name = n.GetName()
			}
			r := a.GetResource()
			if r.Resource == "namespaces" {
				ns = name // the API server's request info: a namespace is its own namespace
			}
			if !slices.ContainsFunc(calls, func(c engine.Call) bool {
				return c.Phase == phase && c.Verb == a.GetVerb() && c.Group == r.Group && c.Resource == r.Resource &&
					(c.Namespace == "" || c.Namespace == ns) && (c.Name == "" || c.Name == name)
			}) {
				t.Errorf("%s sends %s %s in %q name %q, not planned in that phase", phase, a.GetVerb(), schema.GroupResource{Group: r.Group, Resource: r.Resource}, ns, name)
			}
		}
		f.kube.ClearActions()
	}
	f.kube.ClearActions()
	if err := s.preflightPolicy(ctx); err != nil {
		t.Fatal(err)
	}
	check(v1alpha1.PhasePreflight)
	if err := s.rehearsePolicy(ctx, &recordedJournal{}); err != nil {
		t.Fatal(err)
	}
	if err := s.policyDuringOutage(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.stopPolicyWatch()
	check(v1alpha1.PhaseInjecting)
	s.ready = clk.Now()
	if err := reviewRecover(t, s); err != nil {
		t.Fatal(err)
	}
	check(v1alpha1.PhaseRecovering)
	var v engine.Verification
	if err := s.verifyPolicy(ctx, &v); err != nil {
		t.Fatal(err)
	}
	check(v1alpha1.PhaseVerifying)
	_ = s.makePolicy(ctx)
	f.kube.ClearActions()
	entry := v1alpha1.JournalEntry{ID: "1", Action: "policy-check", Undo: []byte(fmt.Sprintf(`{"namespace":"canary","policy":%q,"run":"run-1"}`, CheckPolicyName))}
	if err := s.Revert(ctx, entry); err != nil {
		t.Fatal(err)
	}
	check(v1alpha1.PhaseReverting)
}
