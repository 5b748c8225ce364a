package localcluster_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/drillbot-io/drillbot/internal/localcluster"
)

var backupGVR = velerov1.SchemeGroupVersion.WithResource("backups")

// TestDRClusterReadsTheSourcesBackups: two local clusters share one S3
// store, as production and its DR region share a bucket. A backup the
// source takes shows up, Completed, in the DR cluster (Velero's backup
// sync); the DR cluster's storage location is ReadOnly, so a backup made
// there fails validation and nothing is written to the source's bucket.
func TestDRClusterReadsTheSourcesBackups(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	if _, err := localcluster.BinsFromEnv(); err != nil {
		if os.Getenv(localcluster.RequireEnv) != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	src := localcluster.Another(t)
	dr := localcluster.Another(t, localcluster.Config{S3URL: src.S3URL, ReadOnlyBSL: true})
	ctx := context.Background()
	if _, err := src.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Kube.CoreV1().ConfigMaps("shop").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "prices"}, Data: map[string]string{"a": "1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	backup(ctx, t, src, "shop-1")
	if got := waitBackup(ctx, t, src, "shop-1"); got.Status.Phase != velerov1.BackupPhaseCompleted {
		t.Fatalf("source backup: %s %v", got.Status.Phase, got.Status.ValidationErrors)
	}
	synced := waitBackup(ctx, t, dr, "shop-1")
	if synced.Status.Phase != velerov1.BackupPhaseCompleted || synced.Spec.StorageLocation != "default" ||
		strings.Join(synced.Spec.IncludedNamespaces, ",") != "shop" {
		t.Errorf("synced to the DR cluster: %s location %q namespaces %v", synced.Status.Phase, synced.Spec.StorageLocation, synced.Spec.IncludedNamespaces)
	}
	backup(ctx, t, dr, "dr-1")
	refused := waitBackup(ctx, t, dr, "dr-1")
	if refused.Status.Phase != velerov1.BackupPhaseFailedValidation || !strings.Contains(strings.Join(refused.Status.ValidationErrors, " "), "read-only") {
		t.Errorf("a backup in the DR cluster: %s %v, want FailedValidation (read-only)", refused.Status.Phase, refused.Status.ValidationErrors)
	}
	// And the source never sees it: nothing was written to the bucket.
	time.Sleep(6 * time.Second) // one backup-sync period of the source
	if _, err := src.Dynamic.Resource(backupGVR).Namespace(src.VeleroNamespace).Get(ctx, "dr-1", metav1.GetOptions{}); err == nil {
		t.Error("the DR cluster's backup reached the source's bucket")
	}
}

func backup(ctx context.Context, t *testing.T, c *localcluster.Cluster, name string) {
	t.Helper()
	b := &velerov1.Backup{TypeMeta: metav1.TypeMeta{APIVersion: velerov1.SchemeGroupVersion.String(), Kind: "Backup"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.VeleroNamespace},
		Spec:       velerov1.BackupSpec{IncludedNamespaces: []string{"shop"}, StorageLocation: "default"}}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Dynamic.Resource(backupGVR).Namespace(c.VeleroNamespace).Create(ctx, &unstructured.Unstructured{Object: m}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitBackup waits until the backup exists and has finished.
func waitBackup(ctx context.Context, t *testing.T, c *localcluster.Cluster, name string) velerov1.Backup {
	t.Helper()
	var b velerov1.Backup
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		u, err := c.Dynamic.Resource(backupGVR).Namespace(c.VeleroNamespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &b); err != nil {
			return false, err
		}
		switch b.Status.Phase {
		case velerov1.BackupPhaseCompleted, velerov1.BackupPhaseFailed, velerov1.BackupPhasePartiallyFailed, velerov1.BackupPhaseFailedValidation:
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("backup %s in %s: %v (phase %q)", name, c.Dir(), err, b.Status.Phase)
	}
	return b
}
