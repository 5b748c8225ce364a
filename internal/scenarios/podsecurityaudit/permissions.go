package podsecurityaudit

import (
	"slices"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/scenarios/check"
)

var (
	_ engine.Permissioner = Kind{}
	_ engine.Planner      = Kind{}
)

// reads: lists only, and the API server's /version (a pinned
// enforce-version is compared with the release it runs). A server-side
// dry-run of the enforce label would need update on every namespace.
var reads, calls = func() ([]engine.Grant, []engine.Call) {
	g, c := check.PodReads("each selected namespace's pods, evaluated at the audited level")
	g = append(g, engine.Grant{Rule: rbacv1.PolicyRule{NonResourceURLs: []string{"/version"}, Verbs: []string{"get"}}})
	c = append(c, engine.Phases().Recover.URL("get", "/version", "the API server's release, when a namespace pins enforce-version (what the pin is compared with)"))
	return g, c
}()

// Permissions implements engine.Permissioner.
func (Kind) Permissions(drill.Definition) []engine.Grant { return slices.Clone(reads) }

// Calls implements engine.Planner.
func (Kind) Calls(drill.Definition) []engine.Call { return slices.Clone(calls) }
