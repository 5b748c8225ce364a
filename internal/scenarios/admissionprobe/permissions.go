package admissionprobe

import (
	"fmt"

	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
)

var _ engine.Permissioner = Kind{}

// ProbeGrant lets drillbot ask admission about a pod in ns: a dry-run
// create needs the create verb, though nothing is persisted.
func ProbeGrant(ns string) engine.Grant {
	return engine.Allow(ns, "", []string{"pods"}, []string{"create"})
}

// Permissions implements engine.Permissioner.
func (Kind) Permissions(def drill.Definition) []engine.Grant {
	return []engine.Grant{ProbeGrant(def.Spec.Target.Namespace)}
}

var _ engine.Planner = Kind{}

// Calls implements engine.Planner: the opt-in check, then dry-run creates
// only.
func (Kind) Calls(def drill.Definition) []engine.Call {
	var p Params
	_ = drill.Params(def.Spec, &p)
	ns := def.Spec.Target.Namespace
	ph := engine.Phases()
	c := []engine.Call{
		namespacerestore.OptInCall(ph.Preflight, ns),
		ph.Verify.DryRun("", "pods", ns, "ask admission about a pod with image "+p.Attempt.Image+privileged(p.Attempt)+": it must be denied"),
	}
	if pc := p.PositiveControl; pc != nil {
		c = append(c, ph.Verify.DryRun("", "pods", ns, "positive control: a pod with image "+pc.Image+" must be admitted"))
	}
	return c
}

// Preview implements engine.Previewer.
func (s *scenario) Preview() []string {
	out := []string{fmt.Sprintf("server-side dry run of a pod with image %s%s in %s (nothing is created)", s.params.Attempt.Image, privileged(s.params.Attempt), s.ns)}
	if pc := s.params.PositiveControl; pc != nil {
		out = append(out, fmt.Sprintf("positive control: image %s", pc.Image))
	}
	return out
}
