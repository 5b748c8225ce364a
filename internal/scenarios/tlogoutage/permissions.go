package tlogoutage

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/scenarios/admissionprobe"
	"github.com/drillbot-io/drillbot/internal/scenarios/blockegress"
	"github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
)

var _ engine.Permissioner = Kind{}

// Permissions implements engine.Permissioner: create and delete the policy
// in the admission controller's namespace, find the API server's
// addresses, and ask admission in the probe namespace.
func (Kind) Permissions(def drill.Definition) []engine.Grant {
	var p Params
	_ = drill.Params(def.Spec, &p)
	ns := def.Spec.Target.Namespace
	return append(blockegress.BlockGrants(ns, PolicyName),
		// The probe namespace's opt-in (the target's is granted with every
		// target).
		engine.Allow("", "", []string{"namespaces"}, []string{"get"}, p.ProbeNamespace),
		admissionprobe.ProbeGrant(p.ProbeNamespace))
}

var _ engine.Planner = Kind{}

// Calls implements engine.Planner.
func (Kind) Calls(def drill.Definition) []engine.Call {
	var p Params
	_ = drill.Params(def.Spec, &p)
	ns, probeNS := def.Spec.Target.Namespace, p.ProbeNamespace
	ph := engine.Phases()
	pre, inj, rec, ver, rev := ph.Preflight, ph.Inject, ph.Recover, ph.Verify, ph.Revert
	ask := func(b engine.CallBuilder, when string) []engine.Call {
		return []engine.Call{
			b.DryRun("", "pods", probeNS, when+": the signed image "+p.Signed.Image+" must be admitted"),
			b.DryRun("", "pods", probeNS, when+": the unsigned image "+p.Unsigned.Image+" must be denied"),
		}
	}
	c := []engine.Call{
		namespacerestore.OptInCall(pre, ns),
		namespacerestore.OptInCall(pre, probeNS),
	}
	c = append(c, blockegress.BlockPreflightCalls(pre, ns, PolicyName, "the admission controller's pods the policy will select, and their image-verification cache (container args)")...)
	c = append(c, pre.DryRun("", "pods", probeNS, "before the block: the canary "+p.Canary.Image+" must be admitted (the log is reachable)"))
	c = append(c, ask(pre, "before the block")...)
	c = append(c,
		inj.Call("create", "networking.k8s.io", "networkpolicies", ns, "",
			"THE FAULT: NetworkPolicy "+PolicyName+" denies the admission controller's egress to the log ("+strings.Join(p.LogCIDRs, ", ")+")"),
		rec.DryRun("", "pods", probeNS, "the canary, until its policy denies it (the log is out of reach), after the probes (the block still holds), and after the block until admitted again"))
	c = append(c, ask(rec, "while the log is unreachable")...)
	c = append(c, rec.Call("list", "", "pods", ns, "", "the admission controller's pods again after the probes: their image-verification cache (container args)"))
	for _, b := range []engine.CallBuilder{rec, rev} {
		c = append(c, blockegress.UnblockCalls(b, ns, PolicyName)...)
	}
	return append(c, ask(ver, "after the block")...)
}

// Preview implements engine.Previewer.
func (s *scenario) Preview() []string {
	return []string{
		fmt.Sprintf("NetworkPolicy %s/%s would deny egress from %d pods matching %s to %s only (DNS, the API server, pods and every other address stay open)",
			s.ns, PolicyName, s.pods, labels.FormatLabels(s.selector), strings.Join(s.p.LogCIDRs, ", ")),
		fmt.Sprintf("in %s, dry runs: after %s of quiet, the canary %s must be denied by its policy (%q) within %s, then%s the signed image %s admitted and the unsigned %s denied, and the canary denied again; again after the block",
			s.p.ProbeNamespace, s.quiet, s.p.Canary.Image, s.canaryReason(), s.window, s.cacheWait(), s.p.Signed.Image, s.p.Unsigned.Image),
	}
}

// cacheWait says how long the probes wait for Kyverno's cache.
func (s *scenario) cacheWait() string {
	if !s.cache.on {
		return ""
	}
	return fmt.Sprintf(" after %s more (Kyverno's image-verification cache, TTL %s on pod %s, forgets verifications made while the log was reachable),",
		s.cache.ttl+cacheMargin, s.cache.ttl, s.cache.pod)
}
