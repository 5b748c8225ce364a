package namespacerestore

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
)

var (
	_     = engine.Permissioner(Kind{})
	inApp = []string{"deployments", "statefulsets", "daemonsets"}
)

// InventoryGrants are the kinds the inventory lists in a least-privilege
// install: the ones a namespace's workloads and their data live in. Kinds
// not granted are reported as not covered, never silently passed. Secrets
// are left out on purpose: listing them, even as metadata, is the verb that
// reads every Secret in the cluster; a Secret the restore lost shows as a
// workload that is not Ready.
var InventoryGrants = map[string][]string{
	"":                          {"configmaps", "services", "serviceaccounts", "persistentvolumeclaims", "pods", "limitranges", "resourcequotas", "replicationcontrollers", "podtemplates"},
	"apps":                      {"deployments", "statefulsets", "daemonsets", "replicasets", "controllerrevisions"},
	"coordination.k8s.io":       {"leases"},
	"batch":                     {"jobs", "cronjobs"},
	"networking.k8s.io":         {"ingresses", "networkpolicies"},
	"rbac.authorization.k8s.io": {"roles", "rolebindings"},
	"policy":                    {"poddisruptionbudgets"},
	"autoscaling":               {"horizontalpodautoscalers"},
}

// WorkloadReads are what readiness checks read in a namespace: lists, and
// the informers' watches.
func WorkloadReads(ns string) []engine.Grant {
	lw := []string{"list", "watch"}
	return []engine.Grant{engine.Allow(ns, "apps", inApp, lw), engine.Allow(ns, "", []string{"pods"}, lw)}
}

// Permissions implements engine.Permissioner. The target namespace is
// deleted with every Role in it, so what drillbot reads there (inventory,
// readiness, the restored RPO marker) is granted cluster-wide; deleting is
// limited to the target by name, and so is reading and updating the marker.
// Only creating the marker (which RBAC cannot limit by name) is a Role in
// the target namespace.
func (Kind) Permissions(def drill.Definition) []engine.Grant {
	var p Params
	_ = drill.Params(def.Spec, &p)
	p.defaults()
	ns := def.Spec.Target.Namespace
	vns := p.VeleroNamespace
	backups := []string{"list"} // the schedule's newest backup; the report's last backup age
	switch {
	case p.Backup.Create:
		backups = append(backups, "create", "watch")
	case p.Backup.Name != "":
		backups = append(backups, "get")
	}
	g := []engine.Grant{
		engine.Allow("", "", []string{"namespaces"}, []string{"get", "list", "watch", "delete"}, ns),
		engine.Allow(vns, "velero.io", []string{"backupstoragelocations"}, []string{"list"}),
		engine.Allow(vns, "velero.io", []string{"backups"}, backups),
		engine.Allow(vns, "velero.io", []string{"restores"}, []string{"create", "list", "watch"}),
		engine.Allow(vns, "velero.io", []string{"downloadrequests"}, []string{"create", "list", "watch"}),
		engine.Allow(vns, "velero.io", []string{"podvolumerestores"}, []string{"list"}),
		// The RPO marker: read after the restore, stamped by a server-side
		// apply (patch; create the first time).
		engine.Allow("", "", []string{"configmaps"}, []string{"get", "patch"}, MarkerName),
		engine.Allow(ns, "", []string{"configmaps"}, []string{"create"}),
		// The daemon's marker loop reads which targets are opted in with
		// one labelled list a minute, whatever their number: list on
		// namespaces cluster-wide (names and labels, nothing inside them).
		engine.Allow("", "", []string{"namespaces"}, []string{"list"}),
	}
	for group, res := range InventoryGrants {
		g = append(g, engine.Allow("", group, res, []string{"list"}))
	}
	if def.Spec.Verify != nil && def.Spec.Verify.Job != nil {
		// The data check runs a pod in the restored namespace only: a Role
		// there, restored with the namespace (without it the check cannot
		// run and the run is INCONCLUSIVE, saying so).
		g = append(g, engine.Allow(ns, "batch", []string{"jobs"}, []string{"create", "get", "delete"}),
			engine.Allow(ns, "", []string{"pods/log"}, []string{"get"}))
	}
	if def.Spec.Verify != nil && def.Spec.Verify.HTTP != nil {
		// The http check asks one Service of the target namespace, by
		// name: a Role there too, restored with the namespace.
		h := def.Spec.Verify.HTTP
		g = append(g, engine.Allow(ns, "", []string{"services"}, []string{"get"}, h.Service),
			engine.Allow(ns, "", []string{"services/proxy"}, []string{"get"}, ProxyName(h)))
	}
	return append(g, WorkloadReads("")...)
}

var _ engine.Planner = Kind{}

// OptInCall is the read of a target namespace's opt-in label.
func OptInCall(b engine.CallBuilder, ns string) engine.Call {
	return b.Call("get", "", "namespaces", ns, ns, "the namespace exists, is opted in and is not terminating")
}

