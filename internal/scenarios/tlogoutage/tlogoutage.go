// Package tlogoutage is the transparency-log-outage scenario: the runbook's
// Rekor row (the log down: RTO 30 min, RPO 0, "fall back to key-based
// signatures"). A NetworkPolicy cuts the admission controller's pods
// (Kyverno's) off from the log's addresses only; while it holds, admission
// is asked (server-side dry runs, as admission-probe does) about a pod with
// a key-signed image, which must be admitted (deploys go on), and one with
// an unsigned image, which must be denied (the outage did not turn
// verification off); the block is lifted and both are asked again.
//
// That the block took effect is shown by a canary: a pod that a policy
// admits only while the admission controller reaches the log (a Kyverno
// rule calling the log's API). Admitted before, denied by its own policy
// during (before the probes and again after them), admitted after.
//
// What a PASS rests on, by EVIDENCE.md's rules:
//  1. Positive evidence: the signed image admitted and the unsigned one
//     denied (for params.reasonContains) by admission's own answers, during
//     the block and after it; a probe that got no decision is no PASS.
//  2. Tied to this run: the canary admitted before the block and denied
//     during it; Kyverno's image-verification cache (on by default, 60 min)
//     would answer the signed image from a verification made while the log
//     was reachable (drillbot's own preflight probe fills it), so with the
//     cache on the probes wait its TTL after the canary's denial, and the
//     drill is refused when that wait does not fit timeouts.recover and
//     objectives.rto.
//  3. What runs: the cache's settings are read from the running pods'
//     container args (Kyverno's flags), not from a chart or Deployment;
//     they are read again after the probes.
//  4. One clock: the quiet period, the detection window and the cache wait
//     are drillbot's own waits.
//  5. Errors are not evidence: only a denial naming the canary's policy
//     (params.canaryReasonContains, default the shipped policy's name)
//     shows the log out of reach; a 503, a webhook timeout, a NotFound or
//     another policy's denial is asked again within the detection window,
//     then the run is INCONCLUSIVE. The canary asked again after the probes
//     must still be denied so; admitted, or only errors: INCONCLUSIVE, and
//     the probes' answers are not credited.
//  6. Scope: the block selects only the target's pods and cuts off only the
//     log's CIDRs; the probes ask in params.probeNamespace.
//  7. Nothing is deleted: the probes are dry runs; the block is journaled
//     before it is created.
//  8. Not worse than the truth: a probe refused before admission decided
//     (RBAC, a quota) is INCONCLUSIVE, not a FAIL; the cache wait is
//     refused up front rather than timing out Recover or the RTO.
package tlogoutage

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/scenarios/admissionprobe"
	"github.com/drillbot-io/drillbot/internal/scenarios/blockegress"
	"github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
)

// Name is the scenario kind.
const Name = "transparency-log-outage"

// PolicyName is the NetworkPolicy drillbot creates.
const PolicyName = "drillbot-block-tlog"

// Narrowest blocks allowed: a wider one cuts off far more than a log.
const (
	minPrefixV4 = 16
	minPrefixV6 = 48
)

