// Package podkill is the pod-kill scenario: delete the selected pods of an
// opted-in namespace and measure the time until their controllers have them
// Ready again. With an admission check (kill-kyverno), recovery also needs
// admission to enforce again, and while it is down the scenario probes it:
// an unsigned image admitted is a fail-open window, every pod refused is a
// fail-closed window. Required objects (e.g. Kyverno ClusterPolicies) must
// still be there and Ready afterwards. With a NetworkPolicy check
// (kill-calico-node), recovery also needs a policy made right after the
// kill to be enforced on drillbot's own connections to canary pods.
//
// What a PASS rests on, rule by rule of EVIDENCE.md:
//
//  1. Positive evidence: at least one controlled pod was selected and
//     deleted (else refused), and as many Ready replacements, none of them
//     a killed pod, were seen; with admission, the probe was denied for the
//     drill's own reason before the kill (else refused) and again after it;
//     with a NetworkPolicy check, the policy was seen to stop drillbot's
//     connections and its removal to let them through before the kill
//     (else INCONCLUSIVE, nothing killed), and the policy made after the
//     kill stopped them in a whole round begun after the replacements were
//     Ready, every round since, and at verification.
//  2. This run: replacements are pods other than the killed ones; an
//     admission denial counts as recovery only once every killed pod is
//     gone; a pod already terminating is never counted as killed; the
//     policy carries the run's label and must not exist before the run.
//  3. What happened: pods' Ready conditions and admission's own answers to
//     server-side dry runs, not the Deployment's desired state.
//  4. One clock: the engine's stamps; probe windows on drillbot's clock.
//  5. Errors: a probe that got no answer is a fail-closed window; one denied
//     for another reason masks the control and makes the run INCONCLUSIVE.
//  6. Scope: the selector in the target namespace; webhook registrations by
//     the drill's names.
//  7. Nothing unrecoverable: a pod without a controller is refused.
//  8. Same on both sides: the same probe, the same expected reason, before
//     and after; the same canary pods (UIDs, Ready) from preflight to
//     verification, and a canary still silent once the policy is lifted
//     makes the run INCONCLUSIVE (its silence was not the policy's).
//  9. Visible safeguards: fail-open and fail-closed windows are failures or
//     findings with their counts and spans.
package podkill

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/dynamic"
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
const Name = "pod-kill"

// Params are the drill's spec.params. The pods are spec.target.selector in
// spec.target.namespace.
type Params struct {
	// GracePeriodSeconds for the deletion (default: the pods' own).
	GracePeriodSeconds *int64 `json:"gracePeriodSeconds,omitempty"`
	// Admission, when set, must enforce again for recovery, and is probed
	// while down.
	Admission *Admission `json:"admission,omitempty"`
	// RequiredObjects must exist (and be Ready, when they have a Ready
	// condition) before and after the drill.
	RequiredObjects *RequiredObjects `json:"requiredObjects,omitempty"`
	// FailOpenIsFailure makes a fail-open window a FAIL (default true).
	FailOpenIsFailure *bool `json:"failOpenIsFailure,omitempty"`
	// NetworkPolicy, when set, makes recovery include a policy change made
	// during the outage being enforced (kill-calico-node): see policy.go.
	NetworkPolicy *PolicyCheck `json:"networkPolicy,omitempty"`
}

// Admission is the admission check of a pod-kill drill.
type Admission struct {
	// Namespace to probe in (opted in; default: the target namespace).
	Namespace string `json:"namespace,omitempty"`
	// Attempt is a pod admission must deny when it works.
	Attempt admissionprobe.PodSpec `json:"attempt"`
	// ReasonContains must appear in the denial.
	ReasonContains string `json:"reasonContains,omitempty"`
	// Interval between probes while admission is down (default 2s).
	Interval v1alpha1.Duration `json:"interval,omitempty"`
	// WebhookConfigurations is a label selector of the controller's
	// validating and mutating webhook configurations (Kyverno's:
	// webhook.kyverno.io/managed-by=kyverno). Each must keep every webhook
	// and rule it had before: a loss during the drill is a finding, one
	// not restored after recovery a failure (see webhooks.go).
	WebhookConfigurations string `json:"webhookConfigurations,omitempty"`
}

