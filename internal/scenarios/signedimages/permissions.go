package signedimages

import (
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
)

var (
	_ engine.Permissioner = Kind{}
	_ engine.Planner      = Kind{}
)

// Permissions implements engine.Permissioner: lists only (registries are
// read anonymously, outside the API server).
func (Kind) Permissions(drill.Definition) []engine.Grant {
	return []engine.Grant{engine.Allow("", "", []string{"namespaces", "pods"}, []string{"list"})}
}

// Calls implements engine.Planner.
func (Kind) Calls(drill.Definition) []engine.Call {
	rec := engine.Phases().Recover
	return []engine.Call{
		rec.Call("list", "", "namespaces", "", "", "the namespaces the selector matches"),
		rec.Call("list", "", "pods", "", "", "the images each selected namespace's pods run (the kubelet's image IDs)"),
	}
}
