// Package admissionprobe is the admission-probe scenario: a server-side
// dry-run pod create that admission must deny (an unsigned image, a
// privileged pod in a restricted namespace). PASS when denied as expected,
// FAIL when admitted, INCONCLUSIVE when admission could not answer. Nothing
// is ever persisted. An optional positive control (a signed image) must be
// admitted, so a webhook that denies everything does not pass.
//
// What a PASS rests on, rule by rule of EVIDENCE.md:
//
//  1. Positive evidence: a denial from admission itself (a Forbidden or
//     Invalid answer to the dry-run create), not the absence of an answer.
//  2. This run: the answer is to this run's own request (dry run, named
//     after the run); nothing cached is read.
//  3. What happened: admission's answer, not the policy's configuration.
//  4. One clock: the check's duration is the engine's.
//  5. Errors: a timeout, 5xx or any answer that is not admission's decision
//     is INCONCLUSIVE; with reasonContains, only a denial carrying that text
//     counts, another denial is a FAIL (the control under test did not
//     answer).
//  6. Scope: the probe namespace the drill names (opted in).
//  7. Nothing is written: server-side dry runs only.
//  8. Same on both sides: the positive control is asked the same way, so a
//     webhook that denies everything is told apart.
//  9. Visible safeguards: an undecided control is INCONCLUSIVE, named.
package admissionprobe

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
)

// Name is the scenario kind.
const Name = "admission-probe"

// Params are the drill's spec.params.
type Params struct {
	// Attempt is the pod admission must deny.
	Attempt PodSpec `json:"attempt"`
	// ReasonContains, when set, must appear in the denial message (e.g. the
	// policy name), so a denial for another reason does not pass.
	ReasonContains string `json:"reasonContains,omitempty"`
	// PositiveControl, when set, is a pod admission must admit.
	PositiveControl *PodSpec `json:"positiveControl,omitempty"`
}

// PodSpec is the part of a pod a probe sets.
type PodSpec struct {
	Image      string `json:"image"`
	Privileged bool   `json:"privileged,omitempty"`
	RunAsRoot  bool   `json:"runAsRoot,omitempty"`
	// Restricted makes the pod comply with the Pod Security "restricted"
	// level (non-root, no privilege escalation, all capabilities dropped,
	// RuntimeDefault seccomp): a positive control in a restricted namespace.
	Restricted bool `json:"restricted,omitempty"`
	// ServiceAccount defaults to "default".
	ServiceAccount string `json:"serviceAccount,omitempty"`
	// Labels are added to the pod's (a policy may match on them, as a
	// canary's does); drillbot's own labels win.
	Labels map[string]string `json:"labels,omitempty"`
}

// Outcome is what admission answered.
type Outcome string

// Outcomes.
const (
	Admitted Outcome = "admitted"
	Denied   Outcome = "denied"
	// Unanswered: admission failed to decide (webhook unreachable, timeout).
	Unanswered Outcome = "unanswered"
	// Refused: the request was refused, but not by an admission decision
	// (RBAC, an exceeded quota, a malformed probe): it says nothing about
	// the policy under test.
	Refused Outcome = "refused"
)

// admissionDenials are how the API server words a refusal decided by
// admission: a webhook (Kyverno, Gatekeeper), Pod Security, a
// ValidatingAdmissionPolicy, the image policy webhook.
var admissionDenials = []string{
	"admission webhook ", // ... "x" denied the request
	"violates PodSecurity",
	"ValidatingAdmissionPolicy ",
	"image policy webhook",
}

func admissionDenied(msg string) bool {
	for _, d := range admissionDenials {
		if strings.Contains(msg, d) && (d != "admission webhook " || strings.Contains(msg, "denied the request")) {
			return true
		}
	}
	return false
}

// Result is one probe's answer.
type Result struct {
	Outcome Outcome
	Message string
}

// Probe asks admission, with a server-side dry run, whether it would create
// the pod. Nothing is persisted.
func Probe(ctx context.Context, c kubernetes.Interface, ns, runName string, p PodSpec) Result {
	labels := map[string]string{}
	maps.Copy(labels, p.Labels)
	labels[v1alpha1.LabelRun], labels["app.kubernetes.io/managed-by"] = runName, "drillbot"
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "drillbot-probe-", Namespace: ns, Labels: labels},
		Spec: corev1.PodSpec{
			ServiceAccountName: p.ServiceAccount,
			Containers:         []corev1.Container{{Name: "probe", Image: p.Image}},
		},
	}
	if p.Restricted {
		pod.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}
		pod.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false),
			Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}
	}
	if p.Privileged || p.RunAsRoot {
		sc := &corev1.SecurityContext{}
		if p.Privileged {
			sc.Privileged = &p.Privileged
		}
		if p.RunAsRoot {
			root := int64(0)
			sc.RunAsUser = &root
		}
		pod.Spec.Containers[0].SecurityContext = sc
	}
	_, err := c.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	return Classify(err)
}

