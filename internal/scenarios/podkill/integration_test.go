package podkill_test

// Integration tests on the local cluster: the kill-kyverno shape of pod-kill
// where real Kyverno cannot go. Real Kyverno is killed under both failure
// policies in test/realstack; here a Deployment stands for its admission
// controller (kwok runs its pods) and the test serves the webhook, for the
// self-lockout real Kyverno's defaults exclude (a fail-closed webhook that
// guards its own namespace) and the opt-in refusal.
// The webhook is unavailable from the first review after the controller's
// pods are gone, for at least three reviews and until replacements are
// Ready; the API server then applies the webhook's real failure policy:
// Ignore admits (fail-open), Fail refuses (fail-closed).

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	nr "github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
	"github.com/drillbot-io/drillbot/test/localcluster"
	"github.com/drillbot-io/drillbot/test/testharness"
)

var cluster *localcluster.Cluster

func TestMain(m *testing.M) { os.Exit(localcluster.RunTests(m, &cluster)) }

var controllerLabels = map[string]string{"app.kubernetes.io/component": "admission-controller"}

const killDrill = `apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata: {name: %s}
spec:
  scenario: pod-kill
  objectives: {rto: 5m}
  timeouts: {recover: %s, revert: %s}
  target:
    namespace: %s
    selector: {app.kubernetes.io/component: admission-controller}
  params:
    admission:
      namespace: %s
      attempt: {image: registry.example/unsigned:latest}
      reasonContains: signature
      interval: 200ms
    requiredObjects: {version: v1, resource: configmaps, namespace: %s, names: [require-signed-images]}
`

// kyverno sets up the stand-in: namespace, controller Deployment (3), a
// "policy" ConfigMap, a namespace to probe in, and the webhook with the given
// failure policy over the probe namespace (and over its own namespace too
// when guardsSelf, which Kyverno's defaults exclude for a reason).
func kyverno(t *testing.T, ns, probeNS string, fp admissionregistrationv1.FailurePolicyType, guardsSelf bool) {
	t.Helper()
	ctx := context.Background()
	own := map[string]string{v1alpha1.LabelAllowDisaster: "true"}
	if guardsSelf {
		own["probe-case"] = ns
	}
	testharness.Namespace(t, cluster, ns, own)
	testharness.Namespace(t, cluster, probeNS, map[string]string{v1alpha1.LabelAllowDisaster: "true", "probe-case": ns})
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "kyverno-admission-controller", Namespace: ns},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](3), Selector: &metav1.LabelSelector{MatchLabels: controllerLabels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: controllerLabels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "kyverno", Image: "registry.example/kyverno:v1.19.1"}}}}}}
	if _, err := cluster.Kube.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.Kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "require-signed-images"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := nr.WaitWorkloadsReady(wctx, cluster.Kube, ns); err != nil {
		t.Fatal(err)
	}
	original := podNames(t, ns)

	var (
		mu        sync.Mutex
		downSince = -1 // reviews answered since the controller went down
	)
	wh, err := cluster.ServeWebhook(ctx, ns, map[string]string{"probe-case": ns}, fp, func(pod *corev1.Pod) (bool, string) {
		if !strings.Contains(pod.Spec.Containers[0].Image, "@sha256:") {
			return false, "image signature missing: " + pod.Spec.Containers[0].Image
		}
		return true, ""
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(wh.Close)
	wh.SetAvailable(func() bool {
		mu.Lock()
		defer mu.Unlock()
		pods, err := cluster.Kube.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false
		}
		ready, originals := 0, 0
		for _, p := range pods.Items {
			if slices.Contains(original, p.Name) && p.DeletionTimestamp == nil {
				originals++
			} else if p.DeletionTimestamp == nil && isReady(&p) {
				ready++
			}
		}
		if downSince < 0 && originals == len(original) {
			return true // before the kill
		}
		downSince++
		return downSince > 3 && ready >= len(original)
	})
}

func podNames(t *testing.T, ns string) []string {
	t.Helper()
	pods, err := cluster.Kube.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pods.Items {
		names = append(names, p.Name)
	}
	return names
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func TestKillKyverno(t *testing.T) {
	cases := []struct {
		name          string
		failurePolicy admissionregistrationv1.FailurePolicyType
		guardsSelf    bool
		timeout       string
		wantVerdict   v1alpha1.Verdict
		want          string // in the reason or a finding
		wantMS        string // milestones
	}{
		{name: "fail-closed webhook guarding its own namespace locks itself out", failurePolicy: admissionregistrationv1.Fail, guardsSelf: true, timeout: "15s",
			wantVerdict: v1alpha1.VerdictFail, want: "0 of 3 replacement pods Ready", wantMS: ""},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := testharness.New(t, cluster)
			ns := fmt.Sprintf("kyverno-%d-%s", i, localcluster.RandomSuffix())
			kyverno(t, ns, ns+"-probe", tc.failurePolicy, tc.guardsSelf)
			before := podNames(t, ns)

			run := h.Run(h.Drill(fmt.Sprintf(killDrill, ns, tc.timeout, tc.timeout, ns, ns+"-probe", ns)))

			st := run.Status
			story := testharness.Story(st)
			if st.Verdict != tc.wantVerdict || !strings.Contains(story, tc.want) {
				t.Fatalf("verdict %s, want %s with %q: %s", st.Verdict, tc.wantVerdict, tc.want, story)
			}
			if got := testharness.Milestones(st); got != tc.wantMS {
				t.Errorf("milestones %q, want %q", got, tc.wantMS)
			}
			if tc.guardsSelf {
				// Nothing can recover it: the revert must say the fault may still be active.
				if !strings.Contains(st.Reason, "revert failed, fault may still be active") || st.Journal[0].State != v1alpha1.JournalFailed {
					t.Errorf("reason %q journal %s", st.Reason, localcluster.JSON(st.Journal))
				}
				return
			}
			if rto, err := time.ParseDuration(st.RTO); err != nil || rto <= 0 {
				t.Errorf("RTO %q", st.RTO)
			}
			if len(st.Journal) != 1 || st.Journal[0].State != v1alpha1.JournalReverted {
				t.Errorf("journal %s", localcluster.JSON(st.Journal))
			}
			// The controller really was killed and replaced.
			for _, n := range podNames(t, ns) {
				if slices.Contains(before, n) {
					t.Errorf("pod %s survived the kill", n)
				}
			}
			// Probes were dry runs: nothing but the controller's pods exists.
			if got := len(podNames(t, ns)); got != 3 {
				t.Errorf("%d pods in %s, want the controller's 3", got, ns)
			}
		})
	}
}

func TestPodKillRefusesNamespaceWithoutOptIn(t *testing.T) {
	h := testharness.New(t, cluster)
	ns := "kyverno-noopt-" + localcluster.RandomSuffix()
	testharness.Namespace(t, cluster, ns, nil)

	run := h.Run(h.Drill(fmt.Sprintf(killDrill, ns, "1m", "1m", ns, ns, ns)))

	if run.Status.Verdict != v1alpha1.VerdictFail || !strings.Contains(run.Status.Reason, "not opted in") {
		t.Fatalf("verdict %s %q", run.Status.Verdict, run.Status.Reason)
	}
	if w := h.TargetWrites(); len(w) > 0 {
		t.Errorf("refused drill wrote: %v", w)
	}
}
