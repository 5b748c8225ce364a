package encryptionatrest

import (
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
)

var (
	_ engine.Permissioner = Kind{}
	_ engine.Planner      = Kind{}
)

func canaryNamespace(def drill.Definition) string {
	var p Params
	_ = drill.Params(def.Spec, &p)
	p.defaults()
	return p.CanaryNamespace
}

// Permissions implements engine.Permissioner: the canary Secret in
// drillbot's namespace (create cannot be limited by name; the rest is by
// name), listing the API servers (the kubernetes Service's EndpointSlices)
// and reading each one's /metrics. No other Secret.
func (Kind) Permissions(def drill.Definition) []engine.Grant {
	ns := canaryNamespace(def)
	return []engine.Grant{
		engine.Allow("", "", []string{"namespaces"}, []string{"get"}, ns),
		engine.Allow(ns, "", []string{"secrets"}, []string{"create"}),
		engine.Allow(ns, "", []string{"secrets"}, []string{"update", "delete"}, CanaryName),
		engine.Allow(metav1.NamespaceDefault, "discovery.k8s.io", []string{"endpointslices"}, []string{"list"}),
		{Rule: rbacv1.PolicyRule{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}},
	}
}

// Calls implements engine.Planner.
func (Kind) Calls(def drill.Definition) []engine.Call {
	ns := canaryNamespace(def)
	ph := engine.Phases()
	pre, rec := ph.Preflight, ph.Recover
	return []engine.Call{
		pre.Call("get", "", "namespaces", ns, ns, "the canary's namespace (drillbot's) exists"),
		rec.Call("list", "discovery.k8s.io", "endpointslices", metav1.NamespaceDefault, "", "every API server: the kubernetes Service's endpoints, before and after the canary's write"),
		rec.URL("get", "/metrics", "each API server's own storage-transformation counters (at its endpoint), before and after the canary's write"),
		rec.Call("create", "", "secrets", ns, "", "write the canary Secret "+CanaryName+" (drillbot's own, random data)"),
		rec.Call("update", "", "secrets", ns, CanaryName, "overwrite a canary a dead run left"),
		rec.Call("delete", "", "secrets", ns, CanaryName, "delete the canary"),
	}
}
