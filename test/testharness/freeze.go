package testharness

import (
	"context"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/drillbot-io/drillbot/test/localcluster"
)

// FreezeConfigMap makes the API server refuse every update of one
// ConfigMap, with a ValidatingAdmissionPolicy (a change freeze, as an
// operator or a policy engine might set): an undo that must write it
// fails until the returned thaw is called. Both wait until the API server
// enforces the change.
func FreezeConfigMap(t *testing.T, c *localcluster.Cluster, ns, name string) (thaw func()) {
	t.Helper()
	ctx := context.Background()
	vap := c.Kube.AdmissionregistrationV1().ValidatingAdmissionPolicies()
	bindings := c.Kube.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings()
	policy := "freeze-" + ns
	_, err := vap.Create(ctx, &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: policy},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: ns}},
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
					ResourceNames: []string{name},
					RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Update},
						Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}},
					},
				}},
			},
			Validations: []admissionregistrationv1.Validation{{Expression: "false", Message: "change freeze: " + ns + "/" + name + " is frozen"}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bindings.Create(ctx, &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: policy},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: policy,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A dry-run update tells when the API server enforces the freeze.
	denied := func(ctx context.Context) bool {
		cm, err := c.Kube.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		_, err = c.Kube.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}})
		return err != nil && (apierrors.IsInvalid(err) || apierrors.IsForbidden(err))
	}
	until := func(what string, cond func(context.Context) bool) {
		if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			return cond(ctx), nil
		}); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	until("the freeze enforced", denied)
	thawed := false
	thaw = func() {
		if thawed {
			return
		}
		thawed = true
		_ = bindings.Delete(ctx, policy, metav1.DeleteOptions{})
		_ = vap.Delete(ctx, policy, metav1.DeleteOptions{})
		until("the freeze lifted", func(ctx context.Context) bool { return !denied(ctx) })
	}
	t.Cleanup(thaw)
	return thaw
}
