package helm_test

// Upgrades carry the CRD: Helm never upgrades crds/, so the chart applies
// its DrillRun CRD from a pre-install/pre-upgrade hook Job running `drillbot
// crd apply` with drillbot's own image. Here the hook is rendered (least
// privilege), and on the real node a release of the chart as it was before
// its newest CRD change is upgraded to this chart with DrillRuns in place.

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	psaapi "k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/kube"
	"github.com/drillbot-io/drillbot/test/localcluster"
	"github.com/drillbot-io/drillbot/test/testharness"
)

const (
	// previousChart is the last commit whose chart has the CRD before its
	// newest change (88a060d added status.detections[].absentAt, seenAt,
	// unmeasured and notes).
	previousChart = "5d085b70b58c39679045694d9e40ee3d4ed9b5f6"
	crdName       = "drillruns.drillbot.io"
	hookComponent = "crd-upgrade"
	upgradeRel    = "up"
	upgradeNS     = "drillbot-upgrade"
)

// hookObjects are the rendered objects of the CRD hook, by kind.
func hookObjects(docs map[string][]map[string]any) map[string][]map[string]any {
	out := map[string][]map[string]any{}
	for kind, objs := range docs {
		for _, m := range objs {
			labels, _ := m["metadata"].(map[string]any)["labels"].(map[string]any)
			if labels["app.kubernetes.io/component"] == hookComponent {
				out[kind] = append(out[kind], m)
			}
		}
	}
	return out
}

