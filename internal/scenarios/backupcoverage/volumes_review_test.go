package backupcoverage

// Adversarial review of the volume-data evidence (volumeGaps, Recover).

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	nr "github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
)

// runVolumesReview runs the check like the engine does: a Recover error
// that IsUnknown ends the run INCONCLUSIVE with no Verify; otherwise
// Verify's failures make it FAIL whatever else is unknown (engine
// measure.go: failures first, then inconclusive).
func runVolumesReview(t *testing.T, kubeObjs []runtime.Object, velero []any, rec *volumeRecords) (verdict string, v engine.Verification) {
	t.Helper()
	var objs []runtime.Object
	for _, o := range velero {
		u, err := nr.ToUnstructured(o)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, u)
	}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		nr.BackupsGVR: "BackupList", nr.SchedulesGVR: "ScheduleList", nr.BSLGVR: "BackupStorageLocationList", nr.RestoresGVR: "RestoreList"}, objs...)
	def := drill.Definition{Name: "cov", Spec: v1alpha1.DrillSpec{Scenario: Name, Objectives: v1alpha1.Objectives{RTO: "1m", RPO: "1h"}, Params: []byte(production)}}
	def.FromSpec()
	sc, err := Kind{Deps: Deps{Kube: fake.NewClientset(kubeObjs...), Dynamic: dyn, Volumes: rec, Clock: clocktesting.NewFakePassiveClock(now)}}.New(def, "run-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Recover(context.Background(), marks{}); err != nil {
		if engine.IsUnknown(err) {
			return "INCONCLUSIVE (recover: " + err.Error() + ")", v
		}
		return "FAIL (recover: " + err.Error() + ")", v
	}
	v, err = sc.Verify(context.Background())
	switch {
	case len(v.Failures) > 0:
		return "FAIL", v
	case err != nil || v.Inconclusive != "":
		return "INCONCLUSIVE", v
	}
	return "PASS", v
}

// TestReviewUnreadableVolumeRecordMasksDefiniteFailures: one backup's
// volume information that cannot be read (a DownloadRequest whose signed
// URL answers 403, a timeout) makes Recover return Unknown, so the run is
// INCONCLUSIVE and Verify never runs: failures established without that
// record are dropped. The engine keeps a failure found beside an unknown
// (engine.go: "What it found before the error still counts (a failure
// found is FAIL)"); here the unknown hides them, a verdict better than the
// truth, and one flaky download switches the whole posture check off.
//
// Velero's DownloadRequest controller signs the URL without looking at the
// location's phase (pkg/controller/download_request_controller.go:
// backupStoreGetter.Get, GetDownloadURL), so a backup in an Unavailable
// location is exactly one whose record fails to download.
func TestReviewUnreadableVolumeRecordMasksDefiniteFailures(t *testing.T) {
	readFails := &volumeRecords{err: errors.New("download backup hourly-1's volume information: 403 Forbidden")}
	shopOnly := velerov1.BackupSpec{IncludedNamespaces: []string{"shop"}}
	billing := ns("billing", "production")
	billing.CreationTimestamp = metav1.NewTime(now.Add(-24 * time.Hour))
	t.Run("another namespace has no backup at all", func(t *testing.T) {
		rw := location("default", true, velerov1.BackupStorageLocationPhaseAvailable)
		verdict, v := runVolumesReview(t, []runtime.Object{shop(), billing, boundPVC("shop", "data-db-0", "1Gi")},
			[]any{&rw, ptr.To(schedule("hourly", false, shopOnly)), ptr.To(held("hourly-1", "hourly", "default", 10*time.Minute, shopOnly))}, readFails)
		if verdict != "FAIL" || !strings.Contains(strings.Join(v.Failures, "\n"), "namespace billing") {
			t.Fatalf("verdict %s, failures %q: namespace billing is in no backup and no schedule (a FAIL whatever shop's volume record says)", verdict, v.Failures)
		}
	})
	t.Run("the backup's storage location is Unavailable", func(t *testing.T) {
		down := location("default", true, velerov1.BackupStorageLocationPhaseUnavailable)
		all := velerov1.BackupSpec{IncludedNamespaces: []string{"*"}}
		verdict, v := runVolumesReview(t, []runtime.Object{shop(), boundPVC("shop", "data-db-0", "1Gi")},
			[]any{&down, ptr.To(schedule("hourly", false, all)), ptr.To(held("hourly-1", "hourly", "default", 10*time.Minute, all))}, readFails)
		if verdict != "FAIL" || !strings.Contains(strings.Join(v.Failures, "\n"), "not Available") {
			t.Fatalf("verdict %s, failures %q: storage location default is Unavailable, its backup cannot be restored now and the schedule's next backup will fail (FAIL before this change)", verdict, v.Failures)
		}
	})
}

// TestReviewRecreatedPVCIsNotHeldByTheOldVolumesBackup: Velero's record
// names each volume's PV (pvName; the PVC name comes from that PV's
// claimRef: internal/volume volumes_information.go, item_backupper.go
// addVolumeInfo). A claim recreated after the backup on another volume
// (here a 500Gi imported one) is credited by its name alone with the data
// of the volume it replaced: compliant, although no backup holds a byte of
// what it holds now.
func TestReviewRecreatedPVCIsNotHeldByTheOldVolumesBackup(t *testing.T) {
	rw := location("default", true, velerov1.BackupStorageLocationPhaseAvailable)
	all := velerov1.BackupSpec{IncludedNamespaces: []string{"*"}}
	now500 := boundPVC("shop", "data-db-0", "500Gi")
	now500.Spec.VolumeName = "pv-imported"
	rec := &volumeRecords{infos: map[string][]nr.VolumeInfo{"hourly-1": {{PVCName: "data-db-0", PVCNamespace: "shop", PVName: "pv-old",
		BackupMethod: "PodVolumeBackup", Result: "succeeded", PVBInfo: &nr.PodVolumeInfo{VolumeName: "data", PodName: "db-0", PodNamespace: "shop", Phase: "Completed"}}}}}
	verdict, v := runVolumesReview(t, []runtime.Object{shop(), now500},
		[]any{&rw, ptr.To(schedule("hourly", false, all)), ptr.To(held("hourly-1", "hourly", "default", 10*time.Minute, all))}, rec)
	if verdict != "FAIL" || !strings.Contains(strings.Join(v.Failures, "\n"), "data-db-0") {
		t.Fatalf("verdict %s (failures %q, findings %q): PVC data-db-0 is bound to pv-imported, backup hourly-1 holds pv-old's data", verdict, v.Failures, v.Findings)
	}
}
