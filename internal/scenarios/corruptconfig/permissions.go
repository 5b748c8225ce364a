package corruptconfig

import (
	"fmt"

	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
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
		engine.Allow(ns, "", []string{"pods"}, []string{"list", "watch"}),
	}
}

var _ engine.Planner = Kind{}

// Calls implements engine.Planner.
func (Kind) Calls(def drill.Definition) []engine.Call {
	var p Params
	_ = drill.Params(def.Spec, &p)
	ns, cm, ds := def.Spec.Target.Namespace, p.ConfigMap, p.DaemonSet
	ph := engine.Phases()
	pre, inj, rec, ver, rev := ph.Preflight, ph.Inject, ph.Recover, ph.Verify, ph.Revert
	c := []engine.Call{
		namespacerestore.OptInCall(pre, ns),
		pre.Call("get", "", "configmaps", ns, cm, "the ConfigMap holds the key"),
		pre.Call("get", "apps", "daemonsets", ns, ds, "the DaemonSet is fully Ready"),
		pre.Call("list", "", "pods", ns, "", "each DaemonSet pod's restart count before the drill"),
		inj.Call("get", "", "configmaps", ns, cm, "the key's exact bytes and resourceVersion, for the journal"),
		inj.Call("update", "", "configmaps", ns, cm, "THE FAULT: overwrite the key with corrupt rules (resourceVersion precondition)"),
	}
	c = append(c, rec.Reads("", "pods", ns, "detection: a DaemonSet pod not Ready or restarting, then Ready again")...)
	c = append(c, rec.Reads("apps", "daemonsets", ns, "the DaemonSet Ready with the restored rules")...)
	for _, b := range []engine.CallBuilder{rec, rev} {
		c = append(c,
			b.Call("get", "", "configmaps", ns, cm, "restore only over exactly what drillbot wrote"),
			b.Call("update", "", "configmaps", ns, cm, "restore the original bytes, then drop drillbot's annotation"),
			b.Call("patch", "apps", "daemonsets", ns, ds, "restart the DaemonSet so it loads the restored rules"))
	}
	return append(c, ver.Call("get", "", "configmaps", ns, cm, "the ConfigMap holds its original content"))
}

// Preview implements engine.Previewer.
func (s *scenario) Preview() []string {
	return []string{
		fmt.Sprintf("ConfigMap %s/%s key %s (%d bytes) would be overwritten with %d bytes of corrupt rules", s.ns, s.p.ConfigMap, s.p.Key, s.originalSize, len(s.p.CorruptRules)),
		fmt.Sprintf("DaemonSet %s/%s (%d pods) restarted after the restore", s.ns, s.p.DaemonSet, len(s.restarts)),
	}
}
