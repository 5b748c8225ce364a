package namespacerestore

// Adversarial review of the volume-data evidence (volumes.go).

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
)

// reviewScenario is a namespace-restore drill on shop, restoring from
// shop-daily-1, with the given kube and volume reader.
func reviewScenario(t *testing.T, kube *fake.Clientset, vr VolumeReader) *scenario {
	t.Helper()
	spec := v1alpha1.DrillSpec{Scenario: Name, Target: v1alpha1.Target{Namespace: "shop"}, Objectives: v1alpha1.Objectives{RTO: "5m", RPO: "1h"},
		Params: []byte(`{"backup":{"schedule":"shop-daily"}}`)}
	d := censusDeps(t, kube, holdsShop)
	d.Volumes = vr
	sc, err := Kind{Deps: d}.New(drill.Definition{Name: "d", Spec: spec}, "run-1")
	if err != nil {
		t.Fatal(err)
	}
	s := sc.(*scenario)
	s.backup = backup("shop-daily-1", "shop-daily", velerov1.BackupPhaseCompleted, "shop")
	return s
}

func namespaceDeleted(kube *fake.Clientset) bool {
	for _, a := range kube.Actions() {
		if a.GetVerb() == "delete" && a.GetResource().Resource == "namespaces" {
			return true
		}
	}
	return false
}

// slowRecord is the backup's volume information read the way Velero serves
// it: a DownloadRequest, its signed URL, a GET (up to a minute). While it
// is read, the namespace goes on living: during stands for what happens
// meanwhile.
type slowRecord struct {
	infos  []VolumeInfo
	during func()
}

func (r *slowRecord) BackupVolumeInfos(context.Context, string, string) ([]VolumeInfo, error) {
	r.during()
	return r.infos, nil
}

// TestReviewPVCCreatedWhileTheRecordIsRead: the PVCs are listed before the
// volume information is downloaded (a DownloadRequest, a watch for its URL,
// a GET: seconds, up to a minute), and never again before the delete. A
// PVC bound meanwhile (a StatefulSet scaled up, a new claim) is deleted with
// the namespace although the backup does not hold its data: rule 7.
func TestReviewPVCCreatedWhileTheRecordIsRead(t *testing.T) {
	kube := fake.NewClientset(optedIn("shop"), claim("data-db-0", "pv-1", "1Gi"))
	rec := &slowRecord{infos: []VolumeInfo{pvbInfo("data-db-0", "Completed", "succeeded")}, during: func() {
		if _, err := kube.CoreV1().PersistentVolumeClaims("shop").Create(context.Background(), claim("data-db-1", "pv-2", "5Gi"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}}
	s := reviewScenario(t, kube, rec)
	var j journal
	err := s.Inject(context.Background(), &j)
	if namespaceDeleted(kube) {
		t.Fatalf("namespace shop deleted (Inject error %v) with PVC data-db-1 (5Gi) bound, which backup shop-daily-1's volume information does not name: its data is destroyed", err)
	}
	if !engine.IsRefused(err) || !strings.Contains(err.Error(), "data-db-1") {
		t.Fatalf("Inject error %v, want a refusal naming PVC data-db-1", err)
	}
}

// TestReviewPVCRecreatedOnAnotherVolume: Velero's record names each
// volume's PV (pvName, from the PV's claimRef: internal/volume
// volumes_information.go addVolumeInfo/InsertPVMap). A claim of the same
// name now bound to another PV, not restored from this backup, holds data
// the backup never saw: crediting it by name alone credits another
// volume's data. A claim Velero restored from this very backup (labels
// velero.io/backup-name and velero.io/restore-name, restore.go
// addRestoreLabels) is on a new PV by design and must still count.
func TestReviewPVCRecreatedOnAnotherVolume(t *testing.T) {
	inBackup := pvbInfo("data-db-0", "Completed", "succeeded")
	inBackup.PVName = "pv-old"
	recreated := claim("data-db-0", "pv-imported", "500Gi")
	restored := claim("data-db-0", "pv-restored", "1Gi")
	restored.Labels = map[string]string{velerov1.BackupNameLabel: "shop-daily-1", velerov1.RestoreNameLabel: "run-0"}
	for _, tc := range []struct {
		name    string
		pvc     *corev1.PersistentVolumeClaim
		refused bool
	}{
		{"recreated since the backup, bound to another volume", recreated, true},
		{"restored from this backup by Velero", restored, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kube := fake.NewClientset(optedIn("shop"), tc.pvc)
			s := reviewScenario(t, kube, &volumeRecord{infos: []VolumeInfo{inBackup}})
			var j journal
			err := s.Inject(context.Background(), &j)
			switch {
			case tc.refused && namespaceDeleted(kube):
				t.Fatalf("namespace deleted (Inject error %v): PVC data-db-0 is bound to pv-imported (500Gi), the backup holds the data of pv-old: pv-imported's data is destroyed", err)
			case tc.refused && (!engine.IsRefused(err) || !strings.Contains(err.Error(), "data-db-0")):
				t.Fatalf("Inject error %v, want a refusal naming PVC data-db-0", err)
			case !tc.refused && (err != nil || !namespaceDeleted(kube)):
				t.Fatalf("Inject error %v: a PVC Velero restored from this backup is held by it", err)
			}
		})
	}
}

// TestReviewEmptyPodVolumeNeedsNoPodVolumeRestore: a PodVolumeBackup of an
// empty volume (restic, Velero < 1.17: pkg/uploader/provider/restic.go
// "snapshot is empty" returns "", true) is Completed with no snapshot ID,
// result succeeded. Velero creates no PodVolumeRestore for it
// (pkg/podvolume/util.go getVolumeBackupInfoForPod: "skip PVBs without a
// snapshot ID since there's nothing to restore"), so waiting for one waits
// until the recover deadline: a FAIL although everything came back.
func TestReviewEmptyPodVolumeNeedsNoPodVolumeRestore(t *testing.T) {
	// As Velero writes it (internal/volume.BackupVolumeInfo; snapshotHandle
	// omitempty, Phase without a tag).
	const record = `[{"pvcName":"data-db-0","pvcNamespace":"shop","pvName":"pv-1","backupMethod":"PodVolumeBackup","snapshotDataMoved":false,
"preserveLocalSnapshot":false,"skipped":false,"result":"succeeded","pvbInfo":{"uploaderType":"restic","volumeName":"data","podName":"db-0",
"podNamespace":"shop","nodeName":"n1","Phase":"Completed"},"pvInfo":{"reclaimPolicy":"Delete","labels":null}}]`
	var infos []VolumeInfo
	if err := json.Unmarshal([]byte(record), &infos); err != nil {
		t.Fatal(err)
	}
	pvc := claim("data-db-0", "pv-1", "1Gi")
	if lost := LostVolumes("shop-daily-1", []corev1.PersistentVolumeClaim{*pvc}, infos); len(lost) > 0 {
		t.Fatalf("lost %v: an empty volume backed up Completed holds all there is", lost)
	}
	held := heldVolumes("shop-daily-1", []corev1.PersistentVolumeClaim{*pvc}, infos)
	restoredPVC := *claim("data-db-0", "pv-new", "1Gi")
	restoredPVC.Status.Phase = corev1.ClaimBound
	waiting, err := volumesRestored(held, []corev1.PersistentVolumeClaim{restoredPVC}, nil)
	if err != nil || len(waiting) > 0 {
		t.Fatalf("waiting for %q (%v): Velero makes no PodVolumeRestore for a PodVolumeBackup without a snapshot ID, the wait can only end at the deadline (FAIL)", waiting, err)
	}
}