// TestCRDUpgradeHook: the hook Job runs drillbot crd apply with drillbot's
// image, under Pod Security restricted, as a service account of its own
// that may get, create and patch the DrillRun CRD and nothing else; all
// four objects are hooks, the RBAC before the Job, deleted once it
// succeeded; crds.upgradeHook=false renders none.
func TestCRDUpgradeHook(t *testing.T) {
	docs := render(t, "--set", "image.tag=1.2.3")
	hook := hookObjects(docs)
	for _, kind := range []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Job"} {
		if len(hook[kind]) != 1 {
			t.Fatalf("%d hook %ss, want 1", len(hook[kind]), kind)
		}
	}
	if len(hook) != 4 {
		t.Errorf("hook objects of kinds %v, want 4 kinds (networkPolicy off)", reflect.ValueOf(hook).MapKeys())
	}
	weight := map[string]string{}
	for kind, objs := range hook {
		ann, _ := objs[0]["metadata"].(map[string]any)["annotations"].(map[string]any)
		if ann["helm.sh/hook"] != "pre-install,pre-upgrade" || ann["helm.sh/hook-delete-policy"] != "before-hook-creation,hook-succeeded" {
			t.Errorf("%s: hook annotations %v", kind, ann)
		}
		weight[kind], _ = ann["helm.sh/hook-weight"].(string)
	}
	num := func(kind string) int {
		var n int
		if _, err := fmt.Sscan(weight[kind], &n); err != nil {
			t.Fatalf("%s: hook weight %q", kind, weight[kind])
		}
		return n
	}
	if !(num("ServiceAccount") < num("ClusterRoleBinding") && num("ClusterRole") < num("ClusterRoleBinding") && num("ClusterRoleBinding") < num("Job")) {
		t.Errorf("hook weights %v: the service account and role must come before the binding, the binding before the Job", weight)
	}

	sa := decode[corev1.ServiceAccount](t, hook["ServiceAccount"][0])
	role := decode[rbacv1.ClusterRole](t, hook["ClusterRole"][0])
	want := []rbacv1.PolicyRule{{APIGroups: []string{"apiextensions.k8s.io"}, Resources: []string{"customresourcedefinitions"},
		ResourceNames: []string{crdName}, Verbs: []string{"get", "create", "patch"}}}
	if !reflect.DeepEqual(role.Rules, want) {
		t.Errorf("hook ClusterRole rules:\n%s\nwant\n%s", yamlOf(role.Rules), yamlOf(want))
	}
	binding := decode[rbacv1.ClusterRoleBinding](t, hook["ClusterRoleBinding"][0])
	if binding.RoleRef.Name != role.Name || len(binding.Subjects) != 1 || binding.Subjects[0].Kind != "ServiceAccount" ||
		binding.Subjects[0].Name != sa.Name || binding.Subjects[0].Namespace != "drillbot-system" {
		t.Errorf("hook binding %s binds %v to %v, want %s to the hook's service account %s", binding.Name, binding.RoleRef, binding.Subjects, role.Name, sa.Name)
	}
	for _, m := range docs["ClusterRoleBinding"] {
		if b := decode[rbacv1.ClusterRoleBinding](t, m); b.RoleRef.Name == role.Name && b.Name != binding.Name {
			t.Errorf("the hook's role is also bound by %s", b.Name)
		}
	}

	job := decode[batchv1.Job](t, hook["Job"][0])
	pod := job.Spec.Template.Spec
	dep := decode[struct {
		Spec struct {
			Template corev1.PodTemplateSpec `json:"template"`
		} `json:"spec"`
	}](t, docs["Deployment"][0])
	c := pod.Containers[0]
	if len(pod.Containers) != 1 || c.Image != dep.Spec.Template.Spec.Containers[0].Image || c.Image != "ghcr.io/drillbot-io/drillbot:1.2.3" {
		t.Errorf("hook image %q, want drillbot's own (%q)", c.Image, dep.Spec.Template.Spec.Containers[0].Image)
	}
	if len(c.Command) != 0 || len(c.Args) < 2 || c.Args[0] != "crd" || c.Args[1] != "apply" {
		t.Errorf("hook runs %v %v, want drillbot crd apply", c.Command, c.Args)
	}
	if pod.ServiceAccountName != sa.Name || pod.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("hook pod runs as %q (restart %s), want %q", pod.ServiceAccountName, pod.RestartPolicy, sa.Name)
	}
	for k, v := range job.Spec.Template.Labels {
		if dep.Spec.Template.Labels[k] != v {
			continue
		}
		if k == "app.kubernetes.io/name" {
			t.Errorf("the hook pod carries drillbot's selector label %s=%s: the Service and the budget would select it", k, v)
		}
	}
	eval, err := psapolicy.NewEvaluator(psapolicy.DefaultChecks())
	if err != nil {
		t.Fatal(err)
	}
	res := eval.EvaluatePod(psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}, &job.Spec.Template.ObjectMeta, &pod)
	if agg := psapolicy.AggregateCheckResults(res); !agg.Allowed {
		t.Errorf("hook pod violates restricted: %s", agg.ForbiddenDetail())
	}
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("hook's root filesystem is writable")
	}

	if len(hook["NetworkPolicy"]) != 0 {
		t.Error("a hook NetworkPolicy without networkPolicy.enabled")
	}
	withNP := hookObjects(render(t, "--set", "networkPolicy.enabled=true", "--set", "networkPolicy.egress.apiServer.cidrs={10.0.0.1/32}"))
	if len(withNP["NetworkPolicy"]) != 1 {
		t.Fatalf("%d hook NetworkPolicies with networkPolicy.enabled, want 1", len(withNP["NetworkPolicy"]))
	}
	np := decode[networkingv1.NetworkPolicy](t, withNP["NetworkPolicy"][0])
	if !reflect.DeepEqual(np.Spec.PodSelector.MatchLabels, job.Spec.Template.Labels) || len(np.Spec.Ingress) != 0 ||
		!slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) ||
		len(np.Spec.Egress) != 1 || len(np.Spec.Egress[0].To) != 1 || np.Spec.Egress[0].To[0].IPBlock == nil || np.Spec.Egress[0].To[0].IPBlock.CIDR != "10.0.0.1/32" {
		t.Errorf("hook NetworkPolicy: want the hook pod, nothing in, the API server out:\n%s", yamlOf(np.Spec))
	}

	off := hookObjects(render(t, "--set", "crds.upgradeHook=false"))
	if len(off) != 0 {
		t.Errorf("crds.upgradeHook=false still renders the hook: %v", reflect.ValueOf(off).MapKeys())
	}
}

func yamlOf(v any) string {
	b, _ := yaml.Marshal(v)
	return string(b)
}

var drillRunsGVR = schema.GroupVersionResource{Group: "drillbot.io", Version: "v1alpha1", Resource: "drillruns"}

