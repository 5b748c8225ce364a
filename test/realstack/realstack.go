// Package realstack installs the security stack the seeds' plan names on
// the local cluster's real node, from the releases the Makefile built from
// the Go module proxy (make stack-bins stack-images) and their own charts:
// Kyverno's admission controller, the External Secrets Operator, and a
// stand-in for Falco (hack/images/rulescheck, as Falco needs a kernel
// driver). NetworkPolicy is enforced by the real node's kube-router.
//
// Its tests run drillbot's security drills against them: unsigned-image and
// kill-kyverno against Kyverno verifying cosign signatures from a local
// registry, block-key-vault against ESO reading a backend on this machine,
// corrupt-falco-rules against the stand-in's DaemonSet.
package realstack

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"

	"github.com/drillbot-io/drillbot/test/localcluster"
)

// Paths are where the stack's charts and tools are (the Makefile exports
// them).
type Paths struct {
	Helm, Cosign, KyvernoChart, ESOChart string
}

// PathsFromEnv reads Paths, naming every variable that is unset or points
// nowhere.
func PathsFromEnv() (Paths, error) {
	var p Paths
	var missing []string
	for _, v := range []struct {
		name string
		dst  *string
	}{
		{"DRILLBOT_HELM", &p.Helm}, {"DRILLBOT_COSIGN", &p.Cosign},
		{"DRILLBOT_KYVERNO_CHART", &p.KyvernoChart}, {"DRILLBOT_ESO_CHART", &p.ESOChart},
	} {
		*v.dst = os.Getenv(v.name)
		if *v.dst == "" {
			missing = append(missing, v.name+" (unset)")
		} else if _, err := os.Stat(*v.dst); err != nil {
			missing = append(missing, v.name+"="+*v.dst+" (not found)")
		}
	}
	if len(missing) > 0 {
		return p, fmt.Errorf("the security stack is missing: %s; build it with 'make stack-bins stack-images'", strings.Join(missing, ", "))
	}
	return p, nil
}

// helmInstall installs chart as release into ns (created) with values and
// waits for its workloads.
func (p Paths) helmInstall(ctx context.Context, c *localcluster.Cluster, release, ns, chart, values string) error {
	return localcluster.HelmUpgrade(ctx, p.Helm, c.Kubeconfig, release, ns, chart, values, 4*time.Minute)
}

// KyvernoNamespace is where Kyverno is installed.
const KyvernoNamespace = "kyverno"

// KyvernoWebhooks selects the webhook configurations Kyverno registers.
const KyvernoWebhooks = "webhook.kyverno.io/managed-by=kyverno"

// kyvernoValues: the admission controller only (the background, cleanup
// and reports controllers are off, as the issue allows), the local images,
// and plain-HTTP registries allowed (the test registry has no TLS).
const kyvernoValues = `
crds:
  migration: {enabled: false}
admissionController:
  replicas: %d
  # The local cluster's Prometheus scrapes pods annotated so (its
  # kubernetes-pods job): Kyverno's metrics server, on 8000.
  podAnnotations: {prometheus.io/scrape: "true", prometheus.io/port: "8000", prometheus.io/job: kyverno-admission}
  initContainer:
    image: {registry: drillbot.local, repository: kyvernopre, tag: dev, pullPolicy: Never}
  container:
    image: {registry: drillbot.local, repository: kyverno, tag: dev, pullPolicy: Never}
    extraArgs:
      allowInsecureRegistry: true
      # Kyverno's image-verification cache off (on, for 60m, by default):
      # a verified image would be admitted from it without verification,
      # which a drill cannot tell from a verification. Quoted: the chart
      # drops an extraArg whose value is false.
      imageVerifyCacheEnabled: "false"
backgroundController: {enabled: false}
cleanupController: {enabled: false}
reportsController: {enabled: false}
webhooksCleanup: {enabled: false}
policyReportsCleanup: {enabled: false}
`

// InstallKyverno installs Kyverno's admission controller (replicas pods)
// from its chart, with the namespace opted in to drills, and waits until
// it has registered its webhooks.
func InstallKyverno(ctx context.Context, c *localcluster.Cluster, p Paths, replicas int) error {
	for _, img := range []string{"kyverno", "kyvernopre"} {
		if err := c.ImportImage(ctx, img); err != nil {
			return err
		}
	}
	if err := p.helmInstall(ctx, c, "kyverno", KyvernoNamespace, p.KyvernoChart, fmt.Sprintf(kyvernoValues, replicas)); err != nil {
		return err
	}
	if err := wait.PollUntilContextTimeout(ctx, time.Second, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		l, err := c.Kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().List(ctx, metav1.ListOptions{LabelSelector: KyvernoWebhooks})
		if err != nil {
			return false, err
		}
		return len(l.Items) > 0, nil
	}); err != nil {
		return fmt.Errorf("kyverno registered no webhooks: %w", err)
	}
	return kyvernoAnswers(ctx, c)
}

