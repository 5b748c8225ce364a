package admissionprobe_test

// Integration tests: the probe goes through the real kube-apiserver's
// admission chain. Real Kyverno verifying cosign signatures is probed in
// test/realstack (denied, admitted, denied for another reason, positive
// control denied); here Pod Security admission is the API server's own, and
// a webhook the test serves stands in only for one that cannot be reached.

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/test/localcluster"
	"github.com/drillbot-io/drillbot/test/testharness"
)

var cluster *localcluster.Cluster

func TestMain(m *testing.M) { os.Exit(localcluster.RunTests(m, &cluster)) }

// signedOnly admits images pinned by digest, as a signature policy would.
func signedOnly(pod *corev1.Pod) (bool, string) {
	for _, c := range pod.Spec.Containers {
		if !strings.Contains(c.Image, "@sha256:") {
			return false, "image signature missing: " + c.Image + " is not signed"
		}
	}
	return true, ""
}

const probeDrill = `apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata: {name: %s}
spec:
  scenario: admission-probe
  objectives: {rto: 1m}
  target: {namespace: %s}
  params:
    attempt: {image: %q, privileged: %t}
    reasonContains: %q
    positiveControl: {image: "registry.example/app@sha256:0000000000000000000000000000000000000000000000000000000000000000", restricted: true}
`

func TestAdmissionProbe(t *testing.T) {
	cases := []struct {
		name          string
		decide        localcluster.PodDecision // nil: no webhook
		failurePolicy admissionregistrationv1.FailurePolicyType
		unreachable   bool
		nsLabels      map[string]string
		image         string
		privileged    bool
		reason        string
		wantVerdict   v1alpha1.Verdict
		wantReason    string
	}{
		{name: "unreachable fail-closed webhook is inconclusive", decide: signedOnly, unreachable: true,
			failurePolicy: admissionregistrationv1.Fail, image: "registry.example/app:latest", reason: "signature",
			wantVerdict: v1alpha1.VerdictInconclusive, wantReason: "failed calling webhook"},
		{name: "privileged pod in a restricted namespace denied by Pod Security",
			nsLabels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"},
			image:    "registry.example/app@sha256:0000000000000000000000000000000000000000000000000000000000000000", privileged: true,
			reason: "violates PodSecurity", wantVerdict: v1alpha1.VerdictPass},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := testharness.New(t, cluster)
			ctx := context.Background()
			ns := fmt.Sprintf("probe-%d-%s", i, localcluster.RandomSuffix())
			labels := map[string]string{v1alpha1.LabelAllowDisaster: "true", "probe-case": ns}
			for k, v := range tc.nsLabels {
				labels[k] = v
			}
			testharness.Namespace(t, cluster, ns, labels)
			if tc.decide != nil {
				fp := tc.failurePolicy
				if fp == "" {
					fp = admissionregistrationv1.Fail
				}
				wh, err := cluster.ServeWebhook(ctx, ns, map[string]string{"probe-case": ns}, fp, tc.decide)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(wh.Close)
				if tc.unreachable {
					wh.StopServing()
				}
			}

			run := h.Run(h.Drill(fmt.Sprintf(probeDrill, ns, ns, tc.image, tc.privileged, tc.reason)))

			if run.Status.Verdict != tc.wantVerdict || !strings.Contains(run.Status.Reason, tc.wantReason) {
				t.Errorf("verdict %s %q, want %s containing %q", run.Status.Verdict, run.Status.Reason, tc.wantVerdict, tc.wantReason)
			}
			// A dry run persists nothing and journals nothing.
			pods, err := cluster.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			if err != nil || len(pods.Items) != 0 || len(run.Status.Journal) != 0 {
				t.Errorf("pods %d (err %v), journal %d: the probe must leave nothing behind", len(pods.Items), err, len(run.Status.Journal))
			}
		})
	}
}

func TestAdmissionProbeRefusesNamespaceWithoutOptIn(t *testing.T) {
	h := testharness.New(t, cluster)
	ns := "probe-noopt-" + localcluster.RandomSuffix()
	testharness.Namespace(t, cluster, ns, nil)

	run := h.Run(h.Drill(fmt.Sprintf(probeDrill, ns, ns, "registry.example/app:latest", false, "signature")))

	if run.Status.Verdict != v1alpha1.VerdictFail || !strings.Contains(run.Status.Reason, "not opted in") {
		t.Fatalf("verdict %s %q", run.Status.Verdict, run.Status.Reason)
	}
	if w := h.TargetWrites(); len(w) > 0 {
		t.Errorf("refused probe wrote (a dry-run create counts): %v", w)
	}
}
