package podkill

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/scenarios/blockegress"
	"github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
)

// A NetworkPolicy check (params.networkPolicy) makes a policy engine's
// recovery (kill-calico-node) mean what the runbook means: a policy change
// made while the engine is down is enforced again, not only its pods Ready.
//
// drillbot connects to the canary pods itself (TCP, pod IP and port): it
// runs as a pod, so its connections are pod traffic the policy engine
// polices. Before the kill it proves that a deny-all-ingress policy on the
// canary stops those connections and that lifting it lets them through
// again (else the run cannot measure anything: INCONCLUSIVE, nothing
// killed). Right after the kill it makes the same policy again and probes
// in rounds; recovery waits for a round begun after the killed pods'
// replacements were Ready in which every canary refused. Verify needs
// every round since and one more to refuse (else FAIL: enforcement that
// came and went is not recovery), the canary pods to be the Ready pods
// seen before, and, once the policy is lifted, the canary to answer again
// (else INCONCLUSIVE: a silence that outlives the policy was not the
// policy's). The enforcement delay reported is from the policy's creation
// to the end of the first round of the stretch that held.

// CheckPolicyName is the NetworkPolicy the check makes in the canary's
// namespace (labelled with the run).
const CheckPolicyName = "drillbot-policy-check"

// PolicyCheck is params.networkPolicy.
type PolicyCheck struct {
	// Namespace of the canary pods (opted in like any target).
	Namespace string `json:"namespace"`
	// Selector of the canary pods: Ready pods that accept TCP connections
	// on Port.
	Selector map[string]string `json:"selector"`
	// Port the canary pods listen on.
	Port int32 `json:"port"`
}

// policyWindow bounds each wait for the enforcer to apply or lift the
// policy before the kill, and for the canary to answer again after it.
const policyWindow = 30 * time.Second

// dialTimeout bounds one connection attempt: a policy engine that drops
// (Calico) lets it time out, one that rejects (kube-router) fails it at
// once.
const dialTimeout = time.Second

// probeEvery is the pause between two rounds of connections.
const probeEvery = 250 * time.Millisecond

type canaryPod struct {
	name string
	uid  types.UID
	addr string
}

// policyCheck is the state of one run's check.
type policyCheck struct {
	p      PolicyCheck
	canary []canaryPod
	window time.Duration // policyWindow; shorter in tests
	// made is when the policy made during the outage was created.
	made time.Time
	done chan struct{} // closed when the watch has ended
	stop context.CancelFunc

	mu sync.Mutex
	// since is when the current stretch of rounds in which every canary
	// refused drillbot's connections was first seen whole (the end of its
	// first round; zero while a canary does not refuse); last and lastEnd
	// are the start and end of the stretch's newest round; newest is the
	// newest round's count.
	since, last, lastEnd time.Time
	newest               round
	// counted is set once Recover counted the policy enforced: any accept
	// from then on is a leak, broken the first one. enforcedAt is the
	// enforcement time the finding reports, silentFrom the start of the
	// stretch Recover counted on.
	counted                bool
	enforcedAt, silentFrom time.Time
	broken                 string
}

// probe is one connection's outcome.
type probe int

const (
	accepted probe = iota
	// refused: rejected (RST, ICMP unreachable: kube-router) or dropped
	// until the attempt's own timeout (Calico), what a policy does.
	refused
	// failed: any other error (no route, the dialer itself, the round
	// cut short): not the policy's answer.
	failed
)

func (s *scenario) dial(ctx context.Context, addr string) probe {
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	c, err := s.deps.Dial(dctx, "tcp", addr)
	if err == nil {
		_ = c.Close()
		return accepted
	}
	var ne net.Error
	switch {
	case ctx.Err() != nil:
		return failed // cut short: no answer
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return refused
	}
	return failed
}

// round is one connection to every canary.
type round struct{ accepted, refused, failed int }

func (s *scenario) probeRound(ctx context.Context) round {
	var r round
	for _, c := range s.check.canary {
		switch s.dial(ctx, c.addr) {
		case accepted:
			r.accepted++
		case refused:
			r.refused++
		default:
			r.failed++
		}
	}
	return r
}

