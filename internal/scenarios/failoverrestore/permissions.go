package failoverrestore

import (
	"fmt"
	"time"

	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	nr "github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
)

var (
	_ engine.Permissioner = Kind{}
	_ engine.Planner      = Kind{}
	_ engine.Previewer    = (*scenario)(nil)
)

// Permissions implements engine.Permissioner. The copy does not exist when
// RBAC is installed, so what drillbot does in it is granted cluster-wide
// and, where RBAC allows, limited to the copy's name: creating a namespace
// cannot be limited by name (the undo deletes only the one labelled with
// its run). Nothing in the source cluster is granted: drillbot never
// reaches it.
func (Kind) Permissions(def drill.Definition) []engine.Grant {
	var p Params
	_ = drill.Params(def.Spec, &p)
	p.defaults()
	copyNS, vns := def.Spec.Target.Namespace, p.VeleroNamespace
	g := []engine.Grant{
		engine.Allow("", "", []string{"namespaces"}, []string{"get", "list", "watch", "delete"}, copyNS),
		engine.Allow("", "", []string{"namespaces"}, []string{"create"}),
		engine.Allow(vns, "velero.io", []string{"backupstoragelocations"}, []string{"get"}, p.StorageLocation),
		engine.Allow(vns, "velero.io", []string{"backups"}, []string{"list"}),
		engine.Allow(vns, "velero.io", []string{"restores"}, []string{"create", "list", "watch"}),
		engine.Allow(vns, "velero.io", []string{"downloadrequests"}, []string{"create", "list", "watch"}),
		engine.Allow("", "", []string{"configmaps"}, []string{"get"}, nr.MarkerName),
	}
	for group, res := range nr.InventoryGrants {
		g = append(g, engine.Allow("", group, res, []string{"list"}))
	}
	return append(g, nr.WorkloadReads("")...)
}

// Calls implements engine.Planner.
func (Kind) Calls(def drill.Definition) []engine.Call {
	var p Params
	_ = drill.Params(def.Spec, &p)
	p.defaults()
	copyNS, vns, src := def.Spec.Target.Namespace, p.VeleroNamespace, p.SourceNamespace
	ph := engine.Phases()
	pre, inj, rec, ver, rev := ph.Preflight, ph.Inject, ph.Recover, ph.Verify, ph.Revert
	waitRestore := func(b engine.CallBuilder, why string) []engine.Call {
		return b.Reads("velero.io", "restores", vns, why)
	}
	c := []engine.Call{
		pre.Call("get", "", "namespaces", copyNS, copyNS, "the copy's namespace does not exist yet"),
		pre.Call("get", "velero.io", "backupstoragelocations", vns, p.StorageLocation, "the shared location is opted in, ReadOnly and Available"),
		pre.Call("list", "velero.io", "backups", vns, "", "the newest Completed backup of "+src+" in the location, younger than the RPO target"),
		inj.Call("create", "velero.io", "downloadrequests", vns, "", "before any write: ask Velero for the resource list of the newest Completed backups (at most 3), newest first"),
		inj.Call("list", "velero.io", "downloadrequests", vns, "", "wait for the resource list's signed URL (by the request's name)"),
		inj.Call("watch", "velero.io", "downloadrequests", vns, "", "wait for the resource list's signed URL (by the request's name)"),
		inj.Call("create", "", "namespaces", "", "", "create the copy's namespace, labelled with the run (the undo deletes only that one), once a backup's list shows objects in "+src),
		rec.Call("create", "velero.io", "restores", vns, "", "THE DRILL: restore the backup of "+src+" into "+copyNS+" (namespace mapping, nothing cluster-scoped)"),
	}
	c = append(c, waitRestore(rec, "wait until the restore ends (by its name, the run's)")...)
	c = append(c, nr.WorkloadCalls(rec, copyNS, true)...)
	c = append(c, nr.InventoryCalls(ver, copyNS, "every object the backup's resource list names in "+src+" is in the copy (metadata only; one list per kind)")...)
	c = append(c,
		ver.Call("list", "", "persistentvolumeclaims", copyNS, "", "the copy's claims (restored or made by its workloads): their data is not read"),
		ver.Call("get", "", "configmaps", copyNS, nr.MarkerName, "RPO: the restored marker's timestamp"))
	c = append(c, waitRestore(rev, "the undo: wait until the run's restore ended, so nothing is restored into a deleted copy")...)
	c = append(c,
		rev.Call("get", "", "namespaces", copyNS, copyNS, "the copy is this run's (its label)"),
		rev.Call("delete", "", "namespaces", copyNS, copyNS, "the undo: delete the copy (UID precondition)"),
		rev.Call("list", "", "namespaces", "", copyNS, "wait until the copy is gone"),
		rev.Call("watch", "", "namespaces", "", copyNS, "wait until the copy is gone"),
		ph.Between.Call("list", "velero.io", "backups", vns, "", "drillbot report: the age of the newest Completed backup of "+src))
	return c
}

// Preview implements engine.Previewer.
func (s *scenario) Preview() []string {
	out := []string{fmt.Sprintf("namespace %s would be created and restored into, then deleted", s.copy)}
	if s.backup != nil {
		age := s.deps.Clock.Since(s.backup.Status.StartTimestamp.Time).Round(time.Second)
		out = append(out, fmt.Sprintf("from Velero backup %s/%s of namespace %s (%s, started %s ago) in location %s",
			s.params.VeleroNamespace, s.backup.Name, s.params.SourceNamespace, s.backup.Status.Phase, age, s.params.StorageLocation),
			fmt.Sprintf("not yet checked: the run first reads the backup's resource list (a Velero DownloadRequest, which plan does not create) "+
				"and refuses before any write unless it, or an older Completed one within the RPO target, shows objects in namespace %s", s.params.SourceNamespace))
	}
	return append(out, s.findings...)
}
