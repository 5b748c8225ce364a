// Package check is what drillbot's checks share: scenario kinds that inject
// nothing and verify a standing promise over the namespaces a label
// selector matches (backup-coverage, pod-security-audit, signed-images,
// encryption-at-rest).
package check

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/engine"
)

// Kind, embedded in a check's Kind, makes it read-only (it may run as
// often as every minute) and targetless (its drills name no target).
type Kind struct{}

// ReadOnly implements engine.ReadOnly.
func (Kind) ReadOnly() bool { return true }

// Targetless implements engine.Targetless.
func (Kind) Targetless() bool { return true }

var (
	_ engine.ReadOnly   = Kind{}
	_ engine.Targetless = Kind{}
)

// NoFault, embedded in a check's scenario, is its Inject and Revert: a
// check breaks nothing, so there is never anything to undo.
type NoFault struct{}

// Inject implements engine.Scenario.
func (NoFault) Inject(context.Context, engine.Journal) error { return nil }

// Revert implements engine.Scenario.
func (NoFault) Revert(context.Context, v1alpha1.JournalEntry) error { return nil }

// ValidateNamespaces checks a selector of the namespaces a check covers:
// required (all namespaces is not a promise anyone keeps) and parseable.
func ValidateNamespaces(sel *metav1.LabelSelector, path *field.Path) field.ErrorList {
	if sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0) {
		return field.ErrorList{field.Required(path, "a label selector on namespaces (e.g. matchLabels: {env: production}); all namespaces is not a promise anyone keeps")}
	}
	if _, err := metav1.LabelSelectorAsSelector(sel); err != nil {
		return field.ErrorList{field.Invalid(path, sel, err.Error())}
	}
	return nil
}

// PodReads are the permissions and calls of a check that reads the
// selected namespaces' pods.
func PodReads(why string) ([]engine.Grant, []engine.Call) {
	rec := engine.Phases().Recover
	return []engine.Grant{engine.Allow("", "", []string{"namespaces", "pods"}, []string{"list"})},
		[]engine.Call{
			rec.Call("list", "", "namespaces", "", "", "the namespaces the selector matches"),
			rec.Call("list", "", "pods", "", "", why),
		}
}