// Params are the drill's spec.params. The admission controller's pods are
// spec.target.selector in spec.target.namespace.
type Params struct {
	// LogCIDRs are the transparency log's addresses (Rekor's), the only
	// ones the block cuts off. A NetworkPolicy cannot name a host: resolve
	// it (and keep the list current; a CDN's addresses change).
	LogCIDRs []string `json:"logCIDRs"`
	// ProbeNamespace is where admission is asked (a namespace the signing
	// policy applies to); it must be opted in like any target.
	ProbeNamespace string `json:"probeNamespace"`
	// Signed is a pod with a key-signed image: admitted throughout.
	Signed admissionprobe.PodSpec `json:"signed"`
	// Unsigned is a pod with an unsigned image: denied throughout.
	Unsigned admissionprobe.PodSpec `json:"unsigned"`
	// ReasonContains, when set, must appear in the unsigned pod's denial.
	ReasonContains string `json:"reasonContains,omitempty"`
	// Canary is a pod admitted only while the admission controller reaches
	// the log: the evidence that the block took effect.
	Canary admissionprobe.PodSpec `json:"canary"`
	// CanaryReasonContains must appear in the canary's denial: only its own
	// policy's denial shows the log out of reach (default
	// DefaultCanaryReason, the shipped policy's name, which Kyverno's
	// denial names).
	CanaryReasonContains string `json:"canaryReasonContains,omitempty"`
	// QuietPeriod: after the block, nothing is asked for this long, so a
	// connection to the log the admission controller keeps alive is closed
	// before the canary is asked: enforcers that track connections
	// (kube-router, Calico) let an established one through, and Go's HTTP
	// clients (Kyverno's) close idle ones after 90 s. Default 100s.
	QuietPeriod *v1alpha1.Duration `json:"quietPeriod,omitempty"`
	// DetectionWindow: a canary still admitted this long after the quiet
	// period makes the run INCONCLUSIVE (default 2m).
	DetectionWindow v1alpha1.Duration `json:"detectionWindow,omitempty"`
}

// Deps are what the scenario needs.
type Deps struct {
	Kube      kubernetes.Interface
	Clock     clock.PassiveClock
	Protected []string
}

// Kind is the scenario kind.
type Kind struct{ Deps Deps }

var _ engine.Kind = Kind{}

// ValidateParams implements engine.Kind.
func (Kind) ValidateParams(spec v1alpha1.DrillSpec, path *field.Path) field.ErrorList {
	var p Params
	errs := drill.DecodeParams(spec.Params, &p, path)
	if len(spec.Target.Selector) == 0 {
		errs = append(errs, field.Required(field.NewPath("spec", "target", "selector"), "the admission controller's pods (Kyverno's) to cut off from the log"))
	}
	if len(p.LogCIDRs) == 0 {
		errs = append(errs, field.Required(path.Child("logCIDRs"), "the transparency log's addresses"))
	}
	for i, c := range p.LogCIDRs {
		if err := checkCIDR(c); err != nil {
			errs = append(errs, field.Invalid(path.Child("logCIDRs").Index(i), c, err.Error()))
		}
	}
	if p.ProbeNamespace == "" {
		errs = append(errs, field.Required(path.Child("probeNamespace"), "the namespace where admission is asked (the signing policy applies there)"))
	} else if msgs := validation.IsDNS1123Label(p.ProbeNamespace); len(msgs) > 0 {
		errs = append(errs, field.Invalid(path.Child("probeNamespace"), p.ProbeNamespace, strings.Join(msgs, "; ")))
	}
	for name, pod := range map[string]admissionprobe.PodSpec{"signed": p.Signed, "unsigned": p.Unsigned, "canary": p.Canary} {
		if pod.Image == "" {
			errs = append(errs, field.Required(path.Child(name, "image"), "the image of the "+name+" probe pod"))
		}
	}
	if p.CanaryReasonContains != "" && strings.TrimSpace(p.CanaryReasonContains) == "" {
		errs = append(errs, field.Invalid(path.Child("canaryReasonContains"), p.CanaryReasonContains, "blank: every denial would contain it"))
	}
	if p.DetectionWindow != "" {
		if d, err := time.ParseDuration(string(p.DetectionWindow)); err != nil || d <= 0 {
			errs = append(errs, field.Invalid(path.Child("detectionWindow"), p.DetectionWindow, "not a positive duration"))
		}
	}
	if p.QuietPeriod != nil {
		if d, err := time.ParseDuration(string(*p.QuietPeriod)); err != nil || d < 0 {
			errs = append(errs, field.Invalid(path.Child("quietPeriod"), *p.QuietPeriod, "not a duration of 0s or more"))
		}
	}
	return errs
}

// checkCIDR accepts an address or a prefix no wider than the minimum.
func checkCIDR(s string) error {
	pfx, err := parseCIDR(s)
	if err != nil {
		return err
	}
	narrowest := minPrefixV6
	if pfx.Addr().Is4() {
		narrowest = minPrefixV4
	}
	if pfx.Bits() < narrowest {
		return fmt.Errorf("wider than /%d: the block would cut off far more than the log", narrowest)
	}
	return nil
}

