package plan_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/component-helpers/auth/rbac/validation"

	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/plan"
	"github.com/drillbot-io/drillbot/internal/rbac"
	"github.com/drillbot-io/drillbot/internal/scenarios"
)

const ns = "drillbot-system"

// rule is one call as an RBAC rule.
func rule(c engine.Call) rbacv1.PolicyRule {
	if c.URL != "" {
		return rbacv1.PolicyRule{NonResourceURLs: []string{c.URL}, Verbs: []string{c.Verb}}
	}
	r := rbacv1.PolicyRule{APIGroups: []string{c.Group}, Resources: []string{c.Resource}, Verbs: []string{c.Verb}}
	if c.Name != "" {
		r.ResourceNames = []string{c.Name}
	}
	return r
}

// covered says whether grants allow c: a rule of c's namespace, or a
// cluster-wide one (which RBAC applies in every namespace).
func covered(grants []engine.Grant, c engine.Call) bool {
	var owner []rbacv1.PolicyRule
	for _, g := range grants {
		if g.Namespace == "" || g.Namespace == c.Namespace {
			owner = append(owner, g.Rule)
		}
	}
	ok, _ := validation.Covers(owner, []rbacv1.PolicyRule{rule(c)})
	return ok
}

func catalog(t *testing.T) []drill.Definition {
	t.Helper()
	defs, err := drill.LoadPaths([]string{"../../drills"}, scenarios.Registry(scenarios.Deps{}))
	if err != nil {
		t.Fatal(err)
	}
	return append(defs, extraDrills(t)...)
}

// extraDrills exercise the params the catalog does not set.
func extraDrills(t *testing.T) []drill.Definition {
	t.Helper()
	docs := []string{
		`{apiVersion: drillbot.io/v1alpha1, kind: Drill, metadata: {name: nr-create}, spec: {scenario: namespace-restore, objectives: {rto: 30m, rpo: 1h}, target: {namespace: shop}, params: {backup: {create: true}}}}`,
		`{apiVersion: drillbot.io/v1alpha1, kind: Drill, metadata: {name: nr-named}, spec: {scenario: namespace-restore, objectives: {rto: 30m, rpo: 1h}, target: {namespace: shop}, params: {backup: {name: b1}}}}`,
		`{apiVersion: drillbot.io/v1alpha1, kind: Drill, metadata: {name: nr-checked}, spec: {scenario: namespace-restore, objectives: {rto: 30m, rpo: 1h}, target: {namespace: shop}, params: {backup: {name: b1}}, verify: {job: {template: {spec: {containers: [{name: c, image: psql}]}}}, http: {service: db, port: "8080", path: /newest}}}}`,
		`{apiVersion: drillbot.io/v1alpha1, kind: Drill, metadata: {name: nr-https}, spec: {scenario: namespace-restore, objectives: {rto: 30m, rpo: 1h}, target: {namespace: shop}, params: {backup: {name: b1}}, verify: {http: {service: db, port: https, path: /newest, scheme: https}}}}`,
		`{apiVersion: drillbot.io/v1alpha1, kind: Drill, metadata: {name: pk-plain}, spec: {scenario: pod-kill, objectives: {rto: 5m}, target: {namespace: shop, selector: {app: web}}}}`,
		`{apiVersion: drillbot.io/v1alpha1, kind: Drill, metadata: {name: fr-schedule}, spec: {scenario: failover-restore, objectives: {rto: 30m, rpo: 24h}, target: {namespace: copy}, params: {sourceNamespace: shop, storageLocation: dr, schedule: daily, veleroNamespace: backup, allowReadWriteLocation: true}}}`,
		`{apiVersion: drillbot.io/v1alpha1, kind: Drill, metadata: {name: be-named}, spec: {scenario: block-secrets-backend, objectives: {rto: 15m}, target: {namespace: eso, selector: {app: eso}}, params: {externalSecrets: [apps/db, other/x], secrets: [apps/db-creds]}}}`,
	}
	var out []drill.Definition
	for i, d := range docs {
		defs, err := drill.Parse(fmt.Sprintf("extra-%d.yaml", i), []byte(d), scenarios.Registry(scenarios.Deps{}))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, defs...)
	}
	return out
}

// TestCallsAndRBACAgree: drillbot's derived RBAC (rbac.Base and
// rbac.ForDrill, the chart's rules) allows every call a drill's plan
// lists, and grants nothing no call needs. Either way round, a drift
// between what plan says and what the service account may do fails here.
func TestCallsAndRBACAgree(t *testing.T) {
	kinds := scenarios.Registry(scenarios.Deps{})
	for _, def := range catalog(t) {
		t.Run(def.Name, func(t *testing.T) {
			calls, err := plan.Calls(def, kinds, ns)
			if err != nil {
				t.Fatal(err)
			}
			grants, err := rbac.ForDrill(def, kinds)
			if err != nil {
				t.Fatal(err)
			}
			all := append(rbac.Base(ns), grants...)
			for _, c := range calls {
				if c.Why == "" {
					t.Errorf("call %s %s says not why", c.Verb, c.Resource)
				}
				if !c.Optional && !covered(all, c) {
					t.Errorf("the plan's call %s %s/%s %s/%s (%s) is not granted by drillbot's RBAC", c.Verb, c.Group, c.Resource, c.Namespace, c.Name, c.Phase)
				}
			}
			// Every (verb, resource, name) granted for the drill is some
			// call's (rbac.Base is the daemon's own, for all drills).
			for _, g := range grants {
				for _, r := range validation.BreakdownRule(g.Rule) {
					if len(r.NonResourceURLs) > 0 {
						if !slices.ContainsFunc(calls, func(c engine.Call) bool { return c.URL == r.NonResourceURLs[0] && c.Verb == r.Verbs[0] }) {
							t.Errorf("RBAC grants %s %s, which no call of the plan makes", r.Verbs[0], r.NonResourceURLs[0])
						}
						continue
					}
					var names []string
					if len(r.ResourceNames) > 0 {
						names = r.ResourceNames
					}
					used := false
					for _, c := range calls {
						if c.Verb == r.Verbs[0] && c.Group == r.APIGroups[0] && c.Resource == r.Resources[0] &&
							(g.Namespace == "" || c.Namespace == g.Namespace) &&
							(names == nil || c.Name == names[0]) {
							used = true
							break
						}
					}
					if !used {
						t.Errorf("RBAC grants %s %s/%s %s in %q, which no call of the plan makes", r.Verbs[0], r.APIGroups[0], r.Resources[0], strings.Join(names, ","), g.Namespace)
					}
				}
			}
		})
	}
}
