package realstorage_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/test/localcluster"
	"github.com/drillbot-io/drillbot/test/testharness"
)

// TestNamespaceRestoreBringsVolumeDataBack: a Deployment's pod writes to a
// local volume; Velero backs the volume's data up (file-system backup by
// the node-agent, opted in by the pod's annotation); namespace-restore
// deletes the namespace (the volume is Released, its data kept on the
// host but no longer the claim's), restores it, and the claim comes back
// bound to another volume with the same bytes, copied from the backup by
// Velero's data mover. The drill passes on the volume being Bound and its
// PodVolumeRestore Completed; the test reads the bytes themselves.
func TestNamespaceRestoreBringsVolumeDataBack(t *testing.T) {
	ctx := context.Background()
	h := testharness.New(t, cluster)
	ns := "rs-vol-" + localcluster.RandomSuffix()
	testharness.Namespace(t, cluster, ns, testharness.OptIn)
	data := make([]byte, 1<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	dir := localVolume(t, "pv-"+ns+"-data", ns, "data")
	if err := os.WriteFile(filepath.Join(dir, "orders"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	// The volume the restored claim will bind: empty until Velero copies
	// the backup's data into it.
	spare := localVolume(t, "pv-"+ns+"-spare", "", "")
	claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: ptr.To(localcluster.LocalStorageClass), VolumeName: "pv-" + ns + "-data",
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
	if _, err := cluster.Kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, claim, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tpl := localcluster.SampleApp(map[string]string{"app": "db"})
	tpl.Annotations = map[string]string{"backup.velero.io/backup-volumes": "data"}
	tpl.Spec.Volumes = append(tpl.Spec.Volumes, corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}})
	tpl.Spec.Containers[0].VolumeMounts = append(tpl.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "data", MountPath: "/data"})
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}, Template: tpl}}
	if _, err := cluster.Kube.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitReady(t, ns, "db")

	b, err := cluster.Backup(ctx, ns+"-1", ns)
	if err == nil {
		b, err = cluster.WaitBackup(ctx, b.Name)
	}
	if err != nil || b.Status.Phase != velerov1.BackupPhaseCompleted {
		t.Fatalf("backup %s: %s (%v)", b.Name, b.Status.Phase, err)
	}

	run := h.Run(h.Drill(fmt.Sprintf(`apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata:
  name: %s
spec:
  scenario: namespace-restore
  objectives: {rto: 5m, rpo: 1h}
  timeouts: {recover: 4m, revert: 3m}
  target: {namespace: %s}
  params:
    backup: {name: %s}
`, ns, ns, b.Name)))

	st := run.Status
	if st.Verdict != v1alpha1.VerdictPass {
		t.Fatalf("verdict %s: %s\n%s", st.Verdict, st.Reason, testharness.Story(st))
	}
	if m := testharness.Milestones(st); !strings.Contains(m, "volumes-restored") {
		t.Errorf("milestones %s, want volumes-restored", m)
	}
	if f := strings.Join(st.Findings, "\n"); !strings.Contains(f, "1 of 1 bound PVCs have their data in backup "+b.Name) {
		t.Errorf("findings %q, want the volume held", f)
	}
	pvc, err := cluster.Kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data", metav1.GetOptions{})
	if err != nil || pvc.Spec.VolumeName != "pv-"+ns+"-spare" {
		t.Fatalf("restored claim %v (%v), want it bound to the spare volume", pvc.Spec.VolumeName, err)
	}
	got, err := os.ReadFile(filepath.Join(spare, "orders"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("restored volume holds %d bytes (%v), want the %d bytes backed up", len(got), err, len(data))
	}
}

// localVolume makes a local volume on the real node, bound to claim ns/claim
// when claim is set, removed when the test ends.
func localVolume(t *testing.T, name, ns, claim string) string {
	t.Helper()
	dir, err := cluster.LocalVolume(context.Background(), name, "1Gi", ns, claim)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cluster.Kube.CoreV1().PersistentVolumes().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return dir
}

func waitReady(t *testing.T, ns, name string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), time.Second, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		d, err := cluster.Kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		return err == nil && d.Status.ReadyReplicas == 1 && d.Status.UpdatedReplicas == 1, nil
	})
	if err != nil {
		t.Fatalf("deployment %s/%s not Ready: %v", ns, name, err)
	}
}
