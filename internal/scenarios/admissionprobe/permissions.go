package admissionprobe

import (
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
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