func parseCIDR(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("not an address or CIDR")
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("not an address or CIDR")
	}
	if pfx.Masked() != pfx {
		return netip.Prefix{}, fmt.Errorf("host bits set (the network is %s)", pfx.Masked())
	}
	return pfx, nil
}

// New implements engine.Kind.
func (k Kind) New(def drill.Definition, runName string) (engine.Scenario, error) {
	var p Params
	if err := drill.Params(def.Spec, &p); err != nil {
		return nil, err
	}
	window, quiet := 2*time.Minute, DefaultQuietPeriod
	if p.DetectionWindow != "" {
		window, _ = time.ParseDuration(string(p.DetectionWindow))
	}
	if p.QuietPeriod != nil {
		quiet, _ = time.ParseDuration(string(*p.QuietPeriod))
	}
	if k.Deps.Clock == nil {
		k.Deps.Clock = clock.RealClock{}
	}
	// The cache wait must fit the recover phase and the RTO it measures.
	var limit time.Duration
	for _, d := range []time.Duration{def.Timeouts.Recover, def.RTO} {
		if d > 0 && (limit == 0 || d < limit) {
			limit = d
		}
	}
	return &scenario{deps: k.Deps, p: p, ns: def.Spec.Target.Namespace, selector: def.Spec.Target.Selector,
		run: runName, window: window, quiet: quiet, interval: 2 * time.Second, limit: limit, timer: time.After}, nil
}

// DefaultQuietPeriod outlasts Go's HTTP idle-connection timeout (90 s).
const DefaultQuietPeriod = 100 * time.Second

// DefaultCanaryReason is the shipped canary policy's name
// (examples/kyverno/tlog-canary.yaml): Kyverno names the policy in every
// denial it words ("... blocked due to the following policies
// drillbot-tlog-canary: ...").
const DefaultCanaryReason = "drillbot-tlog-canary"

// heldAttempts bounds the asks of the canary after the probes when it
// answers with errors.
const heldAttempts = 3

type scenario struct {
	deps     Deps
	p        Params
	ns, run  string
	selector map[string]string
	window   time.Duration
	quiet    time.Duration // after the block, before the canary is asked
	interval time.Duration // between canary probes
	limit    time.Duration // timeouts.recover or objectives.rto, the shorter; 0: none
	timer    func(time.Duration) <-chan time.Time

	np    *networkingv1.NetworkPolicy // built in Preflight
	pods  int
	cidrs []netip.Prefix
	cache cacheSeen // Kyverno's image-verification cache, read in Preflight

	// The evidence of the block, set by Recover.
	effect bool // the canary was denied by its policy during the block
	// admitted and errs count the canary's other answers while waiting for
	// the denial; lastErr is the last answer that was not evidence.
	admitted, errs int
	lastErr        admissionprobe.Result
	// held is the canary's answer after the probes: denied by its policy
	// when the block still held.
	held admissionprobe.Result
	// cacheDoubt, when set, says why the probes' answers may have come
	// from Kyverno's cache after all (read again after the probes).
	cacheDoubt string
	// What admission answered while the log was cut off (with effect).
	during probes
}

type probes struct {
	signed, unsigned admissionprobe.Result
}

// ask probes the signed and the unsigned pod.
func (s *scenario) ask(ctx context.Context) probes {
	return probes{signed: s.probe(ctx, s.p.Signed), unsigned: s.probe(ctx, s.p.Unsigned)}
}

