package blockegress

import (
	"slices"
	"strings"

	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
)

var _ engine.Permissioner = Kind{}

// Permissions implements engine.Permissioner: create and delete the policy
// in the controller's namespace, find the API server's addresses, read the
// ExternalSecrets and their Secrets.
func (Kind) Permissions(def drill.Definition) []engine.Grant {
	var p Params
	_ = drill.Params(def.Spec, &p)
	ns := def.Spec.Target.Namespace
	g := []engine.Grant{
		engine.Allow(ns, "networking.k8s.io", []string{"networkpolicies"}, []string{"create"}),
		engine.Allow(ns, "networking.k8s.io", []string{"networkpolicies"}, []string{"get", "delete"}, PolicyName),
		engine.Allow(ns, "", []string{"pods"}, []string{"list"}),
		engine.Allow("default", "discovery.k8s.io", []string{"endpointslices"}, []string{"list"}),
		engine.Allow("default", "", []string{"endpoints"}, []string{"get"}, "kubernetes"),
	}
	// Per namespace: the ExternalSecrets, and their Secrets by name only.
	var namespaces []string
	secrets := map[string][]string{}
	for _, es := range p.ExternalSecrets {
		esNS, name, _ := strings.Cut(es, "/")
		if !slices.Contains(namespaces, esNS) {
			namespaces = append(namespaces, esNS)
		}
		secrets[esNS] = append(secrets[esNS], name)
	}
	for _, sec := range p.Secrets {
		ns, name, _ := strings.Cut(sec, "/")
		if slices.Contains(namespaces, ns) {
			secrets[ns] = append(secrets[ns], name)
		}
	}
	for _, esNS := range namespaces {
		g = append(g,
			engine.Allow(esNS, "external-secrets.io", []string{"externalsecrets"}, []string{"get", "list", "watch"}),
			engine.Allow(esNS, "", []string{"secrets"}, []string{"get"}, secrets[esNS]...))
	}
	return g
}