// RequiredObjects name cluster-scoped or namespaced objects to keep.
type RequiredObjects struct {
	Group     string `json:"group"`
	Version   string `json:"version"`
	Resource  string `json:"resource"`
	Namespace string `json:"namespace,omitempty"`
	// Names to require; empty means every object there before the drill.
	Names []string `json:"names,omitempty"`
}

// Deps are what the scenario needs.
type Deps struct {
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
	// Clock stamps admission probes to size fail-open windows. Recovery
	// itself is stamped by the engine.
	Clock     clock.PassiveClock
	Logger    *slog.Logger
	Protected []string
	// Dial opens drillbot's own connections to a NetworkPolicy check's
	// canary pods (default: a net.Dialer's).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Kind is the pod-kill scenario kind.
type Kind struct{ Deps Deps }

var _ engine.Kind = Kind{}

// ValidateParams implements engine.Kind.
func (Kind) ValidateParams(spec v1alpha1.DrillSpec, path *field.Path) field.ErrorList {
	var p Params
	errs := drill.DecodeParams(spec.Params, &p, path)
	if len(spec.Target.Selector) == 0 {
		errs = append(errs, field.Required(field.NewPath("spec", "target", "selector"), "pod-kill needs a label selector for the pods to kill"))
	} else if _, err := labels.ValidatedSelectorFromSet(spec.Target.Selector); err != nil {
		errs = append(errs, field.Invalid(field.NewPath("spec", "target", "selector"), spec.Target.Selector, err.Error()))
	}
	if a := p.Admission; a != nil {
		if a.Attempt.Image == "" {
			errs = append(errs, field.Required(path.Child("admission", "attempt", "image"), "the pod admission must deny"))
		}
		if a.Interval != "" {
			if d, err := time.ParseDuration(string(a.Interval)); err != nil || d < 100*time.Millisecond {
				errs = append(errs, field.Invalid(path.Child("admission", "interval"), a.Interval, "a duration of at least 100ms"))
			}
		}
		if a.WebhookConfigurations != "" {
			if sel, err := labels.Parse(a.WebhookConfigurations); err != nil {
				errs = append(errs, field.Invalid(path.Child("admission", "webhookConfigurations"), a.WebhookConfigurations, err.Error()))
			} else if sel.Empty() {
				errs = append(errs, field.Invalid(path.Child("admission", "webhookConfigurations"), a.WebhookConfigurations, "a selector that selects the controller's own configurations, not every one"))
			}
		}
	}
	if c := p.NetworkPolicy; c != nil {
		np := path.Child("networkPolicy")
		if c.Namespace == "" {
			errs = append(errs, field.Required(np.Child("namespace"), "the canary pods' namespace"))
		}
		if len(c.Selector) == 0 {
			errs = append(errs, field.Required(np.Child("selector"), "a label selector of the canary pods"))
		} else if _, err := labels.ValidatedSelectorFromSet(c.Selector); err != nil {
			errs = append(errs, field.Invalid(np.Child("selector"), c.Selector, err.Error()))
		}
		if c.Port < 1 || c.Port > 65535 {
			errs = append(errs, field.Invalid(np.Child("port"), c.Port, "the TCP port the canary pods listen on (1-65535)"))
		}
	}
	if r := p.RequiredObjects; r != nil && (r.Version == "" || r.Resource == "") {
		errs = append(errs, field.Required(path.Child("requiredObjects"), "version and resource are required"))
	}
	return errs
}

// New implements engine.Kind.
func (k Kind) New(def drill.Definition, runName string) (engine.Scenario, error) {
	var p Params
	if err := drill.Params(def.Spec, &p); err != nil {
		return nil, err
	}
	d := k.Deps
	if d.Clock == nil {
		d.Clock = clock.RealClock{}
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Dial == nil {
		d.Dial = (&net.Dialer{}).DialContext
	}
	s := &scenario{deps: d, params: p, ns: def.Spec.Target.Namespace, run: runName,
		selector: labels.SelectorFromSet(def.Spec.Target.Selector).String(),
		log:      d.Logger.With("scenario", Name, "namespace", def.Spec.Target.Namespace, "run", runName)}
	if c := p.NetworkPolicy; c != nil {
		s.check = &policyCheck{p: *c, window: policyWindow}
	}
	if a := p.Admission; a != nil {
		s.probeNS, s.interval = a.Namespace, 2*time.Second
		if s.probeNS == "" {
			s.probeNS = s.ns
		}
		if a.Interval != "" {
			s.interval, _ = time.ParseDuration(string(a.Interval))
		}
	}
	return s, nil
}

type scenario struct {
	deps     Deps
	params   Params
	ns, run  string
	selector string
	log      *slog.Logger
	probeNS  string
	interval time.Duration

	found    []string // pod names Preflight found
	killed   []string // pod names deleted
	required []string // required object names found before
	probes   probeLog
	webhooks *registrationWatch // nil unless admission.webhookConfigurations
	killedAt time.Time
	stop     context.CancelFunc
	enforced chan struct{}
	check    *policyCheck // nil unless params.networkPolicy
	ready    time.Time    // when the killed pods' replacements were Ready
}

// Undo is the journal data of a pod kill: controllers recreate the pods, so
// the undo is to wait until as many are Ready again.
type Undo struct {
	Namespace string   `json:"namespace"`
	Selector  string   `json:"selector"`
	Pods      []string `json:"pods"`
}

// Preflight implements engine.Scenario.
func (s *scenario) Preflight(ctx context.Context) error {
	if err := namespacerestore.CheckOptIn(ctx, s.deps.Kube, s.ns, s.deps.Protected); err != nil {
		return err
	}
	pods, err := s.deps.Kube.CoreV1().Pods(s.ns).List(ctx, metav1.ListOptions{LabelSelector: s.selector})
	if err != nil {
		return fmt.Errorf("list pods %s in %s: %w", s.selector, s.ns, err)
	}
	if len(pods.Items) == 0 {
		return engine.Refuse("no pods match %s in %s", s.selector, s.ns)
	}
	s.found = nil
	for i := range pods.Items {
		if !controlled(&pods.Items[i]) {
			return engine.Refuse("pod %s has no controller: killing it would not be recovered", pods.Items[i].Name)
		}
		s.found = append(s.found, pods.Items[i].Name)
	}
	if err := namespacerestore.WorkloadsReady(ctx, s.deps.Kube, s.ns); err != nil {
		return fmt.Errorf("target not healthy before the drill, refusing to break it further: %w", err)
	}
	if a := s.params.Admission; a != nil {
		if s.probeNS != s.ns {
			if err := namespacerestore.CheckOptIn(ctx, s.deps.Kube, s.probeNS, s.deps.Protected); err != nil {
				return err
			}
		}
		r := admissionprobe.Probe(ctx, s.deps.Kube, s.probeNS, s.run, a.Attempt)
		if r.Outcome != admissionprobe.Denied {
			return fmt.Errorf("admission does not enforce before the drill (%s %s): nothing to measure", r.Outcome, r.Message)
		}
		if !s.expectedDenial(r) {
			// Another control (Pod Security, another policy) denies the
			// probe first: while the controller is down it would still
			// deny it, and a fail-open window would go unseen.
			return engine.Refuse("admission denies the probe, but not for the expected reason %q: %s; make the attempt pass every other control (e.g. admission.attempt.restricted: true in a Pod Security restricted namespace)", a.ReasonContains, r.Message)
		}
		if a.WebhookConfigurations != "" {
			w, err := newRegistrationWatch(ctx, s.deps.Kube, a.WebhookConfigurations)
			if err != nil {
				return err
			}
			if len(w.before) == 0 {
				return engine.Refuse("no validating or mutating webhook configuration matches %s: the admission controller is not registered as the drill says", a.WebhookConfigurations)
			}
			s.webhooks = w
		}
	}
	if r := s.params.RequiredObjects; r != nil {
		names, problems, err := s.checkRequired(ctx, r.Names)
		if err != nil {
			return err
		}
		if len(problems) > 0 {
			return fmt.Errorf("required objects not healthy before the drill: %s", strings.Join(problems, ", "))
		}
		s.required = names
	}
	if s.check != nil {
		return s.preflightPolicy(ctx)
	}
	return nil
}

func controlled(p *corev1.Pod) bool {
	for _, o := range p.OwnerReferences {
		if o.Controller != nil && *o.Controller {
			return true
		}
	}
	return false
}

// Inject implements engine.Scenario: record, then delete the pods, then
// start probing admission.
func (s *scenario) Inject(ctx context.Context, j engine.Journal) error {
	if err := s.listVictims(ctx); err != nil {
		return err
	}
	if s.check != nil {
		if err := s.rehearsePolicy(ctx, j); err != nil {
			return err
		}
		// The rehearsal took seconds: the pods to kill are the ones live
		// now (a rollout may have replaced or started deleting some).
		if err := s.listVictims(ctx); err != nil {
			if engine.IsRefused(err) {
				return engine.Unknown(fmt.Errorf("after the rehearsal: %w", err))
			}
			return err
		}
	}
	if err := j.Record(ctx, "delete-pods", fmt.Sprintf("delete %d pods %s in %s; undo: their controllers recreate them", len(s.killed), s.selector, s.ns),
		Undo{Namespace: s.ns, Selector: s.selector, Pods: s.killed}); err != nil {
		return err
	}
	if s.params.Admission != nil {
		pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		s.stop, s.enforced = cancel, make(chan struct{})
		go s.probeLoop(pctx)
	}
	if s.webhooks != nil {
		s.killedAt = s.deps.Clock.Now()
	}
	var killed []string
	for _, name := range s.killed {
		err := s.deps.Kube.CoreV1().Pods(s.ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: s.params.GracePeriodSeconds})
		if apierrors.IsNotFound(err) {
			continue // gone already: not killed by this run
		}
		if err != nil {
			return fmt.Errorf("delete pod %s: %w", name, err)
		}
		killed = append(killed, name)
	}
	if len(killed) == 0 {
		return engine.Unknown(fmt.Errorf("every pod to kill (%s) was gone before its delete: this run killed nothing", strings.Join(s.killed, ", ")))
	}
	s.killed = killed
	s.log.Info("pods deleted", "pods", s.killed)
	if s.check != nil {
		return s.policyDuringOutage(ctx)
	}
	return nil
}

// listVictims lists the live pods to kill into s.killed; with none (all
// terminating) the drill refuses.
func (s *scenario) listVictims(ctx context.Context) error {
	s.killed = nil
	pods, err := s.deps.Kube.CoreV1().Pods(s.ns).List(ctx, metav1.ListOptions{LabelSelector: s.selector})
	if err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	var leaving []string
	for _, p := range pods.Items {
		// A pod already terminating (a rollout, an eviction, an earlier
		// drill) is on its way out: killing it again is no fault, and no
		// replacement will come for it. On a real kubelet it lingers for
		// its grace period.
		if p.DeletionTimestamp != nil {
			leaving = append(leaving, p.Name)
			continue
		}
		s.killed = append(s.killed, p.Name)
	}
	if len(s.killed) == 0 {
		return engine.Refuse("every pod matching %s in %s is already terminating (%s): nothing to kill", s.selector, s.ns, strings.Join(leaving, ", "))
	}
	if len(leaving) > 0 {
		s.log.Info("pods already terminating are left alone", "pods", leaving)
	}
	return nil
}

// Recover implements engine.Scenario.
func (s *scenario) Recover(ctx context.Context, m engine.Milestones) error {
	if err := waitReplaced(ctx, s.deps.Kube, s.ns, s.selector, s.killed); err != nil {
		return err
	}
	s.ready = s.deps.Clock.Now()
	m.Mark("pods-ready")
	if err := namespacerestore.WaitWorkloadsReady(ctx, s.deps.Kube, s.ns); err != nil {
		return err
	}
	m.Mark("workloads-ready")
	if s.params.Admission != nil {
		select {
		case <-s.enforced:
		case <-ctx.Done():
			return fmt.Errorf("admission not enforcing again: %w", context.Cause(ctx))
		}
		m.Mark("admission-enforcing")
	}
	if s.check != nil {
		if err := s.waitPolicyEnforced(ctx); err != nil {
			return err
		}
		m.Mark("policy-enforced")
	}
	return nil
}

// Verify implements engine.Scenario.
func (s *scenario) Verify(ctx context.Context) (engine.Verification, error) {
	var v engine.Verification
	if s.stop != nil {
		s.stop()
		open, closed, masked, total := s.probes.windows()
		if open.count > 0 {
			msg := fmt.Sprintf("fail-open window %s: %d of %d probes while admission was down ADMITTED %s",
				open.span.Round(time.Millisecond), open.count, total, s.params.Admission.Attempt.Image)
			if s.params.FailOpenIsFailure == nil || *s.params.FailOpenIsFailure {
				v.Failures = append(v.Failures, msg)
			} else {
				v.Findings = append(v.Findings, "SECURITY: "+msg)
			}
		}
		if closed.count > 0 {
			v.Findings = append(v.Findings, fmt.Sprintf("fail-closed window %s: %d of %d probes got no answer from admission (every pod creation would be refused)",
				closed.span.Round(time.Millisecond), closed.count, total))
		}
		if masked.count > 0 {
			// Not PASS: the control under test was not seen enforcing, and
			// an admitted unsigned image may have hidden behind the denial.
			v.Inconclusive = fmt.Sprintf("%d of %d probes while admission was down (%s) were denied for another reason than %q, so a fail-open window may be hidden: %s",
				masked.count, total, masked.span.Round(time.Millisecond), s.params.Admission.ReasonContains, s.probes.firstMessage(deniedOtherwise))
		}
		if open.count == 0 && closed.count == 0 && masked.count == 0 {
			v.Findings = append(v.Findings, fmt.Sprintf("admission enforced in all %d probes during the outage", total))
		}
	}
	if w := s.webhooks; w != nil {
		still, err := w.check(ctx, s.deps.Clock.Now())
		if err != nil {
			return v, err
		}
		v.Findings = append(v.Findings, w.findings(s.killedAt)...)
		if len(still) > 0 {
			v.Failures = append(v.Failures, "after recovery, admission registration not restored: "+strings.Join(still, ", "))
		}
	}
	if s.params.RequiredObjects != nil {
		_, problems, err := s.checkRequired(ctx, s.required)
		if err != nil {
			return v, err
		}
		if len(problems) > 0 {
			v.Failures = append(v.Failures, "after recovery: "+strings.Join(problems, ", "))
		}
	}
	if s.check != nil {
		s.stopPolicyWatch()
		if err := s.verifyPolicy(ctx, &v); err != nil {
			return v, err
		}
	}
	return v, nil
}

// Revert implements engine.Scenario: wait until the selector has as many
// Ready pods as were killed, none of them the killed ones.
func (s *scenario) Revert(ctx context.Context, e v1alpha1.JournalEntry) error {
	if s.stop != nil {
		s.stop()
	}
	s.stopPolicyWatch()
	if e.Action == "policy-check" {
		return blockegress.RevertPolicy(ctx, s.deps.Kube, e)
	}
	var u Undo
	if err := json.Unmarshal(e.Undo, &u); err != nil {
		return fmt.Errorf("decode undo of %s: %w", e.ID, err)
	}
	return waitReplaced(ctx, s.deps.Kube, u.Namespace, u.Selector, u.Pods)
}

// checkRequired lists the required objects; with names it reports the
// missing ones, and for every object a Ready condition that is not True.
func (s *scenario) checkRequired(ctx context.Context, names []string) (found, problems []string, err error) {
	r := s.params.RequiredObjects
	gvr := schema.GroupVersionResource{Group: r.Group, Version: r.Version, Resource: r.Resource}
	var res dynamic.ResourceInterface = s.deps.Dynamic.Resource(gvr)
	if r.Namespace != "" {
		res = s.deps.Dynamic.Resource(gvr).Namespace(r.Namespace)
	}
	list, err := res.List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("list %s: %w", r.Resource, err)
	}
	have := map[string]*unstructured.Unstructured{}
	for i := range list.Items {
		have[list.Items[i].GetName()] = &list.Items[i]
	}
	if len(names) == 0 {
		for n := range have {
			names = append(names, n)
		}
	}
	for _, n := range names {
		obj, ok := have[n]
		if !ok {
			problems = append(problems, r.Resource+"/"+n+" missing")
			continue
		}
		found = append(found, n)
		if st, ok := readyCondition(obj); ok && st != "True" {
			problems = append(problems, r.Resource+"/"+n+" not Ready")
		}
	}
	return found, problems, nil
}