// WorkloadCalls are the reads of a readiness check of ns (WorkloadsReady);
// with wait, those of a wait for readiness too (WaitWorkloadsReady:
// informers, so lists and watches).
func WorkloadCalls(b engine.CallBuilder, ns string, wait bool) []engine.Call {
	var out []engine.Call
	for _, r := range []struct{ group, resource string }{{"apps", "deployments"}, {"apps", "statefulsets"}, {"apps", "daemonsets"}, {"", "pods"}} {
		why := "every workload in " + ns + " is Ready"
		if wait {
			out = append(out, b.Reads(r.group, r.resource, ns, "wait until "+why)...)
		} else {
			out = append(out, b.Call("list", r.group, r.resource, ns, "", why))
		}
	}
	return out
}

// restoreCalls wait until the namespace is gone, then restore it with
// Velero and wait for the restore to end.
func restoreCalls(b engine.CallBuilder, ns, vns, why string) []engine.Call {
	return []engine.Call{
		b.Call("list", "", "namespaces", "", ns, "wait until the namespace is gone"),
		b.Call("watch", "", "namespaces", "", ns, "wait until the namespace is gone"),
		b.Call("create", "velero.io", "restores", vns, "", why),
		b.Call("list", "velero.io", "restores", vns, "", "wait until the restore is Completed (by its name, the run's)"),
		b.Call("watch", "velero.io", "restores", vns, "", "wait until the restore is Completed (by its name, the run's)"),
	}
}

// InventoryCalls list the granted kinds, then try every other namespaced
// kind discovery finds: one drillbot may not list is named in the run's
// findings as not covered.
func InventoryCalls(b engine.CallBuilder, ns, why string) []engine.Call {
	var out []engine.Call
	groups := make([]string, 0, len(InventoryGrants))
	for g := range InventoryGrants {
		groups = append(groups, g)
	}
	slices.Sort(groups)
	for _, g := range groups {
		for _, r := range InventoryGrants[g] {
			out = append(out, b.Call("list", g, r, ns, "", why))
		}
	}
	return append(out, b.Optional("list", "*", "*", ns, why+": every other namespaced kind the API server serves, tried; "+
		"those drillbot may not list (Secrets among them) are named in the run's findings as not covered"))
}

