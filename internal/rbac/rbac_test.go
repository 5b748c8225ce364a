package rbac

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/scenarios"
)

func TestMerge(t *testing.T) {
	s := Merge([]engine.Grant{
		engine.Allow("a", "", []string{"pods"}, []string{"list", "get"}),
		engine.Allow("a", "", []string{"configmaps"}, []string{"get", "list"}),
		engine.Allow("a", "", []string{"configmaps"}, []string{"update"}, "one"),
		engine.Allow("", "", []string{"namespaces"}, []string{"get"}, "a"),
		engine.Allow("", "", []string{"namespaces"}, []string{"get"}, "a"),
	})
	if len(s.Cluster) != 1 || len(s.Namespaced["a"]) != 2 {
		t.Fatalf("cluster %v namespaced %v", s.Cluster, s.Namespaced)
	}
	got := s.Namespaced["a"]
	if strings.Join(got[0].Resources, ",") != "configmaps,pods" || strings.Join(got[0].Verbs, ",") != "get,list" {
		t.Errorf("merged rule %+v", got[0])
	}
	if got[1].ResourceNames[0] != "one" || got[1].Verbs[0] != "update" {
		t.Errorf("named rule %+v", got[1])
	}
}

func TestCheck(t *testing.T) {
	rule := func(groups, res, verbs []string) rbacv1.PolicyRule {
		return rbacv1.PolicyRule{APIGroups: groups, Resources: res, Verbs: verbs}
	}
	core := []string{""}
	cases := []struct {
		name string
		r    rbacv1.PolicyRule
		ok   bool
	}{
		{"plain", rule(core, []string{"pods"}, []string{"get"}), true},
		{"wildcard verb", rule(core, []string{"pods"}, []string{"*"}), false},
		{"wildcard resource", rule(core, []string{"*"}, []string{"get"}), false},
		{"wildcard group", rule([]string{"*"}, []string{"pods"}, []string{"get"}), false},
		{"escalate", rule([]string{"rbac.authorization.k8s.io"}, []string{"clusterroles"}, []string{"escalate"}), false},
		{"bind", rule([]string{"rbac.authorization.k8s.io"}, []string{"roles"}, []string{"bind"}), false},
		{"impersonate", rule(core, []string{"users"}, []string{"impersonate"}), false},
		{"writes RBAC", rule([]string{"rbac.authorization.k8s.io"}, []string{"rolebindings"}, []string{"create"}), false},
		{"reads RBAC", rule([]string{"rbac.authorization.k8s.io"}, []string{"rolebindings"}, []string{"list"}), true},
		{"reading the API server's metrics", rbacv1.PolicyRule{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}, true},
		{"reading the API server's release", rbacv1.PolicyRule{NonResourceURLs: []string{"/version"}, Verbs: []string{"get"}}, true},
		{"another non-resource URL", rbacv1.PolicyRule{NonResourceURLs: []string{"/logs"}, Verbs: []string{"get"}}, false},
		{"another beside an allowed one", rbacv1.PolicyRule{NonResourceURLs: []string{"/metrics", "/logs"}, Verbs: []string{"get"}}, false},
		{"writing /metrics", rbacv1.PolicyRule{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get", "post"}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := Check([]rbacv1.PolicyRule{tc.r}); (err == nil) != tc.ok {
				t.Errorf("Check = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestEveryCatalogDrillDeclaresItsPermissions: every shipped drill renders,
// passes Check, and reads its own target namespace.
func TestEveryCatalogDrillDeclaresItsPermissions(t *testing.T) {
	kinds := scenarios.Registry(scenarios.Deps{})
	defs, err := drill.LoadPaths([]string{"../../drills"}, kinds)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range defs {
		t.Run(d.Name, func(t *testing.T) {
			g, err := ForDrill(d, kinds)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := Merge(g).Objects("x", Subject{Namespace: "drillbot-system", ServiceAccount: "drillbot"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(objs) < 2 {
				t.Errorf("%d objects", len(objs))
			}
			found := false
			for _, r := range Merge(g).Cluster {
				found = found || (len(r.Resources) > 0 && r.Resources[0] == "namespaces" && slices.Contains(r.ResourceNames, d.Spec.Target.Namespace))
			}
			if !found && d.Spec.Target.Namespace != "" { // checks name no target
				t.Error("cannot read its target namespace (the opt-in check)")
			}
		})
	}
	out, err := Helm(defs, kinds)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range defs {
		if !bytes.Contains(out, []byte(`(index .Values.drills "`+d.Name+`").enabled`)) {
			t.Errorf("no Helm block for %s", d.Name)
		}
	}
	if bytes.Contains(out, []byte("drillbot-helm-")) {
		t.Error("a placeholder was left in the Helm template")
	}
}

func TestUnknownKind(t *testing.T) {
	_, err := ForDrill(drill.Definition{Name: "x", Spec: drill.Definition{}.Spec}, engine.Registry{})
	if err == nil {
		t.Error("a drill of an unknown kind got permissions")
	}
}