func readyCondition(u *unstructured.Unstructured) (string, bool) {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Ready" {
			st, _ := m["status"].(string)
			return st, true
		}
	}
	return "", false
}

// probeLoop probes admission every interval until it denies again after the
// kill, recording each answer.
func (s *scenario) probeLoop(ctx context.Context) {
	a := s.params.Admission
	t := time.NewTicker(s.interval)
	defer t.Stop()
	signalled := false
	for {
		pctx, cancel := context.WithTimeout(ctx, max(s.interval, 5*time.Second))
		r := admissionprobe.Probe(pctx, s.deps.Kube, s.probeNS, s.run, a.Attempt)
		cancel()
		if ctx.Err() != nil {
			return
		}
		o := r.Outcome
		if o == admissionprobe.Denied && !s.expectedDenial(r) {
			o = deniedOtherwise
		}
		s.probes.add(s.deps.Clock.Now(), o, r.Message)
		if s.webhooks != nil {
			_, _ = s.webhooks.check(ctx, s.deps.Clock.Now()) // errors are counted and reported
		}
		if o == admissionprobe.Denied && !signalled {
			// Enforcing, but only counts once the killed pods are gone:
			// a deny from a pod still terminating is not recovery.
			if gone, _ := allGone(ctx, s.deps.Kube, s.ns, s.killed); gone {
				close(s.enforced)
				signalled = true
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// deniedOtherwise is a probe denied, but not for the expected reason:
// another control answered, and the one under test may not have.
const deniedOtherwise admissionprobe.Outcome = "denied-otherwise"

// expectedDenial tells whether a denial is the one the drill checks for.
func (s *scenario) expectedDenial(r admissionprobe.Result) bool {
	rc := s.params.Admission.ReasonContains
	return r.Outcome == admissionprobe.Denied && (rc == "" || strings.Contains(r.Message, rc))
}

// probeLog records probe answers to size the windows.
type probeLog struct {
	mu      sync.Mutex
	answers []answer
}

type answer struct {
	at      time.Time
	outcome admissionprobe.Outcome
	message string
}

type window struct {
	count int
	span  time.Duration
}

func (l *probeLog) add(at time.Time, o admissionprobe.Outcome, msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.answers = append(l.answers, answer{at, o, msg})
}

// firstMessage is the message of the first answer with outcome o.
func (l *probeLog) firstMessage(o admissionprobe.Outcome) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range l.answers {
		if a.outcome == o {
			return a.message
		}
	}
	return ""
}

// windows sizes the fail-open (admitted), fail-closed (unanswered) and
// masked (denied for another reason) windows: each from its first such
// answer to the next answer of another kind (or the last answer).
func (l *probeLog) windows() (open, closed, masked window, total int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	measure := func(o admissionprobe.Outcome) window {
		var w window
		for i, a := range l.answers {
			if a.outcome != o {
				continue
			}
			w.count++
			end := a.at
			if i+1 < len(l.answers) {
				end = l.answers[i+1].at
			}
			w.span += end.Sub(a.at)
		}
		return w
	}
	return measure(admissionprobe.Admitted), measure(admissionprobe.Unanswered), measure(deniedOtherwise), len(l.answers)
}