// Calls implements engine.Planner.
func (Kind) Calls(def drill.Definition) []engine.Call {
	var p Params
	_ = drill.Params(def.Spec, &p)
	p.defaults()
	ns, vns := def.Spec.Target.Namespace, p.VeleroNamespace
	ph := engine.Phases()
	pre, inj, rec, ver, rev := ph.Preflight, ph.Inject, ph.Recover, ph.Verify, ph.Revert
	c := []engine.Call{
		OptInCall(pre, ns),
		pre.Call("list", "velero.io", "backupstoragelocations", vns, "", "the backup storage location is Available"),
	}
	switch {
	case p.Backup.Create:
	case p.Backup.Name != "":
		c = append(c, pre.Call("get", "velero.io", "backups", vns, p.Backup.Name, "the backup is Completed and covers the namespace"))
	default:
		c = append(c, pre.Call("list", "velero.io", "backups", vns, "", "the newest finished backup of schedule "+p.Backup.Schedule+" is Completed and covers the namespace"))
	}
	c = append(c, WorkloadCalls(pre, ns, false)...)
	if h := httpCheck(def); h != nil {
		c = append(c,
			pre.Call("get", "", "services", ns, h.Service, "the http data check's Service selects pods of the namespace (else its answer is no evidence)"),
			pre.Call("list", "", "pods", ns, "", "the Ready pods the http data check's Service selects mount the same volumes"))
	}
	c = append(c, InventoryCalls(pre, ns, "inventory: what must come back (metadata only)")...)
	if p.Backup.Create {
		c = append(c,
			inj.Call("patch", "", "configmaps", ns, MarkerName, "stamp the RPO marker before the backup (server-side apply)"),
			inj.Call("create", "", "configmaps", ns, "", "the first stamp: an apply that creates the marker is authorized as create"),
			inj.Call("create", "velero.io", "backups", vns, "", "take the backup the drill restores from"),
			inj.Call("list", "velero.io", "backups", vns, "", "wait until the backup is Completed (by its name, the run's)"),
			inj.Call("watch", "velero.io", "backups", vns, "", "wait until the backup is Completed (by its name, the run's)"))
	}
	c = append(c,
		inj.Call("get", "", "namespaces", ns, ns, "the namespace's UID, so only this namespace is deleted"),
		inj.Call("create", "velero.io", "downloadrequests", vns, "", "before any delete: ask Velero for the backup's resource list (every object of the namespace in it, or the drill refuses) "+
			"and, with bound PVCs, its volume information (every PVC's data held, or the drill refuses)"),
		inj.Call("list", "velero.io", "downloadrequests", vns, "", "wait for the download's signed URL (by the request's name)"),
		inj.Call("watch", "velero.io", "downloadrequests", vns, "", "wait for the download's signed URL (by the request's name)"),
		inj.Call("list", "", "persistentvolumeclaims", ns, "", "before any delete: the PVCs bound to a volume, whose data the backup must hold"),
	)
	c = append(c, InventoryCalls(inj, ns, "inventory again, right before the delete: what the backup must hold and what must come back")...)
	if h := httpCheck(def); h != nil {
		c = append(c,
			inj.Call("get", "", "services", ns, h.Service, "again, right before the delete: the http data check's Service selects pods of the namespace"),
			inj.Call("list", "", "pods", ns, "", "again: the Ready pods it selects mount the same volumes"),
			inj.Call("get", "", "services/proxy", ns, ProxyName(h), "before any delete: the http data check's answer as of the backup's start (no answer: the drill stops, nothing deleted)"))
	}
	c = append(c, inj.Call("delete", "", "namespaces", ns, ns, "THE FAULT: delete the namespace (UID precondition)"))
	c = append(c, restoreCalls(rec, ns, vns, "restore the namespace from the backup")...)
	c = append(c, WorkloadCalls(rec, ns, true)...)
	c = append(c,
		rec.Call("list", "", "persistentvolumeclaims", ns, "", "only with held volumes: every PVC whose data the backup held is Bound again"),
		rec.Call("list", "velero.io", "podvolumerestores", vns, "", "only with held volumes: the restore's PodVolumeRestores Completed (by its restore-name label)"))
	if def.Spec.Verify != nil && def.Spec.Verify.Job != nil {
		c = append(c,
			rec.Call("create", "batch", "jobs", ns, "", "the data check: a Job of the drill's template in the restored namespace"),
			rec.Call("get", "batch", "jobs", ns, "", "wait until the data check Job ends (by the run's name)"),
			rec.Call("list", "", "pods", ns, "", "the data check's pod: how its container ended"),
			rec.Call("get", "", "pods/log", ns, "", "the data check's log: its last lines, the newest restored write (by its pod's name)"),
			rec.Call("delete", "batch", "jobs", ns, "", "remove the data check Job"))
	}
	if h := httpCheck(def); h != nil {
		c = append(c,
			rec.Call("get", "", "services", ns, h.Service, "the http data check's Service selects pods of the restored namespace"),
			rec.Call("list", "", "pods", ns, "", "the pods the http data check's Service selects: the volumes its answer comes from"),
			rec.Call("get", "", "services/proxy", ns, ProxyName(h), "the http data check: the restored data's answer as of the backup's start, then as of the disaster"))
	}
	c = append(c, InventoryCalls(ver, ns, "inventory again: every object came back")...)
	c = append(c,
		ver.Call("get", "", "configmaps", ns, MarkerName, "RPO: the restored marker's timestamp"),
		rev.Call("get", "", "namespaces", ns, ns, "the namespace still there with the same UID: nothing to undo"))
	c = append(c, restoreCalls(rev, ns, vns, "the undo: restore the namespace (idempotent)")...)
	// The daemon keeps the target's RPO marker stamped, so a backup
	// carries the time of its data; drillbot report reads the newest
	// backup's age.
	between := ph.Between
	return append(c,
		between.Call("list", "", "namespaces", "", "", "the opted-in targets, one labelled list a minute for all of them (drillbot serve)"),
		between.Call("patch", "", "configmaps", ns, MarkerName, "stamp the RPO marker every minute (server-side apply)"),
		between.Call("create", "", "configmaps", ns, "", "the first stamp: an apply that creates the marker is authorized as create"),
		between.Call("list", "velero.io", "backups", vns, "", "drillbot report: the age of the newest Completed backup"))
}

func httpCheck(def drill.Definition) *v1alpha1.HTTPCheck {
	if def.Spec.Verify == nil {
		return nil
	}
	return def.Spec.Verify.HTTP
}

// Preview implements engine.Previewer.
func (s *scenario) Preview() []string {
	out := []string{"namespace " + s.ns + " would be deleted"}
	if s.backup != nil {
		age := s.deps.Clock.Since(s.backup.CreationTimestamp.Time).Round(time.Second)
		out = append(out, fmt.Sprintf("restored from Velero backup %s/%s (%s, %s old)", s.params.VeleroNamespace, s.backup.Name, s.backup.Status.Phase, age))
	} else if s.params.Backup.Create {
		out = append(out, "from a backup the drill takes first (storage location "+s.params.StorageLocation+")")
	}
	if s.inventory != nil {
		out = append(out, fmt.Sprintf("%d objects in the namespace must come back (inventory)", len(s.inventory)))
	}
	if len(s.skipped) > 0 {
		out = append(out, "not covered by the inventory: "+strings.Join(s.skipped, ", "))
	}
	return out
}
