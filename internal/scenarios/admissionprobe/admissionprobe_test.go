package admissionprobe

import (
	"context"
	"errors"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
)

func TestClassify(t *testing.T) {
	pods := schema.GroupResource{Resource: "pods"}
	cases := []struct {
		name string
		err  error
		want Outcome
	}{
		{"admitted", nil, Admitted},
		{"webhook denial", apierrors.NewForbidden(pods, "p", errors.New(`admission webhook "verify.kyverno.io" denied the request: image signature missing`)), Denied},
		// Seen under Calico (TestRekorOutage): Kyverno's policy denied the
		// pod because its own call to the log timed out; once classified
		// unanswered, which made the drill INCONCLUSIVE.
		{"webhook denial quoting a timeout of its own call", apierrors.NewForbidden(pods, "p", errors.New(`admission webhook "validate.kyverno.svc-fail" denied the request: failed to fetch data for APICall: failed to execute HTTP request for APICall tlog: Get "http://10.244.1.1:35779/api/v1/log": context deadline exceeded`)), Denied},
		{"pod security", apierrors.NewForbidden(pods, "p", errors.New(`violates PodSecurity "restricted:latest": privileged`)), Denied},
		{"validating admission policy", apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "p", field.ErrorList{field.Invalid(field.NewPath(""), "p",
			"ValidatingAdmissionPolicy 'no-latest' with binding 'no-latest' denied request: tag latest")}), Denied},
		// Refusals that are not admission decisions prove nothing about the policy.
		{"RBAC refusal", apierrors.NewForbidden(pods, "", errors.New(`User "system:serviceaccount:drillbot-system:drillbot" cannot create resource "pods" in API group "" in the namespace "shop"`)), Refused},
		{"exceeded quota", apierrors.NewForbidden(pods, "p", errors.New(`exceeded quota: compute, requested: pods=1, used: pods=10, limited: pods=10`)), Refused},
		{"invalid probe", apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "p", field.ErrorList{field.Required(field.NewPath("spec", "containers[0]", "image"), "")}), Refused},
		{"webhook unreachable", apierrors.NewInternalError(errors.New(`failed calling webhook "x": connection refused`)), Unanswered},
		{"webhook timeout", apierrors.NewTimeoutError("context deadline exceeded", 1), Unanswered},
		{"client timeout", context.DeadlineExceeded, Unanswered},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Classify(tc.err); got.Outcome != tc.want {
				t.Errorf("Classify(%v) = %s, want %s", tc.err, got.Outcome, tc.want)
			}
		})
	}
}

func TestValidateParams(t *testing.T) {
	cases := []struct {
		params string
		want   string
	}{
		{`{"attempt":{"image":"x"}}`, ""},
		{`{}`, "spec.params.attempt.image: Required"},
		{`{"attempt":{"image":"x","restricted":true,"privileged":true}}`, "spec.params.attempt.restricted"},
		{`{"attempt":{"image":"x"},"positiveControl":{}}`, "spec.params.positiveControl.image: Required"},
		{`{"attempt":{"image":"x","tag":"y"}}`, "spec.params.attempt.tag: Forbidden: unknown field"},
	}
	for _, tc := range cases {
		errs := Kind{}.ValidateParams(v1alpha1.DrillSpec{Params: []byte(tc.params)}, field.NewPath("spec", "params"))
		if got := errs.ToAggregate(); (tc.want == "") != (got == nil) || (got != nil && !strings.Contains(got.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.params, got, tc.want)
		}
	}
}

func TestRefusedProbeSendsNothing(t *testing.T) {
	kube := fake.NewClientset()
	sc, err := Kind{Deps: Deps{Kube: kube}}.New(drill.Definition{Spec: v1alpha1.DrillSpec{Target: v1alpha1.Target{Namespace: "shop"},
		Params: []byte(`{"attempt":{"image":"x"}}`)}}, "run")
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Preflight(context.Background()); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("Preflight = %v", err)
	}
	for _, a := range kube.Actions() {
		if a.GetVerb() != "get" {
			t.Errorf("preflight sent %s %s", a.GetVerb(), a.GetResource().Resource)
		}
	}
}
