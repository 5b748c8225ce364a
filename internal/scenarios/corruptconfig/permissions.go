package corruptconfig

import (
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
)

var _ engine.Permissioner = Kind{}

// Permissions implements engine.Permissioner: read and write the one
// ConfigMap, restart the one DaemonSet, watch its pods.
func (Kind) Permissions(def drill.Definition) []engine.Grant {
	var p Params
	_ = drill.Params(def.Spec, &p)
	ns := def.Spec.Target.Namespace
	return []engine.Grant{
		engine.Allow(ns, "", []string{"configmaps"}, []string{"get", "update"}, p.ConfigMap),
		engine.Allow(ns, "apps", []string{"daemonsets"}, []string{"get", "patch"}, p.DaemonSet),
		engine.Allow(ns, "apps", []string{"daemonsets"}, []string{"list", "watch"}),
		engine.Allow(ns, "", []string{"pods"}, []string{"get", "list", "watch"}),
	}
}