// Classify maps a create error to an Outcome. Denials are Forbidden or
// Invalid answers decided by admission ("admission webhook ... denied the
// request", "violates PodSecurity", a ValidatingAdmissionPolicy); any other
// refusal (RBAC, quota, validation of the probe itself) is Refused; a
// webhook that could not be called or timed out left the question
// unanswered.
func Classify(err error) Result {
	if err == nil {
		return Result{Outcome: Admitted}
	}
	msg := err.Error()
	denial := (apierrors.IsForbidden(err) || apierrors.IsInvalid(err) || apierrors.IsBadRequest(err)) && admissionDenied(msg)
	switch {
	// A webhook's denial is its answer, whatever its reason quotes: a
	// policy whose own call timed out (Kyverno's apiCall to a log that
	// drops packets) says "context deadline exceeded" in its message.
	case denial && !strings.Contains(msg, "failed calling webhook"):
		return Result{Outcome: Denied, Message: msg}
	case strings.Contains(msg, "failed calling webhook"), strings.Contains(msg, "context deadline exceeded"),
		errors.Is(err, context.DeadlineExceeded), apierrors.IsTimeout(err), apierrors.IsServerTimeout(err),
		apierrors.IsInternalError(err), apierrors.IsServiceUnavailable(err):
		return Result{Outcome: Unanswered, Message: msg}
	case apierrors.IsForbidden(err), apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		return Result{Outcome: Refused, Message: msg}
	}
	return Result{Outcome: Unanswered, Message: msg}
}

// Deps are what the scenario needs.
type Deps struct {
	Kube      kubernetes.Interface
	Protected []string
}

// Kind is the admission-probe scenario kind.
type Kind struct{ Deps Deps }

var _ engine.Kind = Kind{}

// ReadOnly implements engine.ReadOnly: a probe is a server-side dry run.
func (Kind) ReadOnly() bool { return true }

// ValidateParams implements engine.Kind.
func (Kind) ValidateParams(spec v1alpha1.DrillSpec, path *field.Path) field.ErrorList {
	var p Params
	errs := drill.DecodeParams(spec.Params, &p, path)
	if p.Attempt.Image == "" {
		errs = append(errs, field.Required(path.Child("attempt", "image"), "the image of the pod admission must deny"))
	}
	if p.Attempt.Restricted && (p.Attempt.Privileged || p.Attempt.RunAsRoot) {
		errs = append(errs, field.Invalid(path.Child("attempt", "restricted"), true, "restricted contradicts privileged and runAsRoot"))
	}
	if p.PositiveControl != nil && p.PositiveControl.Image == "" {
		errs = append(errs, field.Required(path.Child("positiveControl", "image"), "the image of the pod admission must admit"))
	}
	return errs
}

// New implements engine.Kind.
func (k Kind) New(def drill.Definition, runName string) (engine.Scenario, error) {
	var p Params
	if err := drill.Params(def.Spec, &p); err != nil {
		return nil, err
	}
	return &scenario{deps: k.Deps, params: p, ns: def.Spec.Target.Namespace, run: runName}, nil
}

type scenario struct {
	deps   Deps
	params Params
	ns     string
	run    string
}

// Preflight implements engine.Scenario: the namespace must exist and be opted in.
func (s *scenario) Preflight(ctx context.Context) error {
	return namespacerestore.CheckOptIn(ctx, s.deps.Kube, s.ns, s.deps.Protected)
}

// Inject implements engine.Scenario. A dry run injects no fault and records
// nothing: there is nothing to undo.
func (s *scenario) Inject(context.Context, engine.Journal) error { return nil }

// Recover implements engine.Scenario: nothing was broken.
func (s *scenario) Recover(context.Context, engine.Milestones) error { return nil }

// Verify implements engine.Scenario: the probes themselves.
func (s *scenario) Verify(ctx context.Context) (engine.Verification, error) {
	var v engine.Verification
	r := Probe(ctx, s.deps.Kube, s.ns, s.run, s.params.Attempt)
	switch r.Outcome {
	case Admitted:
		v.Failures = append(v.Failures, fmt.Sprintf("admission ADMITTED the pod with image %s%s: it must be denied", s.params.Attempt.Image, privileged(s.params.Attempt)))
	case Unanswered:
		v.Inconclusive = "admission did not answer: " + r.Message
	case Refused:
		v.Inconclusive = "the probe was refused before admission decided (not a policy denial): " + r.Message
	case Denied:
		if s.params.ReasonContains != "" && !strings.Contains(r.Message, s.params.ReasonContains) {
			v.Failures = append(v.Failures, fmt.Sprintf("denied, but not for the expected reason %q: %s", s.params.ReasonContains, r.Message))
		} else {
			v.Findings = append(v.Findings, "denied as expected: "+r.Message)
		}
	}
	if pc := s.params.PositiveControl; pc != nil {
		c := Probe(ctx, s.deps.Kube, s.ns, s.run, *pc)
		switch c.Outcome {
		case Admitted:
			v.Findings = append(v.Findings, "positive control admitted: "+pc.Image)
		case Denied:
			v.Failures = append(v.Failures, fmt.Sprintf("positive control %s was denied (admission may deny everything): %s", pc.Image, c.Message))
		case Unanswered, Refused:
			if v.Inconclusive == "" {
				v.Inconclusive = "admission did not decide on the positive control: " + c.Message
			}
		}
	}
	return v, nil
}

func privileged(p PodSpec) string {
	if p.Privileged {
		return " (privileged)"
	}
	return ""
}

// Revert implements engine.Scenario; a dry run records no entry to revert.
func (s *scenario) Revert(context.Context, v1alpha1.JournalEntry) error { return nil }