// Preflight implements engine.Scenario: both namespaces opted in, the pods
// there, no policy left over, the API server outside the block, and
// admission answering as it must before anything is cut off.
func (s *scenario) Preflight(ctx context.Context) error {
	for _, ns := range []string{s.ns, s.p.ProbeNamespace} {
		if err := namespacerestore.CheckOptIn(ctx, s.deps.Kube, ns, s.deps.Protected); err != nil {
			return err
		}
	}
	pods, err := s.deps.Kube.CoreV1().Pods(s.ns).List(ctx, metav1.ListOptions{LabelSelector: metav1.FormatLabelSelector(&metav1.LabelSelector{MatchLabels: s.selector})})
	if err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	if len(pods.Items) == 0 {
		return engine.Refuse("no pods match %v in %s", s.selector, s.ns)
	}
	s.pods = len(pods.Items)
	// Before any probe (the preflight's own verification of the signed
	// image fills the cache).
	if s.cache, err = readCache(pods.Items); err != nil {
		return engine.Refuse("%v", err)
	}
	if c := s.cache; c.on {
		if need := s.quiet + s.window + c.ttl + cacheMargin; s.limit > 0 && need >= s.limit {
			return engine.Refuse("Kyverno's image-verification cache is on (TTL %s, pod %s): during the block it would admit the signed image "+
				"from a verification made while the log was reachable (this drill's own preflight probe is one), without verifying it. "+
				"The probes would have to wait the TTL after the block takes effect: quiet period + detection window + TTL (%s) is more than "+
				"timeouts.recover or objectives.rto allow (%s). Turn the cache off (--imageVerifyCacheEnabled=false; in Kyverno's chart "+
				"admissionController.container.extraArgs.imageVerifyCacheEnabled: \"false\", quoted, as the chart drops a false value) or "+
				"shorten it (--imageVerifyCacheTTLDuration; 0 means 60m)", c.ttl, c.pod, need, s.limit)
		}
	}
	if _, err := s.deps.Kube.NetworkingV1().NetworkPolicies(s.ns).Get(ctx, PolicyName, metav1.GetOptions{}); err == nil {
		return fmt.Errorf("NetworkPolicy %s/%s already exists (left by an earlier run?): refusing", s.ns, PolicyName)
	}
	s.cidrs = nil
	for _, c := range s.p.LogCIDRs {
		pfx, err := parseCIDR(c)
		if err != nil {
			return engine.Refuse("log CIDR %q: %v", c, err)
		}
		s.cidrs = append(s.cidrs, pfx)
	}
	api, ports, err := blockegress.APIServerPeers(ctx, s.deps.Kube)
	if err != nil {
		return err
	}
	for _, peer := range api {
		a, _ := netip.ParsePrefix(peer.IPBlock.CIDR)
		for _, pfx := range s.cidrs {
			if pfx.Contains(a.Addr()) {
				return engine.Refuse("log CIDR %s contains the API server's address %s: the block would cut the admission controller off the API server too", pfx, a.Addr())
			}
		}
	}
	s.np = s.policy(api, ports)
	// Before the block: the canary and the signed pod admitted, the
	// unsigned one denied. Otherwise the drill would measure a cluster
	// already broken, and name the outage as the cause.
	if r := s.probe(ctx, s.p.Canary); r.Outcome != admissionprobe.Admitted {
		return engine.Refuse("the canary (%s) is not admitted while the log is reachable (%s: %s): it cannot show the block's effect", s.p.Canary.Image, r.Outcome, r.Message)
	}
	if r := s.probe(ctx, s.p.Signed); r.Outcome != admissionprobe.Admitted {
		return engine.Refuse("the signed image %s is not admitted before the block (%s: %s): deploys already fail", s.p.Signed.Image, r.Outcome, r.Message)
	}
	if r := s.probe(ctx, s.p.Unsigned); !s.deniedAsExpected(r) {
		return engine.Refuse("the unsigned image %s is not denied as expected before the block (%s: %s): signature verification is not enforced now", s.p.Unsigned.Image, r.Outcome, r.Message)
	}
	return nil
}

func (s *scenario) probe(ctx context.Context, p admissionprobe.PodSpec) admissionprobe.Result {
	return admissionprobe.Probe(ctx, s.deps.Kube, s.p.ProbeNamespace, s.run, p)
}

func (s *scenario) deniedAsExpected(r admissionprobe.Result) bool {
	return r.Outcome == admissionprobe.Denied && strings.Contains(r.Message, s.p.ReasonContains)
}

