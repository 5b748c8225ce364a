package backupcoverage

import (
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
)

var (
	_ engine.Permissioner = Kind{}
	_ engine.Planner      = Kind{}
)

func veleroNamespace(def drill.Definition) string {
	var p Params
	_ = drill.Params(def.Spec, &p)
	if p.VeleroNamespace == "" {
		return "velero"
	}
	return p.VeleroNamespace
}

// Permissions implements engine.Permissioner: reads only.
func (Kind) Permissions(def drill.Definition) []engine.Grant {
	vns := veleroNamespace(def)
	return []engine.Grant{
		engine.Allow("", "", []string{"namespaces"}, []string{"list"}),
		engine.Allow(vns, "velero.io", []string{"schedules", "backups", "backupstoragelocations"}, []string{"list"}),
	}
}

// Calls implements engine.Planner.
func (Kind) Calls(def drill.Definition) []engine.Call {
	vns := veleroNamespace(def)
	rec := engine.Phases().Recover
	return []engine.Call{
		rec.Call("list", "", "namespaces", "", "", "the namespaces the selector matches"),
		rec.Call("list", "velero.io", "schedules", vns, "", "the Schedules that include each namespace"),
		rec.Call("list", "velero.io", "backups", vns, "", "each schedule's newest Completed backup"),
		rec.Call("list", "velero.io", "backupstoragelocations", vns, "", "the schedules' storage locations are Available"),
	}
}
