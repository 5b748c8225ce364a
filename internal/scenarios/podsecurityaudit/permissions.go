package podsecurityaudit

import (
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
)

var (
	_ engine.Permissioner = Kind{}
	_ engine.Planner      = Kind{}
)

// Permissions implements engine.Permissioner: lists only. A server-side
// dry-run of the enforce label would need update on every namespace.
func (Kind) Permissions(drill.Definition) []engine.Grant {
	return []engine.Grant{engine.Allow("", "", []string{"namespaces", "pods"}, []string{"list"})}
}

// Calls implements engine.Planner.
func (Kind) Calls(drill.Definition) []engine.Call {
	rec := engine.Phases().Recover
	return []engine.Call{
		rec.Call("list", "", "namespaces", "", "", "the namespaces the selector matches, with their Pod Security labels"),
		rec.Call("list", "", "pods", "", "", "each selected namespace's pods, evaluated at the audited level"),
	}
}