// canaryDenied: the canary's own policy denied it (the log out of reach).
// Anything else (an error, another policy's denial) says nothing of the
// log (EVIDENCE rule 5).
func (s *scenario) canaryDenied(r admissionprobe.Result) bool {
	return r.Outcome == admissionprobe.Denied && strings.Contains(r.Message, s.canaryReason())
}

func (s *scenario) canaryReason() string {
	if strings.TrimSpace(s.p.CanaryReasonContains) == "" {
		return DefaultCanaryReason
	}
	return s.p.CanaryReasonContains
}

// policy allows the selected pods every egress but to the log's
// addresses: DNS, the API server, every pod, and any address outside the
// log's CIDRs. (Rules add up: the narrower allowances keep what an
// enforcer's ipBlock may not cover, such as pods and the API server.)
func (s *scenario) policy(api []networkingv1.NetworkPolicyPeer, apiPorts []networkingv1.NetworkPolicyPort) *networkingv1.NetworkPolicy {
	var v4, v6 []string
	for _, pfx := range s.cidrs {
		if pfx.Addr().Is4() {
			v4 = append(v4, pfx.String())
		} else {
			v6 = append(v6, pfx.String())
		}
	}
	slices.Sort(v4)
	slices.Sort(v6)
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	dns := intstr.FromInt32(53)
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: PolicyName, Namespace: s.ns, Labels: map[string]string{v1alpha1.LabelRun: s.run, "app.kubernetes.io/managed-by": "drillbot"}},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: s.selector},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{
				{To: []networkingv1.NetworkPolicyPeer{
					{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: v4}},
					{IPBlock: &networkingv1.IPBlock{CIDR: "::/0", Except: v6}},
				}},
				{Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &dns}, {Protocol: &tcp, Port: &dns}}},
				{To: api, Ports: apiPorts},
				{To: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}}}},
			},
		},
	}
}

// Inject implements engine.Scenario: the undo first, then the block.
func (s *scenario) Inject(ctx context.Context, j engine.Journal) error {
	if err := j.Record(ctx, "block-tlog", fmt.Sprintf("NetworkPolicy %s/%s denies egress from the pods %s to the transparency log (%s); undo: delete it",
		s.ns, PolicyName, labels.FormatLabels(s.selector), strings.Join(s.p.LogCIDRs, ", ")),
		blockegress.Undo{Namespace: s.ns, Policy: PolicyName, Run: s.run}); err != nil {
		return err
	}
	if _, err := s.deps.Kube.NetworkingV1().NetworkPolicies(s.ns).Create(ctx, s.np, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create NetworkPolicy: %w", err)
	}
	return nil
}

// Recover implements engine.Scenario: wait for the canary's policy to deny
// it (the log is out of reach), wait out Kyverno's image-verification
// cache, ask about the signed and unsigned pods, ask the canary again (the
// block still holds), lift the block, wait for the canary to be admitted
// again.
func (s *scenario) Recover(ctx context.Context, m engine.Milestones) error {
	if err := s.sleep(ctx, s.quiet); err != nil {
		return err
	}
	start := s.deps.Clock.Now()
	for {
		r := s.probe(ctx, s.p.Canary)
		if s.canaryDenied(r) {
			s.effect = true
			break
		}
		if r.Outcome == admissionprobe.Admitted {
			s.admitted++
		} else {
			s.errs, s.lastErr = s.errs+1, r
		}
		if s.deps.Clock.Since(start) >= s.window {
			break
		}
		if err := s.sleep(ctx, s.interval); err != nil {
			return err
		}
	}
	if s.effect {
		m.Mark("log-unreachable")
		// Every cache entry set while the log was reachable was set before
		// the canary's denial: after the TTL it is gone.
		if s.cache.on {
			if err := s.sleep(ctx, s.cache.ttl+cacheMargin); err != nil {
				return err
			}
		}
		s.during = s.ask(ctx)
		m.Mark("outage-probed")
		s.held = s.askHeld(ctx)
		s.cacheDoubt = s.recheckCache(ctx)
	}
	if err := blockegress.DeletePolicy(ctx, s.deps.Kube, s.ns, PolicyName, s.run); err != nil {
		return err
	}
	m.Mark("unblocked")
	// Recovered: the canary admitted again, i.e. the admission controller
	// reaches the log. The phase's timeout bounds the wait.
	for s.probe(ctx, s.p.Canary).Outcome != admissionprobe.Admitted {
		if err := s.sleep(ctx, s.interval); err != nil {
			return fmt.Errorf("the canary is not admitted again after the block was lifted: %w", err)
		}
	}
	m.Mark("log-reachable")
	return nil
}

