package blockegress

import (
	"fmt"
	"slices"
	"strings"

	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
)

var _ engine.Permissioner = Kind{}

// Permissions implements engine.Permissioner: create and delete the policy
// in the controller's namespace, find the API server's addresses, read the
// ExternalSecrets and their Secrets.
func (Kind) Permissions(def drill.Definition) []engine.Grant {
	var p Params
	_ = drill.Params(def.Spec, &p)
	ns := def.Spec.Target.Namespace
	g := BlockGrants(ns, PolicyName)
	// Per namespace: the ExternalSecrets, and their Secrets by name only.
	secrets := secretNames(p)
	for _, esNS := range esNamespaces(p.ExternalSecrets) {
		g = append(g,
			engine.Allow(esNS, "external-secrets.io", []string{"externalsecrets"}, []string{"get", "watch"}),
			engine.Allow(esNS, "", []string{"secrets"}, []string{"get"}, secrets[esNS]...))
	}
	return g
}

var _ engine.Planner = Kind{}

// Calls implements engine.Planner.
func (Kind) Calls(def drill.Definition) []engine.Call {
	var p Params
	_ = drill.Params(def.Spec, &p)
	ns := def.Spec.Target.Namespace
	ph := engine.Phases()
	pre, inj, rec, ver, rev := ph.Preflight, ph.Inject, ph.Recover, ph.Verify, ph.Revert
	c := []engine.Call{
		namespacerestore.OptInCall(pre, ns),
	}
	c = append(c, BlockPreflightCalls(pre, ns, PolicyName, "the controller's pods the policy will select")...)
	// Each ExternalSecret and its Secret are read before, at detection
	// (the Secrets must survive) and after.
	reads := func(b engine.CallBuilder, why string) []engine.Call {
		var out []engine.Call
		for _, es := range p.ExternalSecrets {
			esNS, name, _ := strings.Cut(es, "/")
			out = append(out, b.Call("get", "external-secrets.io", "externalsecrets", esNS, name, "ExternalSecret "+es+": "+why))
		}
		names := secretNames(p)
		for _, esNS := range esNamespaces(p.ExternalSecrets) {
			for _, name := range names[esNS] {
				out = append(out, b.Call("get", "", "secrets", esNS, name, "the Secret's data hash: "+why))
			}
		}
		return out
	}
	c = append(c, reads(pre, "Ready, and its Secret exists, before the drill")...)
	c = append(c, inj.Call("create", "networking.k8s.io", "networkpolicies", ns, "",
		"THE FAULT: NetworkPolicy "+PolicyName+" denies the controller's egress but DNS and the API server"))
	for _, esNS := range esNamespaces(p.ExternalSecrets) {
		c = append(c, rec.Call("watch", "external-secrets.io", "externalsecrets", esNS, "", "wait for a sync error, then for the re-sync"))
	}
	c = append(c, reads(rec, "re-read on every change: sync failing, Secrets intact, re-synced")...)
	for _, b := range []engine.CallBuilder{rec, rev} {
		c = append(c, UnblockCalls(b, ns, PolicyName)...)
	}
	return append(c, reads(ver, "Secrets after the re-sync")...)
}

// BlockGrants are what a block by NetworkPolicy needs in ns: create the
// policy, get and delete it by name, list the pods it selects, and find
// the API server's addresses (which it keeps open).
func BlockGrants(ns, policy string) []engine.Grant {
	return []engine.Grant{
		engine.Allow(ns, "networking.k8s.io", []string{"networkpolicies"}, []string{"create"}),
		engine.Allow(ns, "networking.k8s.io", []string{"networkpolicies"}, []string{"get", "delete"}, policy),
		engine.Allow(ns, "", []string{"pods"}, []string{"list"}),
		engine.Allow("default", "discovery.k8s.io", []string{"endpointslices"}, []string{"list"}),
		engine.Allow("default", "", []string{"endpoints"}, []string{"get"}, "kubernetes"),
	}
}

// BlockPreflightCalls are the reads before such a block: the pods it will
// select (pods says which), no policy left over, the API server's
// addresses.
func BlockPreflightCalls(pre engine.CallBuilder, ns, policy, pods string) []engine.Call {
	return []engine.Call{
		pre.Call("list", "", "pods", ns, "", pods),
		pre.Call("get", "networking.k8s.io", "networkpolicies", ns, policy, "no policy of that name is left from an earlier run"),
		pre.Call("list", "discovery.k8s.io", "endpointslices", "default", "", "the API server's addresses, which the policy keeps open"),
		pre.Call("get", "", "endpoints", "default", "kubernetes", "the API server's addresses (when there are no EndpointSlices)"),
	}
}

// UnblockCalls lift such a block (DeletePolicy): in Recover and in Revert.
func UnblockCalls(b engine.CallBuilder, ns, policy string) []engine.Call {
	return []engine.Call{
		b.Call("get", "networking.k8s.io", "networkpolicies", ns, policy, "the policy is this run's (run label), and then gone"),
		b.Call("delete", "networking.k8s.io", "networkpolicies", ns, policy, "unblock: delete the run's policy (UID precondition)"),
	}
}

// secretNames are, per namespace, the Secrets drillbot may read: each
// ExternalSecret's own name, and the params.secrets named there (an
// ExternalSecret whose spec.target.name is not its own).
func secretNames(p Params) map[string][]string {
	out := map[string][]string{}
	for _, es := range p.ExternalSecrets {
		ns, name, _ := strings.Cut(es, "/")
		out[ns] = append(out[ns], name)
	}
	for _, sec := range p.Secrets {
		ns, name, _ := strings.Cut(sec, "/")
		if _, ok := out[ns]; ok && !slices.Contains(out[ns], name) {
			out[ns] = append(out[ns], name)
		}
	}
	return out
}

func esNamespaces(keys []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, k := range keys {
		ns, _, _ := strings.Cut(k, "/")
		if !seen[ns] {
			seen[ns] = true
			out = append(out, ns)
		}
	}
	return out
}

// Preview implements engine.Previewer.
func (s *scenario) Preview() []string {
	out := []string{fmt.Sprintf("NetworkPolicy %s/%s would deny egress from %d pods matching %v except DNS and the API server (%d peers)",
		s.ns, PolicyName, s.pods, s.selector, s.apiPeers())}
	for _, key := range s.p.ExternalSecrets {
		if st, ok := s.before[key]; ok {
			out = append(out, fmt.Sprintf("ExternalSecret %s (%s) must fail to sync within %s, its Secret %s must survive", key, s.gvr.Version, s.window, st.secret))
		}
	}
	return out
}

func (s *scenario) apiPeers() int {
	if s.np == nil || len(s.np.Spec.Egress) < 2 {
		return 0
	}
	return len(s.np.Spec.Egress[1].To)
}