// reachable counts the canary pods that accept a connection.
func (s *scenario) reachable(ctx context.Context) int { return s.probeRound(ctx).accepted }

// waitReachable waits until every canary accepts (want) or none does.
func (s *scenario) waitReachable(ctx context.Context, want bool) bool {
	ctx, cancel := context.WithTimeout(ctx, s.check.window)
	defer cancel()
	for {
		r := s.probeRound(ctx)
		if ctx.Err() != nil {
			return false // a round cut short is no evidence either way
		}
		if (want && r.accepted == len(s.check.canary)) || (!want && r.refused == len(s.check.canary)) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(probeEvery):
		}
	}
}

// canaryPods lists the Ready canary pods with their addresses.
func (s *scenario) canaryPods(ctx context.Context) ([]canaryPod, error) {
	c := s.check.p
	l, err := s.deps.Kube.CoreV1().Pods(c.Namespace).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(c.Selector).String()})
	if err != nil {
		return nil, engine.Unknown(fmt.Errorf("list the canary pods in %s: %w", c.Namespace, err))
	}
	var out []canaryPod
	for _, p := range l.Items {
		if p.DeletionTimestamp != nil || !podReady(&p) || p.Status.PodIP == "" {
			continue
		}
		out = append(out, canaryPod{name: p.Name, uid: p.UID, addr: net.JoinHostPort(p.Status.PodIP, strconv.Itoa(int(c.Port)))})
	}
	slices.SortFunc(out, func(a, b canaryPod) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

// preflightPolicy: the canary's namespace is opted in, no policy of the
// check's name is there, the canary pods are Ready and accept drillbot's
// connections.
func (s *scenario) preflightPolicy(ctx context.Context) error {
	c := s.check.p
	if err := namespacerestore.CheckOptIn(ctx, s.deps.Kube, c.Namespace, s.deps.Protected); err != nil {
		return err
	}
	if _, err := s.deps.Kube.NetworkingV1().NetworkPolicies(c.Namespace).Get(ctx, CheckPolicyName, metav1.GetOptions{}); err == nil {
		return engine.Refuse("NetworkPolicy %s/%s is already there (an earlier run's?): the check would not be this run's", c.Namespace, CheckPolicyName)
	} else if !apierrors.IsNotFound(err) {
		return engine.Unknown(fmt.Errorf("read NetworkPolicy %s/%s: %w", c.Namespace, CheckPolicyName, err))
	}
	pods, err := s.canaryPods(ctx)
	if err != nil {
		return err
	}
	if len(pods) == 0 {
		return engine.Refuse("no Ready canary pod matches %v in %s", c.Selector, c.Namespace)
	}
	s.check.canary = pods
	if n := s.reachable(ctx); n != len(pods) {
		return engine.Refuse("%d of %d canary pods in %s accept drillbot's connections on port %d before the drill: nothing to measure (with the chart's networkPolicy.enabled, allow drillbot's egress to them in networkPolicy.egress.extra)", n, len(pods), c.Namespace, c.Port)
	}
	return nil
}

func (s *scenario) checkPolicy() *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: CheckPolicyName, Namespace: s.check.p.Namespace,
			Labels: map[string]string{v1alpha1.LabelRun: s.run, "app.kubernetes.io/managed-by": "drillbot"}},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: s.check.p.Selector},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}},
	}
}

func (s *scenario) makePolicy(ctx context.Context) error {
	if _, err := s.deps.Kube.NetworkingV1().NetworkPolicies(s.check.p.Namespace).Create(ctx, s.checkPolicy(), metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
		// Another run's check on the same canary (the one-run lock is the
		// target's): this run cannot tell its policy's effect.
		return engine.Unknown(fmt.Errorf("NetworkPolicy %s/%s already exists, another run's: %w", s.check.p.Namespace, CheckPolicyName, err))
	} else if err != nil {
		return fmt.Errorf("create NetworkPolicy %s/%s: %w", s.check.p.Namespace, CheckPolicyName, err)
	}
	return nil
}