// TestUpgradeCarriesCRD installs the chart as it was before its newest CRD
// change (from git), records DrillRuns, sees drillbot refuse the old CRD,
// then helm upgrades to this chart: the hook applies the new CRD, the runs
// are all there with their data, a new field is kept, drillbot's pod
// becomes Ready, and the hook's objects are gone. Last, drillbot crd apply
// as a service account holding only the hook's rendered role creates the
// CRD where none exists (create limited by name, through apply).
func TestUpgradeCarriesCRD(t *testing.T) {
	localcluster.Require(t, cluster)
	ctx := context.Background()
	rel, ns := upgradeRel, upgradeNS
	kc := "--kubeconfig=" + cluster.Kubeconfig
	crds := apiextensionsClient(t).ApiextensionsV1().CustomResourceDefinitions()

	// The previous chart, from git.
	old := filepath.Join(t.TempDir(), "chart")
	if err := os.MkdirAll(old, 0o700); err != nil {
		t.Fatal(err)
	}
	archive := exec.Command("git", "-C", "../..", "archive", "--format=tar", previousChart, "deploy/helm/drillbot", "drills")
	var tarball bytes.Buffer
	archive.Stdout, archive.Stderr = &tarball, os.Stderr
	if err := archive.Run(); err != nil {
		t.Fatalf("the previous chart from git (commit %s; a shallow clone lacks it): %v", previousChart, err)
	}
	// The chart's drills/ is a link to the repository's: both keep their
	// places, so it resolves.
	untar := exec.Command("tar", "-x", "-C", old)
	untar.Stdin = &tarball
	if out, err := untar.CombinedOutput(); err != nil {
		t.Fatalf("untar the previous chart: %v\n%s", err, out)
	}
	oldChart := filepath.Join(old, "deploy", "helm", "drillbot")
	oldCRD, err := os.ReadFile(filepath.Join(oldChart, "crds", "drillbot.io_drillruns.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(oldCRD, []byte("seenAt")) || bytes.Contains(oldCRD, []byte("absentAt")) {
		t.Fatal("the previous chart's CRD already has detections' absentAt/seenAt: pick an older commit")
	}

	// No CRD left by another test: the old chart's install creates its own.
	if err := crds.Delete(ctx, crdName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	pollT(t, "the DrillRun CRD to be gone", time.Minute, func() (bool, error) {
		_, err := crds.Get(ctx, crdName, metav1.GetOptions{})
		return apierrors.IsNotFound(err), err
	})
	if err := cluster.ImportImage(ctx, "drillbot"); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The catalog's drills the chart enables by default target drill-demo
	// (their Roles live there): another test may have made it already.
	demo, err := cluster.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "drill-demo",
		Labels: map[string]string{v1alpha1.LabelAllowDisaster: "true", "pod-security.kubernetes.io/enforce": "restricted"}}}, metav1.CreateOptions{})
	switch {
	case err == nil:
		t.Cleanup(func() {
			_ = cluster.Kube.CoreV1().Namespaces().Delete(context.Background(), demo.Name, metav1.DeleteOptions{})
		})
	case !apierrors.IsAlreadyExists(err):
		t.Fatal(err)
	}
	values := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(values, []byte("image: {repository: drillbot.local/drillbot, tag: dev, pullPolicy: Never}\nreplicas: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = helmErr("uninstall", rel, kc, "--namespace", ns, "--wait")
		_ = cluster.Kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})

	// Before: the old chart (no hook; drillbot of today refuses its CRD).
	helm(t, "install", rel, oldChart, kc, "--namespace", ns, "--values", values)
	runs := cluster.Dynamic.Resource(drillRunsGVR).Namespace(ns)
	var names []string
	statuses := map[string]any{}
	for i := range 3 {
		name := fmt.Sprintf("before-upgrade-%d", i)
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "drillbot.io/v1alpha1", "kind": "DrillRun",
			"metadata": map[string]any{"name": name, "labels": map[string]any{v1alpha1.LabelDrill: "upgrade"}},
			"spec":     map[string]any{"drill": "upgrade", "scenario": "pod-kill", "trigger": "manual", "snapshot": map[string]any{"spec": map[string]any{"scenario": "pod-kill"}}},
		}}
		created, err := runs.Create(ctx, u, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		created.Object["status"] = map[string]any{
			"phase": "Completed", "verdict": "PASS", "rto": fmt.Sprintf("%ds", 3+i), "reason": "before the upgrade",
			"detections": []any{map[string]any{"alert": "PodDown", "within": "1m", "firedAt": "2026-01-02T03:04:05Z", "detection": "12s"}},
		}
		if _, err := runs.UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	// The old CRD drops what it does not know: the reason drillbot refuses it.
	if seen := writeSeenAt(ctx, t, names[0]); seen {
		t.Fatal("the previous chart's CRD kept detections[].seenAt: it is not the old CRD")
	}
	for _, name := range names {
		u, err := runs.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		statuses[name] = u.Object["status"]
	}
	var logs string
	t.Cleanup(func() {
		if t.Failed() {
			pods, _ := cluster.Kube.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
			t.Logf("drillbot's pods: %s; their logs:\n%s", podSummary(pods.Items), logs)
		}
	})
	pollT(t, "drillbot to refuse the old CRD", 2*time.Minute, func() (bool, error) {
		var err error
		logs, err = podLogs(ctx, ns, rel)
		return strings.Contains(logs, "is older than this drillbot"), err
	})

	// The upgrade: the hook applies the new CRD, drillbot starts. A real
	// upgrade's new image tag rolls the pods; both charts run the same image
	// here, so an annotation stands in for it.
	helm(t, "upgrade", rel, "drillbot", kc, "--namespace", ns, "--values", values, "--set", "podAnnotations.upgraded=yes",
		"--wait", "--timeout", "4m")

	crd, err := crds.Get(ctx, crdName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var embedded apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(v1alpha1.DrillRunCRD, &embedded); err != nil {
		t.Fatal(err)
	}
	if missing := kube.MissingFields(crd, &embedded); len(missing) > 0 {
		t.Errorf("after the upgrade the CRD still lacks %v", missing)
	}
	if !slices.ContainsFunc(crd.ManagedFields, func(m metav1.ManagedFieldsEntry) bool {
		return m.Manager == kube.CRDFieldManager && m.Operation == metav1.ManagedFieldsOperationApply
	}) {
		t.Errorf("the CRD has no server-side apply by %q: %v", kube.CRDFieldManager, crd.ManagedFields)
	}
	list, err := runs.List(ctx, metav1.ListOptions{LabelSelector: v1alpha1.LabelDrill + "=upgrade"})
	if err != nil {
		t.Fatal(err)
	}
	var after []string
	for _, u := range list.Items {
		after = append(after, u.GetName())
		if !reflect.DeepEqual(u.Object["status"], statuses[u.GetName()]) {
			t.Errorf("run %s's status changed by the upgrade:\n%s\nwas\n%s", u.GetName(), yamlOf(u.Object["status"]), yamlOf(statuses[u.GetName()]))
		}
	}
	slices.Sort(after)
	if !slices.Equal(after, names) {
		t.Errorf("runs after the upgrade %v, want %v", after, names)
	}
	if !writeSeenAt(ctx, t, names[0]) {
		t.Error("after the upgrade the API server still drops detections[].seenAt")
	}
	pods, err := cluster.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=drillbot,app.kubernetes.io/instance=" + rel})
	if err != nil {
		t.Fatal(err)
	}
	ready := slices.DeleteFunc(slices.Clone(pods.Items), func(p corev1.Pod) bool { return p.DeletionTimestamp != nil || readyAt(p) == nil })
	if len(ready) != 1 {
		t.Errorf("want drillbot's one pod Ready after the upgrade, got %v", podSummary(pods.Items))
	}
	hookName := rel + "-drillbot-crd-upgrade"
	if _, err := cluster.Kube.BatchV1().Jobs(ns).Get(ctx, hookName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the hook Job is still there after it succeeded: %v", err)
	}
	if _, err := cluster.Kube.RbacV1().ClusterRoles().Get(ctx, hookName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the hook's ClusterRole is still there after it succeeded: %v", err)
	}
	if _, err := cluster.Kube.CoreV1().ServiceAccounts(ns).Get(ctx, hookName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the hook's service account is still there after it succeeded: %v", err)
	}

	t.Run("crd apply with the hook's role alone creates the CRD", func(t *testing.T) {
		hook := hookObjects(render(t))
		role := decode[rbacv1.ClusterRole](t, hook["ClusterRole"][0])
		role.ObjectMeta = metav1.ObjectMeta{Name: "upgrade-test-crd-apply"}
		if _, err := cluster.Kube.RbacV1().ClusterRoles().Create(ctx, &role, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		const applier = "crd-applier"
		if _, err := cluster.Kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: applier}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := cluster.Kube.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: role.Name},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: applier, Namespace: ns}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cluster.Kube.RbacV1().ClusterRoleBindings().Delete(context.Background(), role.Name, metav1.DeleteOptions{})
			_ = cluster.Kube.RbacV1().ClusterRoles().Delete(context.Background(), role.Name, metav1.DeleteOptions{})
		})
		user := "system:serviceaccount:" + ns + ":" + applier
		review := func(ctx context.Context, verb, name string) (bool, error) {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user,
				Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: verb, Group: "apiextensions.k8s.io", Resource: "customresourcedefinitions", Name: name}}}
			got, err := cluster.Kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
			if err != nil {
				return false, err
			}
			return got.Status.Allowed, nil
		}
		// The authorizer applies a new binding after a moment: wait for it,
		// then ask every question.
		if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			ok, err := review(ctx, "get", crdName)
			return ok, err
		}); err != nil {
			t.Fatalf("the hook's role never took effect: %v", err)
		}
		for _, tc := range []struct {
			verb, name string
			want       bool
		}{
			{"get", crdName, true}, {"patch", crdName, true}, {"create", crdName, true},
			{"create", "", false}, // a plain POST names nothing: not allowed
			{"get", "widgets.example.com", false}, {"patch", "widgets.example.com", false}, {"create", "widgets.example.com", false},
			{"delete", crdName, false}, {"update", crdName, false}, {"list", "", false},
		} {
			allowed, err := review(ctx, tc.verb, tc.name)
			if err != nil {
				t.Fatal(err)
			}
			if allowed != tc.want {
				t.Errorf("%s customresourcedefinitions %q: allowed=%v, want %v", tc.verb, tc.name, allowed, tc.want)
			}
		}
		// Uninstall first: drillbot's pod would see its CRD go.
		helm(t, "uninstall", rel, kc, "--namespace", ns, "--wait")
		if err := crds.Delete(ctx, crdName, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		pollT(t, "the DrillRun CRD to be gone", time.Minute, func() (bool, error) {
			_, err := crds.Get(ctx, crdName, metav1.GetOptions{})
			return apierrors.IsNotFound(err), err
		})
		saKC := tokenKubeconfig(t, ns, applier)
		bin := testharness.Binary(t)
		for i := range 2 { // creates, then applies again (idempotent)
			out, err := exec.Command(bin, "crd", "apply", "--kubeconfig", saKC).CombinedOutput()
			if err != nil {
				t.Fatalf("drillbot crd apply #%d as %s: %v\n%s", i+1, applier, err, out)
			}
		}
		crd, err := crds.Get(ctx, crdName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if missing := kube.MissingFields(crd, &embedded); len(missing) > 0 {
			t.Errorf("the CRD drillbot crd apply created lacks %v", missing)
		}
	})
}

