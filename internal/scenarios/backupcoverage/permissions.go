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
		engine.Allow("", "", []string{"namespaces", "persistentvolumeclaims"}, []string{"list"}),
		engine.Allow(vns, "velero.io", []string{"schedules", "backups", "backupstoragelocations", "restores"}, []string{"list"}),
		engine.Allow(vns, "velero.io", []string{"downloadrequests"}, []string{"create", "list", "watch"}),
	}
}

// Calls implements engine.Planner.
func (Kind) Calls(def drill.Definition) []engine.Call {
	vns := veleroNamespace(def)
	rec := engine.Phases().Recover
	return []engine.Call{
		rec.Call("list", "", "namespaces", "", "", "the namespaces the selector matches (and when each was created)"),
		rec.Call("list", "", "persistentvolumeclaims", "", "", "each namespace's PVCs: their data must be in its backups"),
		rec.Call("list", "velero.io", "schedules", vns, "", "the Schedules that include each namespace"),
		rec.Call("list", "velero.io", "backups", vns, "", "the Completed backups that hold each namespace, and what each leaves out"),
		rec.Call("list", "velero.io", "backupstoragelocations", vns, "", "the backups' and schedules' storage locations are this cluster's (ReadWrite) and Available"),
		rec.Call("list", "velero.io", "restores", vns, "", "a namespace newer than its backup is held by it only if a restore from it made the namespace"),
		rec.Call("create", "velero.io", "downloadrequests", vns, "", "only for backups of namespaces with bound PVCs: Velero's record of the backup's volumes (each backup once; Velero's read API, its only write)"),
		rec.Call("list", "velero.io", "downloadrequests", vns, "", "wait for the volume information's signed URL (by the request's name)"),
		rec.Call("watch", "velero.io", "downloadrequests", vns, "", "wait for the volume information's signed URL (by the request's name)"),
	}
}
