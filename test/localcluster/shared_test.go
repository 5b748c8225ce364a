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

	"github.com/drillbot-io/drillbot/test/localcluster"
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
	if got, err := src.Backup(ctx, "shop-1", "shop"); err != nil || got.Status.Phase != velerov1.BackupPhaseCompleted {
		t.Fatalf("source backup: %s %v (%v)", got.Status.Phase, got.Status.ValidationErrors, err)
	}
	synced, err := dr.WaitBackup(ctx, "shop-1")
	if err != nil {
		t.Fatal(err)
	}
	if synced.Status.Phase != velerov1.BackupPhaseCompleted || synced.Spec.StorageLocation != "default" ||
		strings.Join(synced.Spec.IncludedNamespaces, ",") != "shop" {
		t.Errorf("synced to the DR cluster: %s location %q namespaces %v", synced.Status.Phase, synced.Spec.StorageLocation, synced.Spec.IncludedNamespaces)
	}
	refused, err := dr.Backup(ctx, "dr-1", "shop")
	if err != nil {
		t.Fatal(err)
	}
	if refused.Status.Phase != velerov1.BackupPhaseFailedValidation || !strings.Contains(strings.Join(refused.Status.ValidationErrors, " "), "read-only") {
		t.Errorf("a backup in the DR cluster: %s %v, want FailedValidation (read-only)", refused.Status.Phase, refused.Status.ValidationErrors)
	}
	// And the source never sees it: nothing was written to the bucket.
	time.Sleep(6 * time.Second) // one backup-sync period of the source
	if _, err := src.Dynamic.Resource(backupGVR).Namespace(src.VeleroNamespace).Get(ctx, "dr-1", metav1.GetOptions{}); err == nil {
		t.Error("the DR cluster's backup reached the source's bucket")
	}
}
