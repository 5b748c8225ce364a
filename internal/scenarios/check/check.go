// Package check is what drillbot's checks share: scenario kinds that inject
// nothing and verify a standing promise over the namespaces a label
// selector matches (backup-coverage, pod-security-audit, signed-images,
// encryption-at-rest).
package check

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes"

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

// Namespaces are the namespaces a check covers: its label selector.
type Namespaces struct{ sel labels.Selector }

// SelectNamespaces parses a check's validated selector.
func SelectNamespaces(sel *metav1.LabelSelector) (Namespaces, error) {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return Namespaces{}, fmt.Errorf("spec.params.namespaces: %w", err)
	}
	return Namespaces{sel: s}, nil
}

// String is the selector, as kubectl writes it.
func (n Namespaces) String() string { return n.sel.String() }

// List lists the namespaces the selector matches now.
func (n Namespaces) List(ctx context.Context, c kubernetes.Interface) ([]corev1.Namespace, error) {
	list, err := c.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: n.sel.String()})
	if err != nil {
		return nil, fmt.Errorf("list namespaces %s: %w", n.sel, err)
	}
	return list.Items, nil
}