// rehearsePolicy, in Inject before the kill (its undo recorded first):
// the policy stops drillbot's connections to every canary, and lifting it
// lets them through again. Either not seen within the window: the run
// cannot measure the enforcer, and nothing is killed.
func (s *scenario) rehearsePolicy(ctx context.Context, j engine.Journal) error {
	c := s.check.p
	if err := engine.RecordRehearsal(ctx, j, "policy-check", fmt.Sprintf("NetworkPolicy %s/%s denies all ingress to the canary %v (made before the kill to rehearse, and again right after it); undo: delete it", c.Namespace, CheckPolicyName, c.Selector),
		blockegress.Undo{Namespace: c.Namespace, Policy: CheckPolicyName, Run: s.run}); err != nil {
		return err
	}
	if err := s.makePolicy(ctx); err != nil {
		return err
	}
	if !s.waitReachable(ctx, false) {
		return engine.Unknown(fmt.Errorf("before the kill, a NetworkPolicy denying all ingress to the canary did not stop drillbot's connections within %s: the cluster's policy engine does not police drillbot's path (drillbot on the node's network? Calico does not police a node's traffic to its own pods), so a policy change during the outage cannot be measured; nothing was killed", s.check.window))
	}
	if err := blockegress.DeletePolicy(ctx, s.deps.Kube, c.Namespace, CheckPolicyName, s.run); err != nil {
		return err
	}
	if !s.waitReachable(ctx, true) {
		return engine.Unknown(fmt.Errorf("before the kill, the canary did not accept drillbot's connections again within %s of the policy's removal: its silence may not have been the policy's; nothing was killed", s.check.window))
	}
	return nil
}

// policyDuringOutage makes the policy again right after the kill and
// watches drillbot's connections to the canary in rounds until Verify
// stops it, keeping the stretch of rounds in which every canary refused.
func (s *scenario) policyDuringOutage(ctx context.Context) error {
	if err := s.makePolicy(ctx); err != nil {
		return err
	}
	c := s.check
	c.made = s.deps.Clock.Now()
	c.done = make(chan struct{})
	ctx, c.stop = context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		defer close(c.done)
		for {
			start := s.deps.Clock.Now()
			r := s.probeRound(ctx)
			if ctx.Err() != nil && r.accepted == 0 {
				return // a round cut short proves no refusal (an accept is a leak all the same)
			}
			end := s.deps.Clock.Now()
			c.mu.Lock()
			c.newest = r
			switch {
			case r.refused == len(c.canary):
				if c.since.IsZero() {
					c.since = end
				}
				c.last, c.lastEnd = start, end
			default:
				if r.accepted > 0 && c.counted && c.broken == "" {
					c.broken = fmt.Sprintf("%d of %d canary pods accepted drillbot's connections again at %s, after recovery was declared, with the policy still in place",
						r.accepted, len(c.canary), end.UTC().Format(time.RFC3339))
				}
				c.since = time.Time{}
			}
			c.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-time.After(probeEvery):
			}
		}
	}()
	return nil
}

// canaryChange says how the canary pods differ from those seen before
// ("" when they are the same, all Ready).
func (s *scenario) canaryChange(ctx context.Context) string {
	now, err := s.canaryPods(ctx)
	if err != nil {
		return err.Error()
	}
	var was, is []string
	for _, c := range s.check.canary {
		was = append(was, string(c.uid))
	}
	for _, c := range now {
		is = append(is, string(c.uid))
	}
	if !slices.Equal(was, is) {
		return fmt.Sprintf("the canary pods changed during the outage (%d Ready, were %d): their silence may not be the policy's", len(now), len(s.check.canary))
	}
	return ""
}

