// Package plan answers "what exactly will this drill do, and may it?"
// before it runs (drillbot plan): per phase the API calls the drill makes
// (the scenario kind's declared calls and the engine's own records), what
// its fault would hit now, the preflight verdict as it would be now, and
// for every call a SubjectAccessReview for the identity drillbot runs as.
// Like the engine, it refuses when drillbot is halted or another run holds
// the drill's target (the engine's target Lease and unfinished runs, read
// the same way), and checks the start conditions.
//
// It only reads. Preflight is the scenario's own (read-only, tested so);
// admission probes are server-side dry runs; SubjectAccessReviews persist
// nothing.
package plan

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	coordinationclient "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/utils/ptr"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/halt"
)

// Subject is the identity whose permissions are reviewed.
type Subject struct {
	User   string   `json:"user"`
	Groups []string `json:"groups,omitempty"`
}

// ServiceAccount is the subject of a service account, with the groups the
// API server gives every service account token.
func ServiceAccount(ns, name string) Subject {
	return Subject{User: "system:serviceaccount:" + ns + ":" + name,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}
}

// ParseSubject reads --as: "system:serviceaccount:NS:NAME", "NS:NAME", or a
// service account NAME in defaultNS.
func ParseSubject(as, defaultNS string) (Subject, error) {
	s := strings.TrimPrefix(as, "system:serviceaccount:")
	ns, name, ok := strings.Cut(s, ":")
	if !ok {
		ns, name = defaultNS, s
	}
	if ns == "" || name == "" || strings.Contains(name, ":") {
		return Subject{}, fmt.Errorf("--as %q: want a service account as NAME, NAMESPACE:NAME or system:serviceaccount:NAMESPACE:NAME", as)
	}
	return ServiceAccount(ns, name), nil
}

// Verdict is what plan concludes.
type Verdict string

const (
	// WouldRun: preflight passes and every call is allowed.
	WouldRun Verdict = "WOULD RUN"
	// WouldBeRefused: preflight refuses the drill now (nothing would be
	// touched).
	WouldBeRefused Verdict = "WOULD BE REFUSED"
	// WouldFail: preflight fails now (e.g. the target is not healthy).
	WouldFail Verdict = "WOULD FAIL PREFLIGHT"
	// MissingPermissions: the subject may not make some of the calls.
	MissingPermissions Verdict = "MISSING PERMISSIONS"
	// WouldNotRun: another run holds the drill's target (unfinished, or
	// its revert failed): the engine refuses every run of it until that
	// run completes.
	WouldNotRun Verdict = "WOULD NOT RUN"
	// WouldNotStart: a freeze window, a stop condition's alert or an
	// expected alert already active would hold a scheduled run now.
	WouldNotStart Verdict = "WOULD NOT START"
)

// Plan is the answer.
type Plan struct {
	Drill     string  `json:"drill"`
	Scenario  string  `json:"scenario"`
	Target    string  `json:"target"`
	Source    string  `json:"source,omitempty"`
	Subject   Subject `json:"subject"`
	Verdict   Verdict `json:"verdict"`
	Preflight string  `json:"preflight"`
	// Hits are what the fault would hit now (after a passing preflight).
	Hits  []string    `json:"hits,omitempty"`
	Calls []CallCheck `json:"calls"`
	// Denied counts the calls the subject may not make.
	Denied int `json:"denied"`
}

// CallCheck is a call and the SubjectAccessReview's answer.
type CallCheck struct {
	engine.Call
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason,omitempty"`
}

// Reviewer answers SubjectAccessReviews (the API server's authorizer).
type Reviewer interface {
	Review(ctx context.Context, s Subject, c engine.Call) (allowed bool, reason string, err error)
}

// SAR reviews through the API server's SubjectAccessReview API.
type SAR struct{ Kube kubernetes.Interface }

