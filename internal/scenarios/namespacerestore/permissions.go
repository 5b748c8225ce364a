package namespacerestore

import (
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
)

var (
	read  = []string{"get", "list", "watch"}
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

// WorkloadReads are what readiness checks read in a namespace.
func WorkloadReads(ns string) []engine.Grant {
	return []engine.Grant{engine.Allow(ns, "apps", inApp, read), engine.Allow(ns, "", []string{"pods"}, read)}
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
	g := []engine.Grant{
		engine.Allow("", "", []string{"namespaces"}, []string{"get", "list", "watch", "delete"}, ns),
		engine.Allow(p.VeleroNamespace, "velero.io", []string{"backupstoragelocations", "schedules"}, read),
		engine.Allow(p.VeleroNamespace, "velero.io", []string{"backups", "restores"}, []string{"get", "list", "watch", "create"}),
		engine.Allow("", "", []string{"configmaps"}, []string{"get", "update"}, MarkerName),
		engine.Allow(ns, "", []string{"configmaps"}, []string{"create"}),
	}
	for group, res := range InventoryGrants {
		g = append(g, engine.Allow("", group, res, []string{"list"}))
	}
	return append(g, WorkloadReads("")...)
}
