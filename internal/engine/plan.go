package engine

import (
	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
)

// Call is one API request a drill makes: Verb on Resource (a subresource
// as "pods/status") of Group, in Namespace (empty: cluster-scoped, or
// across all namespaces), on Name when it is known before the run (empty:
// a collection, or a name only the run learns, such as a pod's).
type Call struct {
	Phase     v1alpha1.Phase `json:"phase"`
	Verb      string         `json:"verb"`
	Group     string         `json:"group,omitempty"`
	Resource  string         `json:"resource"`
	Namespace string         `json:"namespace,omitempty"`
	Name      string         `json:"name,omitempty"`
	// Why says what the call is for, in the words of the scenario.
	Why string `json:"why"`
	// DryRun calls persist nothing (admission is asked, nothing stored).
	DryRun bool `json:"dryRun,omitempty"`
	// Optional calls may be refused: the run then reports what it could
	// not cover instead of failing. Group and Resource "*" stand for every
	// kind the API server serves (discovered at run time).
	Optional bool `json:"optional,omitempty"`
	// URL, when set, makes this a non-resource request (e.g. get
	// /metrics); Group and Resource are empty.
	URL string `json:"url,omitempty"`
}

// Mutating reports whether the call changes the cluster.
func (c Call) Mutating() bool {
	switch c.Verb {
	case "get", "list", "watch":
		return false
	}
	return !c.DryRun
}

// Planner is a Kind that says which calls each phase of a drill makes
// (drillbot plan). The calls are a promise the integration tests check:
// every request a run sends is one of them, and drillbot's derived RBAC
// grants exactly what they need.
type Planner interface {
	Calls(def drill.Definition) []Call
}

// Previewer is a Scenario that, after Preflight, says what its fault would
// hit now (the pods it would kill, the backup it would restore from).
type Previewer interface {
	Preview() []string
}

// AnyPhase marks a call made in every phase (status writes, Events);
// BetweenRuns one the daemon makes for a drill while none of its runs is
// under way (the RPO marker it keeps stamped).
const (
	AnyPhase    v1alpha1.Phase = "Any"
	BetweenRuns v1alpha1.Phase = "BetweenRuns"
)

// In builds calls of one phase.
func In(phase v1alpha1.Phase) CallBuilder { return CallBuilder{phase: phase} }

// PhaseCalls are the builders of the calls of a run's phases.
type PhaseCalls struct {
	Preflight, Inject, Recover, Verify, Revert, Between CallBuilder
}

// Phases returns the builders of every phase.
func Phases() PhaseCalls {
	return PhaseCalls{In(v1alpha1.PhasePreflight), In(v1alpha1.PhaseInjecting), In(v1alpha1.PhaseRecovering),
		In(v1alpha1.PhaseVerifying), In(v1alpha1.PhaseReverting), In(BetweenRuns)}
}

// CallBuilder makes the calls of one phase.
type CallBuilder struct{ phase v1alpha1.Phase }

// Call is verb on group/resource in ns, on name when known.
func (b CallBuilder) Call(verb, group, resource, ns, name, why string) Call {
	return Call{Phase: b.phase, Verb: verb, Group: group, Resource: resource, Namespace: ns, Name: name, Why: why}
}

// URL is verb on a non-resource URL of the API server (e.g. /metrics).
func (b CallBuilder) URL(verb, url, why string) Call {
	return Call{Phase: b.phase, Verb: verb, URL: url, Why: why}
}

// DryRun is a server-side dry-run create: admission answers, nothing is
// stored.
func (b CallBuilder) DryRun(group, resource, ns, why string) Call {
	c := b.Call("create", group, resource, ns, "", why)
	c.DryRun = true
	return c
}

// Optional is a call the run tries and whose refusal it reports rather
// than fails on.
func (b CallBuilder) Optional(verb, group, resource, ns, why string) Call {
	c := b.Call(verb, group, resource, ns, "", why)
	c.Optional = true
	return c
}

// Reads are get, list and watch of one resource (an informer, or a
// list-then-watch wait).
func (b CallBuilder) Reads(group, resource, ns, why string) []Call {
	return []Call{b.Call("list", group, resource, ns, "", why), b.Call("watch", group, resource, ns, "", why)}
}
