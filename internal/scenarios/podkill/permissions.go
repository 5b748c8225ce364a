package podkill

import (
	"fmt"
	"strings"

	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/scenarios/admissionprobe"
	"github.com/drillbot-io/drillbot/internal/scenarios/blockegress"
	"github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
)

var _ engine.Permissioner = Kind{}

// Permissions implements engine.Permissioner: delete pods and read
// workloads in the target namespace, probe admission (and list the
// webhook configurations it watches), read the required objects.
func (Kind) Permissions(def drill.Definition) []engine.Grant {
	var p Params
	_ = drill.Params(def.Spec, &p)
	ns := def.Spec.Target.Namespace
	g := append(namespacerestore.WorkloadReads(ns), engine.Allow(ns, "", []string{"pods"}, []string{"delete"}))
	if p.Admission != nil {
		g = append(g, engine.Allow(ns, "", []string{"pods"}, []string{"get"})) // are the killed pods gone?
	}
	if a := p.Admission; a != nil {
		probe := a.Namespace
		if probe == "" {
			probe = ns
		}
		g = append(g, admissionprobe.ProbeGrant(probe), engine.Allow("", "", []string{"namespaces"}, []string{"get"}, probe))
		if a.WebhookConfigurations != "" {
			g = append(g, engine.Allow("", "admissionregistration.k8s.io", []string{"validatingwebhookconfigurations", "mutatingwebhookconfigurations"}, []string{"list"}))
		}
	}
	if r := p.RequiredObjects; r != nil {
		g = append(g, engine.Allow(r.Namespace, r.Group, []string{r.Resource}, []string{"list"}))
	}
	if c := p.NetworkPolicy; c != nil {
		// The canary's namespace is opted in; the check makes, reads and
		// deletes its own policy by name and lists the canary pods.
		g = append(g,
			engine.Allow("", "", []string{"namespaces"}, []string{"get"}, c.Namespace),
			engine.Allow(c.Namespace, "networking.k8s.io", []string{"networkpolicies"}, []string{"create"}),
			engine.Allow(c.Namespace, "networking.k8s.io", []string{"networkpolicies"}, []string{"get", "delete"}, CheckPolicyName),
			engine.Allow(c.Namespace, "", []string{"pods"}, []string{"list"}))
	}
	return g
}

var _ engine.Planner = Kind{}