// Review implements Reviewer.
func (r SAR) Review(ctx context.Context, s Subject, c engine.Call) (bool, string, error) {
	res, sub, _ := strings.Cut(c.Resource, "/")
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: s.User, Groups: s.Groups,
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: c.Verb, Group: c.Group, Resource: res, Subresource: sub, Namespace: c.Namespace, Name: c.Name},
	}}
	if c.URL != "" {
		sar.Spec.ResourceAttributes = nil
		sar.Spec.NonResourceAttributes = &authorizationv1.NonResourceAttributes{Path: c.URL, Verb: c.Verb}
	}
	out, err := r.Kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		return false, "", fmt.Errorf("SubjectAccessReview %s %s: %w", c.Verb, c.Resource, err)
	}
	reason := out.Status.Reason
	if out.Status.EvaluationError != "" {
		reason = strings.TrimSpace(reason + " " + out.Status.EvaluationError)
	}
	return out.Status.Allowed, reason, nil
}

// Config is what Build needs.
type Config struct {
	// Kinds are the scenario kinds, with clients (preflight reads the
	// cluster).
	Kinds engine.Registry
	// Namespace is drillbot's (where its records go).
	Namespace string
	Reviewer  Reviewer
	// Halt, when set, is checked: a halted drillbot starts nothing.
	Halt interface {
		Halted(ctx context.Context) (string, bool, error)
	}
	// Start, when set, are the daemon's start conditions (freeze windows,
	// stop conditions, expected alerts), checked as for a scheduled run now.
	Start *engine.StartConditions
	// Now is the time they are checked at (default time.Now).
	Now func() time.Time
	// Leases and Runs, when set, are read (never written) to say whether
	// another run holds the drill's target, as the engine's lock would
	// (engine.LeaseLocks, Engine.claim).
	Leases coordinationclient.LeasesGetter
	Runs   RunReader
}

// RunReader reads drillbot's DrillRuns (engine.RunStore's reads).
type RunReader interface {
	Get(ctx context.Context, name string) (*v1alpha1.DrillRun, error)
	List(ctx context.Context, selector string) ([]v1alpha1.DrillRun, error)
}

// RecordCalls are the requests the engine itself makes for every run in
// drillbot's namespace ns: the DrillRun (the audit record, created before
// preflight, its status written at each phase), the Lease that locks the
// target, the Events, the halt switch and the cluster's drill policy, and
// the history it keeps.
func RecordCalls(ns string, t v1alpha1.Target) []engine.Call {
	p, every, done := engine.In(v1alpha1.PhasePending), engine.In(engine.AnyPhase), engine.In(v1alpha1.PhaseCompleted)
	lease := engine.LeaseName(engine.TargetKey(t))
	return []engine.Call{
		p.Call("get", "apiextensions.k8s.io", "customresourcedefinitions", "", "drillruns.drillbot.io", "the DrillRun CRD is installed"),
		p.Call("get", "", "namespaces", ns, ns, "drillbot's namespace exists"),
		p.Call("get", "", "configmaps", ns, halt.Name, "the halt switch: no run starts while it is on"),
		p.Call("list", "", "configmaps", ns, halt.Name, "watch the halt switch: every drillbot process stops its runs when it is turned on"),
		p.Call("watch", "", "configmaps", ns, halt.Name, "watch the halt switch"),
		p.Call("get", "", "configmaps", ns, halt.PolicyName, "the cluster's drill policy: stop conditions, freeze windows, Alertmanager"),
		p.Call("list", "", "configmaps", ns, halt.PolicyName, "watch the cluster's drill policy: the daemon restarts under a changed one"),
		p.Call("watch", "", "configmaps", ns, halt.PolicyName, "watch the cluster's drill policy"),
		p.Call("list", "drillbot.io", "drillruns", ns, "", "no other run holds the target"),
		p.Call("create", "drillbot.io", "drillruns", ns, "", "the DrillRun: the run's audit record, written before preflight"),
		p.Call("create", "coordination.k8s.io", "leases", ns, "", "lock the target (one run per namespace)"),
		p.Call("get", "coordination.k8s.io", "leases", ns, lease, "the target's lock, when it exists"),
		p.Call("update", "coordination.k8s.io", "leases", ns, lease, "take over the lock of a finished run"),
		every.Call("get", "drillbot.io", "drillruns", ns, "", "re-read the DrillRun after a conflicting write"),
		every.Call("update", "drillbot.io", "drillruns/status", ns, "", "phases, journal (before each fault), heartbeat, RTO/RPO, verdict"),
		every.Call("create", "", "events", ns, "", "an Event per phase, milestone and verdict"),
		every.Call("patch", "", "events", ns, "", "repeated Events are counted"),
		done.Call("delete", "coordination.k8s.io", "leases", ns, lease, "release the target's lock"),
		done.Call("list", "drillbot.io", "drillruns", ns, "", "history: the drill's runs"),
		done.Call("delete", "drillbot.io", "drillruns", ns, "", "history: DrillRuns beyond the drill's limits"),
	}
}

