package signedimages_test

// Integration tests: the signed-images check on the local cluster, against
// a registry on loopback (go-containerregistry's) holding hack/image's
// sample app pushed twice, one copy signed by the real cosign CLI with a
// key (the legacy .sig format Kyverno's verifyImages reads, no
// transparency log), the other not, as the real-stack tests sign them.
// kwok plays the kubelet but reports no image ID; the test reports the one
// a real runtime would (kubeletReports).

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/test/localcluster"
	"github.com/drillbot-io/drillbot/test/testharness"
)

var cluster *localcluster.Cluster

func TestMain(m *testing.M) { os.Exit(localcluster.RunTests(m, &cluster)) }

func TestSignedImages(t *testing.T) {
	localcluster.Require(t, cluster)
	cosign, images := os.Getenv("DRILLBOT_COSIGN"), os.Getenv("DRILLBOT_IMAGES")
	if cosign == "" || images == "" {
		if os.Getenv(localcluster.RequireEnv) != "" {
			t.Fatal("DRILLBOT_COSIGN and DRILLBOT_IMAGES are needed (make stack-bins images)")
		}
		t.Skip("no cosign or images")
	}
	ctx := context.Background()
	reg, err := cluster.ServeRegistry()
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	dir := t.TempDir()
	key, pub, err := localcluster.CosignKeyPair(ctx, cosign, dir)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := reg.Push(ctx, images, "sampleapp", "drillbot/signed", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Sign(ctx, cosign, key, signed); err != nil {
		t.Fatal(err)
	}
	unsigned, err := reg.Push(ctx, images, "sampleapp", "drillbot/unsigned", "v1")
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := os.ReadFile(pub)
	if err != nil {
		t.Fatal(err)
	}
	env := "signed-" + localcluster.RandomSuffix()
	ns := "shop-" + env
	testharness.Namespace(t, cluster, ns, map[string]string{"env": env})
	run := func(t *testing.T) *v1alpha1.DrillRun {
		h := testharness.New(t, cluster)
		return h.Run(h.Drill(fmt.Sprintf(`apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata: {name: signed-%s}
spec:
  scenario: signed-images
  objectives: {rto: 1m}
  params:
    namespaces: {matchLabels: {env: %s}}
    insecureRegistries: [%q]
    publicKey: %q
`, env, env, reg.Host, string(pubPEM))))
	}
	create := func(name, image string) {
		if _, err := cluster.Kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// kubeletReports plays the kubelet's part kwok leaves out: the image ID
	// of what runs, once kwok has marked the pod running (kwok's status
	// names no image ID; a real kubelet's always does).
	kubeletReports := func(t *testing.T, pod, imageID string) {
		t.Helper()
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			p, err := cluster.Kube.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
			if err != nil || p.Status.PodIP == "" || len(p.Status.ContainerStatuses) == 0 {
				return false, err
			}
			p.Status.ContainerStatuses[0].ImageID = imageID
			if _, err := cluster.Kube.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); apierrors.IsConflict(err) {
				return false, nil
			} else if err != nil {
				return false, err
			}
			return true, nil
		})
		if err != nil {
			t.Fatalf("report the image ID of %s: %v", pod, err)
		}
	}
	create("web", signed)
	create("web-by-tag", reg.Host+"/drillbot/signed:v1")
	// containerd reports the repo digest it pulled the tag as.
	kubeletReports(t, "web-by-tag", signed)
	t.Run("PASS", func(t *testing.T) {
		r := run(t)
		if r.Status.Verdict != v1alpha1.VerdictPass || !strings.Contains(strings.Join(r.Status.Findings, "\n"), "signed images: 1 of 1 running in 1 namespaces") {
			t.Fatalf("verdict %s: %s (findings %q)", r.Status.Verdict, r.Status.Reason, r.Status.Findings)
		}
	})
	create("legacy", unsigned)
	t.Run("an unsigned image", func(t *testing.T) {
		r := run(t)
		if r.Status.Verdict != v1alpha1.VerdictFail || !strings.Contains(r.Status.Reason, unsigned+" ("+ns+"/legacy): no cosign signature") {
			t.Fatalf("verdict %s: %s, want FAIL naming %s", r.Status.Verdict, r.Status.Reason, unsigned)
		}
		if !strings.Contains(strings.Join(r.Status.Findings, "\n"), "signed images: 1 of 2") {
			t.Errorf("findings %q", r.Status.Findings)
		}
	})
	// kubectl debug adds an ephemeral container to the signed pod.
	if _, err := cluster.Kube.CoreV1().Pods(ns).UpdateEphemeralContainers(ctx, "web", func() *corev1.Pod {
		p, err := cluster.Kube.CoreV1().Pods(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
			Name: "debugger", Image: unsigned, TerminationMessagePolicy: corev1.TerminationMessageReadFile, ImagePullPolicy: corev1.PullIfNotPresent}})
		return p
	}(), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Run("an unsigned image in an ephemeral container", func(t *testing.T) {
		r := run(t)
		if r.Status.Verdict != v1alpha1.VerdictFail || !strings.Contains(r.Status.Reason, unsigned+" ("+ns+"/legacy, "+ns+"/web): no cosign signature") {
			t.Fatalf("verdict %s: %s, want FAIL naming %s in %s/web", r.Status.Verdict, r.Status.Reason, unsigned, ns)
		}
	})
	// An image loaded onto the node runs under a tag that is signed in
	// the registry today; containerd reports its config ID, no repo digest.
	const loadedID = "sha256:4b9a0c8e1d2f3a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d"
	create("loaded", reg.Host+"/drillbot/signed:v1")
	kubeletReports(t, "loaded", loadedID)
	t.Run("an image loaded onto the node", func(t *testing.T) {
		r := run(t)
		want := reg.Host + "/drillbot/signed:v1 [image ID " + loadedID + "] (" + ns + `/loaded container "app"): no registry digest`
		if r.Status.Verdict != v1alpha1.VerdictFail || !strings.Contains(r.Status.Reason, want) {
			t.Fatalf("verdict %s: %s, want FAIL with %q", r.Status.Verdict, r.Status.Reason, want)
		}
	})
}
