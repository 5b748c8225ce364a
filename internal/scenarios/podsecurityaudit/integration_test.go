package podsecurityaudit_test

// Integration tests: the pod-security-audit check against the local
// cluster's API server, with its Pod Security admission: a compliant
// namespace, one without an enforce label, and one labelled restricted
// after a root pod was admitted. The violations drillbot names are the
// ones the API server's own server-side dry-run of the label warns about.

import (
	"context"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/test/localcluster"
	"github.com/drillbot-io/drillbot/test/testharness"
)

var cluster *localcluster.Cluster

func TestMain(m *testing.M) { os.Exit(localcluster.RunTests(m, &cluster)) }

// warnings collects the API server's warnings.
type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func restrictedPod(name string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1", SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: ptr.To(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}}}}}
}

func TestPodSecurityAudit(t *testing.T) {
	localcluster.Require(t, cluster)
	ctx := context.Background()
	env := "psa-" + localcluster.RandomSuffix()
	compliant, unlabelled, legacy := "compliant-"+env, "unlabelled-"+env, "legacy-"+env
	testharness.Namespace(t, cluster, compliant, map[string]string{"env": env, "pod-security.kubernetes.io/enforce": "restricted"})
	testharness.Namespace(t, cluster, unlabelled, map[string]string{"env": env})
	testharness.Namespace(t, cluster, legacy, map[string]string{"env": env})
	for _, ns := range []string{compliant, unlabelled} {
		if _, err := cluster.Kube.CoreV1().Pods(ns).Create(ctx, restrictedPod("web"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Admitted while the namespace enforced nothing: runs as root.
	if _, err := cluster.Kube.CoreV1().Pods(legacy).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "legacy-root"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.Kube.CoreV1().Pods(legacy).Create(ctx, restrictedPod("ok"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The plan's audit: a server-side dry-run of enforce=restricted; the
	// API server warns about each violating pod. Then the label, for real.
	w := &warnings{}
	cfg := rest.CopyConfig(cluster.REST)
	cfg.WarningHandler = w
	admin, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := admin.CoreV1().Namespaces().Get(ctx, legacy, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ns.Labels["pod-security.kubernetes.io/enforce"] = "restricted"
	if _, err := admin.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatal(err)
	}
	var warned []string
	for _, text := range w.list {
		if pod, _, ok := strings.Cut(text, ": "); ok && !strings.Contains(pod, " ") {
			warned = append(warned, pod)
		}
	}
	t.Logf("the API server's dry-run warnings: %q", w.list)
	if !slices.Equal(warned, []string{"legacy-root"}) {
		t.Fatalf("the dry run warned about %q, want legacy-root only", warned)
	}
	if _, err := cluster.Kube.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	h := testharness.New(t, cluster)
	run := h.Run(h.Drill(`apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata: {name: audit-` + env + `}
spec:
  scenario: pod-security-audit
  objectives: {rto: 1m}
  params: {namespaces: {matchLabels: {env: ` + env + `}}}
`))
	if run.Status.Verdict != v1alpha1.VerdictFail {
		t.Fatalf("verdict %s: %s", run.Status.Verdict, run.Status.Reason)
	}
	for _, want := range []string{
		"namespace " + unlabelled + " enforces no Pod Security level",
		"namespace " + legacy + ": 1 of 2 pods violate restricted: legacy-root: ",
	} {
		if !strings.Contains(run.Status.Reason, want) {
			t.Errorf("reason %q, want %q", run.Status.Reason, want)
		}
	}
	if strings.Contains(run.Status.Reason, compliant) || strings.Contains(run.Status.Reason, legacy+": 1 of 2 pods violate restricted: ok") {
		t.Errorf("a compliant namespace or pod named: %q", run.Status.Reason)
	}
	if !strings.Contains(strings.Join(run.Status.Findings, "\n"), "Pod Security compliance: 1 of 3 namespaces") {
		t.Errorf("findings %q", run.Status.Findings)
	}
	if w := h.TargetWrites(); len(w) > 0 {
		t.Errorf("the audit wrote: %v", w)
	}
}

// TestPodSecurityAuditPinned: a namespace enforcing restricted pinned to
// v1.22, where the API server admits a pod running as uid 0 (runAsUser is
// a restricted check since v1.23), is not compliant; one pinned to the API
// server's own release (v1.34) is.
func TestPodSecurityAuditPinned(t *testing.T) {
	localcluster.Require(t, cluster)
	ctx := context.Background()
	env := "psa-pin-" + localcluster.RandomSuffix()
	old, current := "old-"+env, "current-"+env
	testharness.Namespace(t, cluster, old, map[string]string{"env": env,
		"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "v1.22"})
	testharness.Namespace(t, cluster, current, map[string]string{"env": env,
		"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "v1.34"})
	// The pin's gap, shown by the API server itself: it admits uid 0.
	root := restrictedPod("uid0")
	root.Spec.SecurityContext.RunAsUser = ptr.To[int64](0)
	if _, err := cluster.Kube.CoreV1().Pods(old).Create(ctx, root, metav1.CreateOptions{}); err != nil {
		t.Fatalf("the API server refused a uid-0 pod under restricted:v1.22: %v", err)
	}
	if _, err := cluster.Kube.CoreV1().Pods(current).Create(ctx, restrictedPod("web"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	h := testharness.New(t, cluster)
	run := h.Run(h.Drill(`apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata: {name: audit-` + env + `}
spec:
  scenario: pod-security-audit
  objectives: {rto: 1m}
  params: {namespaces: {matchLabels: {env: ` + env + `}}}
`))
	if run.Status.Verdict != v1alpha1.VerdictFail {
		t.Fatalf("verdict %s: %s", run.Status.Verdict, run.Status.Reason)
	}
	for _, want := range []string{
		"namespace " + old + " pins restricted to v1.22 (pod-security.kubernetes.io/enforce-version): the API server (v1.34) does not enforce ",
		"runAsUser (since v1.23)",
		"namespace " + old + ": 1 of 1 pods violate restricted: uid0: runAsUser=0",
	} {
		if !strings.Contains(run.Status.Reason, want) {
			t.Errorf("reason %q, want %q", run.Status.Reason, want)
		}
	}
	if strings.Contains(run.Status.Reason, current) {
		t.Errorf("the namespace pinned to the API server's release named: %q", run.Status.Reason)
	}
	if !strings.Contains(strings.Join(run.Status.Findings, "\n"), "Pod Security compliance: 1 of 2 namespaces") {
		t.Errorf("findings %q", run.Status.Findings)
	}
	if w := h.TargetWrites(); len(w) > 0 {
		t.Errorf("the audit wrote: %v", w)
	}
}