// askHeld asks the canary after the probes: denied by its policy when the
// block still holds; admitted ends the asking; an error is asked again, a
// bounded number of times.
func (s *scenario) askHeld(ctx context.Context) admissionprobe.Result {
	var r admissionprobe.Result
	for i := range heldAttempts {
		if i > 0 && s.sleep(ctx, s.interval) != nil {
			break
		}
		if r = s.probe(ctx, s.p.Canary); s.canaryDenied(r) || r.Outcome == admissionprobe.Admitted {
			break
		}
	}
	return r
}

// recheckCache reads the admission controller's pods again after the
// probes: a pod started since the preflight may cache longer than was
// waited, or not be readable at all.
func (s *scenario) recheckCache(ctx context.Context) string {
	pods, err := s.deps.Kube.CoreV1().Pods(s.ns).List(ctx, metav1.ListOptions{LabelSelector: metav1.FormatLabelSelector(&metav1.LabelSelector{MatchLabels: s.selector})})
	if err != nil {
		return fmt.Sprintf("the admission controller's pods could not be read after the probes (%v): whether Kyverno's image-verification cache answered them is unknown", err)
	}
	c, err := readCache(pods.Items)
	if err != nil {
		return fmt.Sprintf("after the probes: %v", err)
	}
	if c.on && (!s.cache.on || c.ttl > s.cache.ttl) {
		waited := "no wait"
		if s.cache.on {
			waited = "a wait of " + (s.cache.ttl + cacheMargin).String()
		}
		return fmt.Sprintf("after the probes, pod %s runs with Kyverno's image-verification cache on (TTL %s), which %s after the block took effect does not outlast: "+
			"the signed image's admission may have come from a verification made while the log was reachable", c.pod, c.ttl, waited)
	}
	return ""
}

func (s *scenario) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-s.timer(d):
		return nil
	}
}

// Verify implements engine.Scenario.
func (s *scenario) Verify(ctx context.Context) (engine.Verification, error) {
	var v engine.Verification
	admittedWhy := fmt.Sprintf("the CNI may not enforce NetworkPolicy, the log may have other addresses than %s, or a connection to the log opened before the block "+
		"was let through: a longer quietPeriod than %s lets it close", strings.Join(s.p.LogCIDRs, ", "), s.quiet)
	switch {
	case !s.effect && s.errs == 0:
		v.Inconclusive = fmt.Sprintf("the block had no effect: the canary (%s) was still admitted %s after the log's addresses were cut off (%s); nothing is proven",
			s.p.Canary.Image, s.quiet+s.window, admittedWhy)
	case !s.effect:
		v.Inconclusive = fmt.Sprintf("the canary (%s) was never denied by its policy (a denial containing %q) within %s after the block: "+
			"%d answers admitted it, %d were errors or other refusals that say nothing of the log (last: %s: %s); nothing is proven. "+
			"A webhook timeout here is Kyverno's call to the log outlasting the webhook's timeout: Kyverno's --apiCallTimeout (30s by default) "+
			"shorter than the canary policy's webhookTimeoutSeconds makes a cut-off log show as the policy's own denial",
			s.p.Canary.Image, s.canaryReason(), s.quiet+s.window, s.admitted, s.errs, s.lastErr.Outcome, s.lastErr.Message)
		if s.admitted > 0 {
			v.Inconclusive += "; while admitted: " + admittedWhy
		}
	case s.held.Outcome == admissionprobe.Admitted:
		v.Inconclusive = fmt.Sprintf("the canary (%s) was admitted again after the signed and unsigned probes, with the block in place: "+
			"the block did not hold, and the probes' answers may not have been given while the log was out of reach", s.p.Canary.Image)
	case !s.canaryDenied(s.held):
		v.Inconclusive = fmt.Sprintf("the block was not shown to hold through the probes: asked again after them, the canary (%s) got no denial by its policy "+
			"in %d asks (last: %s: %s)", s.p.Canary.Image, heldAttempts, s.held.Outcome, s.held.Message)
	case s.cacheDoubt != "":
		v.Inconclusive = s.cacheDoubt
	}
	if s.effect {
		if v.Inconclusive == "" {
			if s.judge(&v, "while the log was unreachable", s.during) {
				v.Findings = append(v.Findings, "while the log was unreachable: signed image admitted (key-based fallback), unsigned image denied: "+s.during.unsigned.Message)
			}
		} else {
			// Said, not credited: they may not have been answered under the
			// outage (or from Kyverno's cache).
			var u engine.Verification
			s.judge(&u, "not credited, during the block", s.during)
			v.Findings = append(append(v.Findings, u.Failures...), u.Findings...)
			if u.Inconclusive != "" {
				v.Findings = append(v.Findings, u.Inconclusive)
			}
		}
	}
	s.judge(&v, "after the log came back", s.ask(ctx))
	return v, nil
}