// waitPolicyEnforced is Recover's last step: a whole round that began
// after the killed pods' replacements were Ready found every canary
// refusing, within a stretch of such rounds, and the canary pods are the
// Ready pods seen before the kill (a canary that restarted or left is
// silent for its own reasons).
func (s *scenario) waitPolicyEnforced(ctx context.Context) error {
	c := s.check
	for {
		c.mu.Lock()
		ok := !c.since.IsZero() && !c.last.Before(s.ready)
		newest := c.newest
		if ok {
			// Counted under the lock: any accept from now on is a leak.
			c.counted = true
			// Silence before the replacements were Ready may be the
			// outage's, not the policy's: then enforcement is dated by the
			// newest refusing round, which began after they were Ready.
			c.enforcedAt, c.silentFrom = c.since, c.since
			if c.since.Before(s.ready) {
				c.enforcedAt = c.lastEnd
			}
		}
		c.mu.Unlock()
		if ok {
			if changed := s.canaryChange(ctx); changed != "" {
				return engine.Unknown(errors.New(changed))
			}
			return nil
		}
		select {
		case <-ctx.Done():
			if newest.accepted == 0 && newest.failed > 0 {
				return engine.Unknown(fmt.Errorf("whether the NetworkPolicy made during the outage is enforced is unknown: %d of %d connections to the canary failed for another reason than a refusal in the newest round: %w",
					newest.failed, len(c.canary), context.Cause(ctx)))
			}
			return fmt.Errorf("the NetworkPolicy made during the outage is not enforced: %d of %d canary pods accepted drillbot's connections in the newest round: %w",
				newest.accepted, len(c.canary), context.Cause(ctx))
		case <-c.done:
			return engine.Unknown(errors.New("the watch of the canary ended before the policy was seen enforced"))
		case <-time.After(probeEvery):
		}
	}
}

// verifyPolicy stops the watch; the policy must still be enforced (no
// canary accepted since recovery, none accepts now), then it is lifted
// and the canary must answer again: a silence that outlives the policy was
// not the policy's.
func (s *scenario) verifyPolicy(ctx context.Context, v *engine.Verification) error {
	c := s.check
	s.stopPolicyWatch()
	c.mu.Lock()
	made, since, silentFrom, broken := c.made, c.enforcedAt, c.silentFrom, c.broken
	c.mu.Unlock()
	if broken != "" {
		v.Failures = append(v.Failures, "the NetworkPolicy made during the outage stopped being enforced: "+broken)
	}
	if r := s.probeRound(ctx); r.accepted > 0 {
		v.Failures = append(v.Failures, fmt.Sprintf("the NetworkPolicy made during the outage is not enforced at verification: %d of %d canary pods accept drillbot's connections", r.accepted, len(c.canary)))
	} else if r.failed > 0 {
		v.Inconclusive = fmt.Sprintf("at verification, %d of %d connections to the canary failed for another reason than a refusal: the policy's hold cannot be told", r.failed, len(c.canary))
	}
	if changed := s.canaryChange(ctx); changed != "" && v.Inconclusive == "" {
		v.Inconclusive = changed
	}
	if err := blockegress.DeletePolicy(ctx, s.deps.Kube, c.p.Namespace, CheckPolicyName, s.run); err != nil {
		return err
	}
	if !s.waitReachable(ctx, true) {
		if v.Inconclusive == "" {
			v.Inconclusive = fmt.Sprintf("the canary did not accept drillbot's connections again within %s of the policy's removal: its silence during the drill may not have been the policy's", c.window)
		}
		return nil
	}
	proof := fmt.Sprintf("drillbot's connections to %d canary pod(s) in %s refused until verification, then let through once it was lifted", len(c.canary), c.p.Namespace)
	if silentFrom.Before(since) {
		v.Findings = append(v.Findings, fmt.Sprintf("a NetworkPolicy made right after the kill was enforced at the latest %s later, in the first round after the killed pods' replacements were Ready (%s); the connections were refused from %s after it was made, before they were Ready, which the outage alone may explain",
			since.Sub(made).Round(time.Millisecond), proof, silentFrom.Sub(made).Round(time.Millisecond)))
		return nil
	}
	v.Findings = append(v.Findings, fmt.Sprintf("a NetworkPolicy made right after the kill was enforced %s later, after the killed pods' replacements were Ready (%s)",
		since.Sub(made).Round(time.Millisecond), proof))
	return nil
}

// stopPolicyWatch ends the watch policyDuringOutage started, if any, and
// waits for it.
func (s *scenario) stopPolicyWatch() {
	if s.check != nil && s.check.stop != nil {
		s.check.stop()
		<-s.check.done
	}
}
