package podkill

import (
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
		g = append(g, engine.Allow(r.Namespace, r.Group, []string{r.Resource}, []string{"get", "list"}))
	}
	return g
}