// Calls implements engine.Planner.
func (Kind) Calls(def drill.Definition) []engine.Call {
	var p Params
	_ = drill.Params(def.Spec, &p)
	ns := def.Spec.Target.Namespace
	ph := engine.Phases()
	pre, inj, rec, ver, rev := ph.Preflight, ph.Inject, ph.Recover, ph.Verify, ph.Revert
	c := []engine.Call{
		namespacerestore.OptInCall(pre, ns),
		pre.Call("list", "", "pods", ns, "", "the pods the selector matches, each with a controller"),
	}
	c = append(c, namespacerestore.WorkloadCalls(pre, ns, false)...)
	var probing []engine.Call
	if a := p.Admission; a != nil {
		probe := a.Namespace
		if probe == "" {
			probe = ns
		}
		if probe != ns {
			c = append(c, namespacerestore.OptInCall(pre, probe))
		}
		c = append(c, pre.DryRun("", "pods", probe, "admission denies the attempt before the drill"))
		probing = append(probing, rec.DryRun("", "pods", probe, "probe admission while the controller is down (fail-open window)"),
			rec.Call("get", "", "pods", ns, "", "are the killed pods gone? (then admission must deny again)"))
		if a.WebhookConfigurations != "" {
			for _, r := range []string{"validatingwebhookconfigurations", "mutatingwebhookconfigurations"} {
				c = append(c, pre.Call("list", "admissionregistration.k8s.io", r, "", "", "the controller's webhook configurations, as they are before"))
				probing = append(probing, rec.Call("list", "admissionregistration.k8s.io", r, "", "", "watch the webhook configurations with every probe"))
				probing = append(probing, ver.Call("list", "admissionregistration.k8s.io", r, "", "", "the webhook configurations are back as before"))
			}
		}
	}
	var required []engine.Call
	if r := p.RequiredObjects; r != nil {
		c = append(c, pre.Call("list", r.Group, r.Resource, r.Namespace, "", "the required objects exist and are Ready"))
		required = append(required, ver.Call("list", r.Group, r.Resource, r.Namespace, "", "the required objects still exist and are Ready"))
	}
	var check, checkAfter, checkVerify, checkRevert []engine.Call
	if pc := p.NetworkPolicy; pc != nil {
		cn := pc.Namespace
		c = append(c, namespacerestore.OptInCall(pre, cn),
			pre.Call("get", "networking.k8s.io", "networkpolicies", cn, CheckPolicyName, "no policy of the check's name is left from an earlier run"),
			pre.Call("list", "", "pods", cn, "", "the canary pods, Ready, with their addresses (drillbot connects to each)"))
		check = append([]engine.Call{inj.Call("create", "networking.k8s.io", "networkpolicies", cn, "", "rehearsal before the kill: deny all ingress to the canary; drillbot's connections must stop")},
			blockegress.UnblockCalls(inj, cn, CheckPolicyName)...)
		check = append(check, inj.Call("list", "", "pods", ns, "", "the pods to kill, again after the rehearsal"))
		checkAfter = []engine.Call{inj.Call("create", "networking.k8s.io", "networkpolicies", cn, "", "the policy change made during the outage (the same policy, right after the kill)")}
		checkVerify = append([]engine.Call{rec.Call("list", "", "pods", cn, "", "the canary pods are the ones seen before when the policy is enforced"),
			ver.Call("list", "", "pods", cn, "", "the canary pods are still the ones seen before")},
			blockegress.UnblockCalls(ver, cn, CheckPolicyName)...)
		checkRevert = blockegress.UnblockCalls(rev, cn, CheckPolicyName)
	}
	c = append(c, inj.Call("list", "", "pods", ns, "", "the pods to kill (those already terminating are left alone)"))
	c = append(c, check...)
	c = append(c, inj.Call("delete", "", "pods", ns, "", "THE FAULT: delete each selected pod"))
	c = append(c, checkAfter...)
	c = append(c, probing...)
	c = append(c, rec.Reads("", "pods", ns, "wait until as many replacements are Ready")...)
	c = append(c, namespacerestore.WorkloadCalls(rec, ns, true)...)
	c = append(c, required...)
	c = append(c, checkVerify...)
	c = append(c, checkRevert...)
	return append(c, rev.Reads("", "pods", ns, "the undo: wait until the killed pods are replaced")...)
}

// Preview implements engine.Previewer: the pods Preflight found.
func (s *scenario) Preview() []string {
	out := []string{fmt.Sprintf("%d pods matching %s in %s would be deleted: %s", len(s.found), s.selector, s.ns, strings.Join(s.found, ", "))}
	if a := s.params.Admission; a != nil {
		out = append(out, fmt.Sprintf("admission probed in %s every %s with image %s", s.probeNS, s.interval, a.Attempt.Image))
	}
	if s.webhooks != nil {
		out = append(out, fmt.Sprintf("%d webhook configurations watched (%s)", len(s.webhooks.before), s.params.Admission.WebhookConfigurations))
	}
	if s.check != nil {
		out = append(out, fmt.Sprintf("NetworkPolicy %s made in %s before the kill (rehearsal, then removed) and right after it; drillbot connects to %d canary pods on port %d until it is enforced",
			CheckPolicyName, s.check.p.Namespace, len(s.check.canary), s.check.p.Port))
	}
	if len(s.required) > 0 {
		out = append(out, fmt.Sprintf("required %s: %s", s.params.RequiredObjects.Resource, strings.Join(s.required, ", ")))
	}
	return out
}