// Calls are all the calls a run of def makes: the engine's and the
// scenario kind's.
func Calls(def drill.Definition, kinds engine.Registry, ns string) ([]engine.Call, error) {
	k, ok := kinds[def.Spec.Scenario]
	if !ok {
		return nil, fmt.Errorf("unknown scenario kind %q", def.Spec.Scenario)
	}
	p, ok := k.(engine.Planner)
	if !ok {
		return nil, fmt.Errorf("scenario kind %q does not declare its calls", def.Spec.Scenario)
	}
	return append(RecordCalls(ns, def.Spec.Target), p.Calls(def)...), nil
}

// Build plans def against the cluster now.
func Build(ctx context.Context, cfg Config, def drill.Definition, subject Subject) (*Plan, error) {
	calls, err := Calls(def, cfg.Kinds, cfg.Namespace)
	if err != nil {
		return nil, err
	}
	p := &Plan{Drill: def.Name, Scenario: def.Spec.Scenario, Target: def.Spec.Target.Namespace, Source: def.Source, Subject: subject}
	if err := p.preflight(ctx, cfg, def); err != nil {
		return nil, err
	}
	answers := map[string]CallCheck{}
	for _, c := range calls {
		if c.Group == "*" || c.Resource == "*" {
			// Every kind discovery finds at run time: not one call to review.
			p.Calls = append(p.Calls, CallCheck{Call: c, Reason: "each kind is tried at run time"})
			continue
		}
		key := c.Verb + " " + c.Group + "/" + c.Resource + " " + c.Namespace + "/" + c.Name
		a, ok := answers[key]
		if !ok {
			allowed, reason, err := cfg.Reviewer.Review(ctx, subject, c)
			if err != nil {
				return nil, err
			}
			a = CallCheck{Allowed: allowed, Reason: reason}
			answers[key] = a
		}
		a.Call = c
		if !a.Allowed && !c.Optional {
			p.Denied++
		}
		p.Calls = append(p.Calls, a)
	}
	if p.Verdict == WouldRun && p.Denied > 0 {
		p.Verdict = MissingPermissions
	}
	return p, nil
}

// preflight runs the scenario's own Preflight (read-only) and, when it
// passes, asks what the fault would hit.
func (p *Plan) preflight(ctx context.Context, cfg Config, def drill.Definition) error {
	if cfg.Halt != nil {
		reason, on, err := cfg.Halt.Halted(ctx)
		if err != nil {
			return fmt.Errorf("read the halt switch: %w", err)
		}
		if on {
			p.Verdict, p.Preflight = WouldBeRefused, "drillbot is halted ("+reason+"): no drill starts until drillbot resume"
			return nil
		}
	}
	if held, err := heldBy(ctx, cfg, def); err != nil {
		return err
	} else if held != nil {
		p.Verdict = WouldNotRun
		p.Preflight = fmt.Sprintf("HELD by run %s (phase %s): the engine refuses every run of %s until it completes", held.Name, held.Status.Phase, targetName(def))
		if held.Status.Phase == v1alpha1.PhaseRevertFailed {
			p.Preflight += "; its revert failed: the sweep retries it, or fix what it names and see the run's record"
		}
		return nil
	}
	if cfg.Start != nil {
		now := time.Now
		if cfg.Now != nil {
			now = cfg.Now
		}
		trigger := "cli" // freeze windows hold scheduled runs only
		if def.Schedule != nil {
			trigger = engine.TriggerSchedule
		}
		if st := cfg.Start.Check(ctx, def, trigger, now()); st != nil {
			p.Verdict, p.Preflight = WouldNotStart, engine.StopReason(*st)
			return nil
		}
	}
	sc, err := cfg.Kinds[def.Spec.Scenario].New(def, "plan-"+def.Name)
	if err != nil {
		return fmt.Errorf("drill %s: %w", def.Name, err)
	}
	err = sc.Preflight(ctx)
	var refused *engine.RefusedError
	switch {
	case errors.As(err, &refused):
		p.Verdict, p.Preflight = WouldBeRefused, refused.Reason
	case err != nil:
		p.Verdict, p.Preflight = WouldFail, err.Error()
	default:
		p.Verdict, p.Preflight = WouldRun, "passes now"
		if pv, ok := sc.(engine.Previewer); ok {
			p.Hits = pv.Preview()
		}
	}
	return nil
}

