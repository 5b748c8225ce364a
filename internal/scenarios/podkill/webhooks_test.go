package podkill

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

const managed = "webhook.kyverno.io/managed-by"

func podRule(ops ...admissionregistrationv1.OperationType) admissionregistrationv1.RuleWithOperations {
	return admissionregistrationv1.RuleWithOperations{Operations: ops,
		Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}}}
}

func validating(name string, fp admissionregistrationv1.FailurePolicyType, rules ...admissionregistrationv1.RuleWithOperations) *admissionregistrationv1.ValidatingWebhookConfiguration {
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{managed: "kyverno"}},
		Webhooks:   []admissionregistrationv1.ValidatingWebhook{{Name: "validate.kyverno.svc-" + strings.ToLower(string(fp)), FailurePolicy: ptr.To(fp), Rules: rules}},
	}
}

// TestRegistrationWatch: what Kyverno has been seen to do to its own
// registration (#6554: configuration deleted; #7852: rules removed) is
// seen; a restored or grown registration is not a loss; someone else's
// configuration is not watched.
func TestRegistrationWatch(t *testing.T) {
	base := validating("kyverno-resource-validating-webhook-cfg", admissionregistrationv1.Ignore, podRule(admissionregistrationv1.Create, admissionregistrationv1.Update))
	cases := []struct {
		name   string
		during func(*admissionregistrationv1.ValidatingWebhookConfiguration) *admissionregistrationv1.ValidatingWebhookConfiguration // nil: deleted
		want   []string
	}{
		{"unchanged", func(c *admissionregistrationv1.ValidatingWebhookConfiguration) *admissionregistrationv1.ValidatingWebhookConfiguration {
			return c
		}, nil},
		{"deleted (#6554)", func(*admissionregistrationv1.ValidatingWebhookConfiguration) *admissionregistrationv1.ValidatingWebhookConfiguration {
			return nil
		},
			[]string{"validating kyverno-resource-validating-webhook-cfg webhook configuration deleted"}},
		{"rules removed (#7852)", func(c *admissionregistrationv1.ValidatingWebhookConfiguration) *admissionregistrationv1.ValidatingWebhookConfiguration {
			c.Webhooks[0].Rules = nil
			return c
		}, []string{"validating kyverno-resource-validating-webhook-cfg lost validate.kyverno.svc-ignore CREATE /v1/pods *; validate.kyverno.svc-ignore UPDATE /v1/pods *"}},
		{"one operation dropped", func(c *admissionregistrationv1.ValidatingWebhookConfiguration) *admissionregistrationv1.ValidatingWebhookConfiguration {
			c.Webhooks[0].Rules = []admissionregistrationv1.RuleWithOperations{podRule(admissionregistrationv1.Update)}
			return c
		}, []string{"validating kyverno-resource-validating-webhook-cfg lost validate.kyverno.svc-ignore CREATE /v1/pods *"}},
		{"failure policy turned to Ignore", func(c *admissionregistrationv1.ValidatingWebhookConfiguration) *admissionregistrationv1.ValidatingWebhookConfiguration {
			c.Webhooks[0].FailurePolicy = nil // the API's default is Fail: no loss
			return c
		}, []string{"validating kyverno-resource-validating-webhook-cfg lost validate.kyverno.svc-ignore failurePolicy=Ignore"}},
		{"rules added and reordered", func(c *admissionregistrationv1.ValidatingWebhookConfiguration) *admissionregistrationv1.ValidatingWebhookConfiguration {
			c.Webhooks[0].Rules = []admissionregistrationv1.RuleWithOperations{podRule(admissionregistrationv1.Delete, admissionregistrationv1.Update, admissionregistrationv1.Create)}
			return c
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			other := validating("someone-else", admissionregistrationv1.Fail, podRule(admissionregistrationv1.Create))
			other.Labels = nil
			c := fake.NewClientset(base.DeepCopy(), other)
			w, err := newRegistrationWatch(ctx, c, managed+"=kyverno")
			if err != nil {
				t.Fatal(err)
			}
			if len(w.before) != 1 {
				t.Fatalf("watching %v, want only Kyverno's configuration", w.before)
			}
			api := c.AdmissionregistrationV1().ValidatingWebhookConfigurations()
			if changed := tc.during(base.DeepCopy()); changed == nil {
				err = api.Delete(ctx, base.Name, metav1.DeleteOptions{})
			} else {
				_, err = api.Update(ctx, changed, metav1.UpdateOptions{})
			}
			if err != nil {
				t.Fatal(err)
			}
			// The unrelated configuration disappearing is not the drill's business.
			if err := api.Delete(ctx, other.Name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			start := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
			lost, err := w.check(ctx, start.Add(1500*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(lost, tc.want) {
				t.Errorf("losses = %q, want %q", lost, tc.want)
			}
			// Restored: no loss now, but the finding of the loss stays.
			_ = api.Delete(ctx, base.Name, metav1.DeleteOptions{})
			if _, err := api.Create(ctx, base.DeepCopy(), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			if now, err := w.check(ctx, start.Add(3*time.Second)); err != nil || len(now) != 0 {
				t.Fatalf("after restore: %q %v", now, err)
			}
			f := w.findings(start)
			if len(f) != len(tc.want) {
				t.Fatalf("findings = %q, want one per loss %q", f, tc.want)
			}
			for i := range f {
				if !strings.Contains(f[i], "(+1.5s)") || !strings.Contains(f[i], tc.want[i]) {
					t.Errorf("finding %q, want the loss %q first seen at +1.5s", f[i], tc.want[i])
				}
			}
		})
	}
}