// kyvernoAnswers waits until Kyverno's policy webhook admits a policy.
func kyvernoAnswers(ctx context.Context, c *localcluster.Cluster) error {
	// Registered is not answering: its policy webhook must admit a policy
	// (seen here: "connection refused" from kyverno-svc right after the
	// webhooks appeared, failing the first ClusterPolicy write).
	probe := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
		"metadata": map[string]any{"name": "drillbot-readiness-probe"},
		"spec": map[string]any{"rules": []any{map[string]any{"name": "noop",
			"match":    map[string]any{"any": []any{map[string]any{"resources": map[string]any{"kinds": []any{"ConfigMap"}}}}},
			"validate": map[string]any{"message": "noop", "pattern": map[string]any{"metadata": map[string]any{"name": "?*"}}}}}}}}
	var last error
	if err := wait.PollUntilContextTimeout(ctx, time.Second, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		_, last = c.Dynamic.Resource(ClusterPolicies).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return last == nil, nil
	}); err != nil {
		return fmt.Errorf("kyverno does not answer its policy webhook: %w (last: %v)", err, last)
	}
	return nil
}

// KyvernoAdmission selects Kyverno's admission controller (its chart's
// labels), its Deployment and its pods.
const KyvernoAdmission = "app.kubernetes.io/component=admission-controller"

// KyvernoCacheOff is the arg InstallKyverno gives the kyverno container.
const KyvernoCacheOff = "--imageVerifyCacheEnabled=false"

// KyvernoArgs are the kyverno container's args in the admission
// controller's pods that are not being deleted, by pod.
func KyvernoArgs(ctx context.Context, c *localcluster.Cluster) (map[string][]string, error) {
	pods, err := c.Kube.CoreV1().Pods(KyvernoNamespace).List(ctx, metav1.ListOptions{LabelSelector: KyvernoAdmission})
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		for _, ct := range p.Spec.Containers {
			if ct.Name == "kyverno" {
				out[p.Name] = ct.Args
			}
		}
	}
	return out, nil
}

// SetKyvernoArgs rewrites the kyverno container's args in the admission
// controller's Deployment with edit (as a change of the chart's extraArgs
// would), and waits until every admission pod runs them, is ready, and
// Kyverno answers its policy webhook again. (Policies in force must be
// waited for by the caller: a new pod loads them anew.)
func SetKyvernoArgs(ctx context.Context, c *localcluster.Cluster, edit func([]string) []string) error {
	deps := c.Kube.AppsV1().Deployments(KyvernoNamespace)
	l, err := deps.List(ctx, metav1.ListOptions{LabelSelector: KyvernoAdmission})
	if err != nil {
		return err
	}
	if len(l.Items) != 1 {
		return fmt.Errorf("%d Deployments match %s in %s, want 1", len(l.Items), KyvernoAdmission, KyvernoNamespace)
	}
	name := l.Items[0].Name
	var want []string
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d, err := deps.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		found := false
		for i, ct := range d.Spec.Template.Spec.Containers {
			if ct.Name == "kyverno" {
				want = edit(slices.Clone(ct.Args))
				d.Spec.Template.Spec.Containers[i].Args = want
				found = true
			}
		}
		if !found {
			return fmt.Errorf("deployment %s has no kyverno container", name)
		}
		_, err = deps.Update(ctx, d, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("update %s's args: %w", name, err)
	}
	// Every pod, those being deleted too, runs the new args and is ready.
	var last string
	if err := wait.PollUntilContextTimeout(ctx, time.Second, 4*time.Minute, true, func(ctx context.Context) (bool, error) {
		d, err := deps.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		pods, err := c.Kube.CoreV1().Pods(KyvernoNamespace).List(ctx, metav1.ListOptions{LabelSelector: KyvernoAdmission})
		if err != nil {
			return false, err
		}
		replicas := int32(1)
		if d.Spec.Replicas != nil {
			replicas = *d.Spec.Replicas
		}
		ready := 0
		for _, p := range pods.Items {
			for _, ct := range p.Spec.Containers {
				if ct.Name == "kyverno" && !slices.Equal(ct.Args, want) {
					last = "pod " + p.Name + " runs other args"
					return false, nil
				}
			}
			for _, cond := range p.Status.Conditions {
				if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue && p.DeletionTimestamp == nil {
					ready++
				}
			}
		}
		last = fmt.Sprintf("%d of %d pods ready", ready, replicas)
		return int32(len(pods.Items)) == replicas && int32(ready) == replicas, nil
	}); err != nil {
		return fmt.Errorf("kyverno's pods do not run the new args: %w (%s)", err, last)
	}
	return kyvernoAnswers(ctx, c)
}

// ClusterPolicies is Kyverno's ClusterPolicy API.
var ClusterPolicies = schema.GroupVersionResource{Group: "kyverno.io", Version: "v1", Resource: "clusterpolicies"}

// ESONamespace is where the External Secrets Operator is installed.
const ESONamespace = "external-secrets"

// esoValues: the controller only (its admission webhook and certificate
// controller are off; the CRDs come from the chart's crds/, copied from the
// release's bundle), the local image. (Turning processPushSecret off in
// v0.16.2's chart drops the RBAC for PushSecrets while its
// ClusterPushSecret controller still watches them: no ExternalSecret then
// syncs. The defaults are kept.)
const esoValues = `
installCRDs: false
replicaCount: 1
image: {repository: drillbot.local/external-secrets, tag: dev, pullPolicy: Never}
webhook: {create: false}
certController: {create: false}
`

// InstallExternalSecrets installs the External Secrets Operator from its
// chart, with its namespace opted in to drills.
func InstallExternalSecrets(ctx context.Context, c *localcluster.Cluster, p Paths) error {
	if err := c.ImportImage(ctx, "external-secrets"); err != nil {
		return err
	}
	return p.helmInstall(ctx, c, "external-secrets", ESONamespace, p.ESOChart, esoValues)
}
