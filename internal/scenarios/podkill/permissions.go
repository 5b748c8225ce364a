package podkill

import (
	"fmt"
	"strings"

	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/scenarios/admissionprobe"
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
	c = append(c,
		inj.Call("list", "", "pods", ns, "", "the pods to kill (those already terminating are left alone)"),
		inj.Call("delete", "", "pods", ns, "", "THE FAULT: delete each selected pod"))
	c = append(c, probing...)
	c = append(c, rec.Reads("", "pods", ns, "wait until as many replacements are Ready")...)
	c = append(c, namespacerestore.WorkloadCalls(rec, ns, true)...)
	c = append(c, required...)
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
	if len(s.required) > 0 {
		out = append(out, fmt.Sprintf("required %s: %s", s.params.RequiredObjects.Resource, strings.Join(s.required, ", ")))
	}
	return out
}