// judge records in v what admission got wrong; true when it admitted the
// signed image and denied the unsigned one as expected.
func (s *scenario) judge(v *engine.Verification, when string, p probes) bool {
	ok := true
	switch r := p.signed; r.Outcome {
	case admissionprobe.Admitted:
	case admissionprobe.Refused:
		ok = false
		if v.Inconclusive == "" {
			v.Inconclusive = fmt.Sprintf("%s: the probe of the signed image %s was refused before admission decided (RBAC, a quota: not a policy decision): %s", when, s.p.Signed.Image, r.Message)
		}
	default:
		ok = false
		v.Failures = append(v.Failures, fmt.Sprintf("%s: deploys stop: the signed image %s was %s (the key-based fallback does not work): %s", when, s.p.Signed.Image, r.Outcome, r.Message))
	}
	switch r := p.unsigned; r.Outcome {
	case admissionprobe.Admitted:
		ok = false
		v.Failures = append(v.Failures, fmt.Sprintf("%s: FAIL-OPEN: the unsigned image %s was ADMITTED", when, s.p.Unsigned.Image))
	case admissionprobe.Denied:
		if !strings.Contains(r.Message, s.p.ReasonContains) {
			ok = false
			v.Failures = append(v.Failures, fmt.Sprintf("%s: the unsigned image was denied, but not for the expected reason %q: %s", when, s.p.ReasonContains, r.Message))
		}
	case admissionprobe.Refused:
		// RBAC or a quota refused it: the signing policy may never have
		// been asked, so this is not fail-closed either.
		ok = false
		if v.Inconclusive == "" {
			v.Inconclusive = fmt.Sprintf("%s: the probe of the unsigned image %s was refused before admission decided (RBAC, a quota: not a policy decision): %s", when, s.p.Unsigned.Image, r.Message)
		}
	default: // not admitted (fail-closed), but not decided either
		ok = false
		v.Findings = append(v.Findings, fmt.Sprintf("%s: the unsigned image was not admitted, but admission did not decide (%s): %s", when, r.Outcome, r.Message))
	}
	return ok
}

// Revert implements engine.Scenario: delete the run's policy (idempotent).
func (s *scenario) Revert(ctx context.Context, e v1alpha1.JournalEntry) error {
	return blockegress.RevertPolicy(ctx, s.deps.Kube, e)
}

// Evidence implements engine.Evidencer: the transparency log (Rekor) is
// cut off from the admission controller.
func (Kind) Evidence(v1alpha1.DrillSpec) (string, []string) {
	return engine.TestControlOutage, []string{"transparency log (Rekor)"}
}