// writeSeenAt writes a detection with seenAt into the run's status and says
// whether the API server kept it.
func writeSeenAt(ctx context.Context, t *testing.T, name string) bool {
	t.Helper()
	runs := cluster.Dynamic.Resource(drillRunsGVR).Namespace(upgradeNS)
	u, err := runs.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	status, _ := u.Object["status"].(map[string]any)
	status = maps.Clone(status)
	status["detections"] = []any{map[string]any{"alert": "PodDown", "within": "1m", "seenAt": "2026-01-02T03:04:05Z", "firedAt": "2026-01-02T03:04:05Z", "detection": "12s"}}
	u.Object["status"] = status
	got, err := runs.UpdateStatus(ctx, u, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, _, _ := unstructured.NestedSlice(got.Object, "status", "detections")
	if len(s) != 1 {
		t.Fatalf("run %s: detections %v", name, s)
	}
	_, kept := s[0].(map[string]any)["seenAt"]
	return kept
}

// podLogs are the logs of the release's drillbot pods (their previous
// container's too, when it restarted).
func podLogs(ctx context.Context, ns, rel string) (string, error) {
	pods, err := cluster.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=drillbot,app.kubernetes.io/instance=" + rel})
	if err != nil {
		return "", err
	}
	var all strings.Builder
	for _, p := range pods.Items {
		for _, previous := range []bool{false, true} {
			b, err := cluster.Kube.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{Previous: previous}).DoRaw(ctx)
			if err == nil {
				all.Write(b)
			}
		}
	}
	return all.String(), nil
}

func apiextensionsClient(t *testing.T) *apiextensions.Clientset {
	t.Helper()
	c, err := apiextensions.NewForConfig(cluster.REST)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tokenKubeconfig writes a kubeconfig holding a token of the service
// account (TokenRequest).
func tokenKubeconfig(t *testing.T, ns, name string) string {
	t.Helper()
	tr, err := cluster.Kube.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["local"] = &clientcmdapi.Cluster{Server: cluster.REST.Host, InsecureSkipTLSVerify: true}
	kc.AuthInfos["sa"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	kc.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "sa"}
	kc.CurrentContext = "local"
	path := filepath.Join(t.TempDir(), name+".kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}