// heldBy is the run that holds def's target now, if any, read as the
// engine decides it before a run (Engine.claim, then LeaseLocks.Lock): an
// unfinished run of the target, or the Lease's holder while it is not
// Completed (a holder pruned since is gone). Only reads; an unreadable
// lock is an error, never "free".
func heldBy(ctx context.Context, cfg Config, def drill.Definition) (*v1alpha1.DrillRun, error) {
	if cfg.Runs == nil {
		return nil, nil
	}
	key := engine.TargetKey(def.Spec.Target)
	runs, err := cfg.Runs.List(ctx, v1alpha1.LabelTarget+"="+engine.TargetHash(key))
	if apierrors.IsNotFound(err) {
		runs, err = nil, nil // the DrillRun CRD is not installed: no run exists
	}
	if err != nil {
		return nil, fmt.Errorf("read the runs of target %s: %w", targetName(def), err)
	}
	for i := range runs {
		if runs[i].Status.Phase != v1alpha1.PhaseCompleted {
			return &runs[i], nil
		}
	}
	if cfg.Leases == nil {
		return nil, nil
	}
	lease, err := cfg.Leases.Leases(cfg.Namespace).Get(ctx, engine.LeaseName(key), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the lock of target %s: %w", targetName(def), err)
	}
	holder := ptr.Deref(lease.Spec.HolderIdentity, "")
	if holder == "" {
		return nil, nil
	}
	r, err := cfg.Runs.Get(ctx, holder)
	if apierrors.IsNotFound(err) {
		return nil, nil // deleted: only finished runs are pruned
	}
	if err != nil {
		return nil, fmt.Errorf("read run %s, which holds the lock of target %s: %w", holder, targetName(def), err)
	}
	if r.Status.Phase == v1alpha1.PhaseCompleted {
		return nil, nil
	}
	return r, nil
}

// targetName names def's target in a sentence.
func targetName(def drill.Definition) string {
	if def.Spec.Target.Namespace == "" {
		return "targetless checks"
	}
	return "namespace " + def.Spec.Target.Namespace
}

// Phases lists the phases in run order, then the calls of every phase.
var Phases = []v1alpha1.Phase{v1alpha1.PhasePending, v1alpha1.PhasePreflight, v1alpha1.PhaseInjecting, v1alpha1.PhaseRecovering,
	v1alpha1.PhaseVerifying, v1alpha1.PhaseReverting, v1alpha1.PhaseCompleted, engine.AnyPhase, engine.BetweenRuns}

// ByPhase orders calls by phase, keeping the declared order within one.
func ByPhase(calls []CallCheck) []CallCheck {
	out := slices.Clone(calls)
	slices.SortStableFunc(out, func(a, b CallCheck) int {
		return slices.Index(Phases, a.Phase) - slices.Index(Phases, b.Phase)
	})
	return out
}

// OK reports whether the drill would run with every permission it needs.
func (p *Plan) OK() bool { return p.Verdict == WouldRun }
