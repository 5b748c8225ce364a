package namespacerestore

// Never delete what the backup cannot bring back: written as the adversary
// would, a namespace whose volumes' data is not in the backup, while the
// backup itself is Completed and holds the namespace.

import (
	"context"
	"errors"
	"strings"
	"testing"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
)

// volumeRecord is a fake VolumeReader: the backup's volume information.
type volumeRecord struct {
	infos []VolumeInfo
	err   error
	reads int
}

func (v *volumeRecord) BackupVolumeInfos(_ context.Context, _, backup string) ([]VolumeInfo, error) {
	v.reads++
	if backup != "shop-daily-1" {
		return nil, errors.New("read the volume information of another backup: " + backup)
	}
	return v.infos, v.err
}

type journal struct{ entries []string }

func (j *journal) Record(_ context.Context, action, _ string, _ any) error {
	j.entries = append(j.entries, action)
	return nil
}

func claim(name, volume, size string) *corev1.PersistentVolumeClaim {
	c := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"}, Spec: corev1.PersistentVolumeClaimSpec{VolumeName: volume}}
	if size != "" {
		c.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}
	}
	return c
}

func pvbInfo(pvc, phase, result string) VolumeInfo {
	return VolumeInfo{PVCName: pvc, PVCNamespace: "shop", PVName: "pv-1", BackupMethod: "PodVolumeBackup", Result: result,
		PVBInfo: &PodVolumeInfo{VolumeName: "data", PodName: "db-0", PodNamespace: "shop", Phase: phase, SnapshotHandle: "snap-1"}}
}

func TestInjectRefusesToDestroyVolumeDataTheBackupLacks(t *testing.T) {
	cases := []struct {
		name    string
		params  string
		pvcs    []runtime.Object
		record  volumeRecord
		reads   int    // reads of the volume information
		refused string // "": the namespace is deleted
		unknown bool
		finding string
	}{
		{name: "no PVC: nothing to read", reads: 0},
		{name: "an unbound PVC holds nothing", pvcs: []runtime.Object{claim("scratch", "", "")}, reads: 0},
		{name: "file-system backup Completed", pvcs: []runtime.Object{claim("data-db-0", "pv-1", "1Gi")},
			record: volumeRecord{infos: []VolumeInfo{pvbInfo("data-db-0", "Completed", "succeeded")}}, reads: 1,
			finding: "1 of 1 bound PVCs have their data in backup shop-daily-1"},
		{name: "CSI snapshot moved by the data mover", pvcs: []runtime.Object{claim("data-db-0", "pv-1", "1Gi")},
			record: volumeRecord{infos: []VolumeInfo{{PVCName: "data-db-0", PVCNamespace: "shop", PVName: "pv-1", BackupMethod: "CSISnapshot", SnapshotDataMoved: true, Result: "succeeded"}}}, reads: 1},
		{name: "skipped: no snapshotter, no file-system backup", pvcs: []runtime.Object{claim("data-db-0", "pv-1", "1Gi")},
			record: volumeRecord{infos: []VolumeInfo{{PVCName: "data-db-0", PVCNamespace: "shop", PVName: "pv-1", Skipped: true,
				SkippedReason: "volumeSnapshot: no applicable volumesnapshotter found;"}}}, reads: 1, // as Velero 1.18 writes it
			refused: "does not hold the data of PVC data-db-0 (1Gi): Velero skipped its data: volumeSnapshot: no applicable volumesnapshotter found; deleting namespace shop"},
		{name: "PodVolumeBackup failed", pvcs: []runtime.Object{claim("data-db-0", "pv-1", "1Gi")},
			record: volumeRecord{infos: []VolumeInfo{pvbInfo("data-db-0", "Failed", "failed")}}, reads: 1,
			refused: `PVC data-db-0 (1Gi): its PodVolumeBackup Failed did not succeed (result "failed")`},
		{name: "a PVC the record does not name (newer than the backup)", pvcs: []runtime.Object{claim("data-db-0", "pv-1", "1Gi"), claim("data-db-1", "pv-2", "2Gi")},
			record: volumeRecord{infos: []VolumeInfo{pvbInfo("data-db-0", "Completed", "succeeded")}}, reads: 1,
			refused: "PVC data-db-1 (2Gi): the backup's volume information does not name it"},
		{name: "another namespace's volume of the same name is not this one's", pvcs: []runtime.Object{claim("data-db-0", "pv-1", "1Gi")},
			record: volumeRecord{infos: []VolumeInfo{func() VolumeInfo {
				v := pvbInfo("data-db-0", "Completed", "succeeded")
				v.PVCNamespace = "billing"
				return v
			}()}}, reads: 1,
			refused: "PVC data-db-0 (1Gi): the backup's volume information does not name it"},
		{name: "a record without a method", pvcs: []runtime.Object{claim("data-db-0", "pv-1", "1Gi")},
			record: volumeRecord{infos: []VolumeInfo{{PVCName: "data-db-0", PVCNamespace: "shop", PVName: "pv-1", Result: "succeeded"}}}, reads: 1,
			refused: "no file-system backup, snapshot or data upload of it"},
		{name: "backup without volume information", pvcs: []runtime.Object{claim("data-db-0", "pv-1", "1Gi")},
			record: volumeRecord{err: ErrNotStored}, reads: 1, refused: "has no volume information (taken before Velero 1.13"},
		{name: "volume information unreadable", pvcs: []runtime.Object{claim("data-db-0", "pv-1", "1Gi")},
			record: volumeRecord{err: errors.New("download: connection refused")}, reads: 1, unknown: true},
		{name: "loss accepted by name", params: `{"backup":{"schedule":"shop-daily"},"volumes":{"accept":["cache-0"]}}`,
			pvcs:   []runtime.Object{claim("cache-0", "pv-3", "512Mi"), claim("data-db-0", "pv-1", "1Gi")},
			record: volumeRecord{infos: []VolumeInfo{pvbInfo("data-db-0", "Completed", "succeeded"), {PVCName: "cache-0", PVCNamespace: "shop", PVName: "pv-3", Skipped: true, SkippedReason: "opted out"}}},
			reads:  1, finding: "data of PVC cache-0 (512Mi): Velero skipped its data: opted out accepted as lost (params.volumes.accept)"},
		{name: "accepting one PVC accepts no other", params: `{"backup":{"schedule":"shop-daily"},"volumes":{"accept":["cache-0"]}}`,
			pvcs:   []runtime.Object{claim("data-db-0", "pv-1", "1Gi")},
			record: volumeRecord{infos: []VolumeInfo{{PVCName: "data-db-0", PVCNamespace: "shop", PVName: "pv-1", Skipped: true, SkippedReason: "opted out"}}},
			reads:  1, refused: "PVC data-db-0 (1Gi)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kube := fake.NewClientset(append([]runtime.Object{optedIn("shop")}, tc.pvcs...)...)
			params := tc.params
			if params == "" {
				params = `{"backup":{"schedule":"shop-daily"}}`
			}
			spec := v1alpha1.DrillSpec{Scenario: Name, Target: v1alpha1.Target{Namespace: "shop"}, Objectives: v1alpha1.Objectives{RTO: "5m", RPO: "1h"}, Params: []byte(params)}
			if errs := (Kind{}).ValidateParams(spec, field.NewPath("spec", "params")); len(errs) > 0 {
				t.Fatal(errs)
			}
			rec := tc.record
			d := censusDeps(t, kube, holdsShop)
			d.Volumes = &rec
			sc, err := Kind{Deps: d}.New(drill.Definition{Name: "d", Spec: spec}, "run-1")
			if err != nil {
				t.Fatal(err)
			}
			s := sc.(*scenario)
			s.backup = backup("shop-daily-1", "shop-daily", velerov1.BackupPhaseCompleted, "shop")
			var j journal
			err = s.Inject(context.Background(), &j)
			if rec.reads != tc.reads {
				t.Errorf("volume information read %d times, want %d", rec.reads, tc.reads)
			}
			deleted := false
			for _, a := range kube.Actions() {
				deleted = deleted || (a.GetVerb() == "delete" && a.GetResource().Resource == "namespaces")
			}
			switch {
			case tc.refused != "" || tc.unknown:
				if tc.refused != "" && (!engine.IsRefused(err) || !strings.Contains(err.Error(), tc.refused)) {
					t.Fatalf("Inject error %v, want a refusal naming %q", err, tc.refused)
				}
				if tc.unknown && !engine.IsUnknown(err) {
					t.Fatalf("Inject error %v, want unknown (INCONCLUSIVE: no evidence either way)", err)
				}
				if deleted || len(j.entries) > 0 {
					t.Fatalf("refused, yet deleted=%v journal=%v", deleted, j.entries)
				}
			default:
				if err != nil || !deleted || len(j.entries) != 1 {
					t.Fatalf("Inject error %v, deleted=%v journal=%v: want the namespace deleted", err, deleted, j.entries)
				}
				findings := strings.Join(append([]string{s.volumes}, s.accepted...), "\n")
				if !strings.Contains(findings, tc.finding) {
					t.Errorf("findings %q, want %q", findings, tc.finding)
				}
			}
		})
	}
}

func TestValidateVolumes(t *testing.T) {
	errs := validateVolumes(Volumes{Accept: []string{"cache-0", "Bad_Name", "cache-0"}}, field.NewPath("spec", "params", "volumes"))
	got := errs.ToAggregate().Error()
	for _, want := range []string{`spec.params.volumes.accept[1]: Invalid value: "Bad_Name"`, `spec.params.volumes.accept[2]: Duplicate value: "cache-0"`} {
		if !strings.Contains(got, want) {
			t.Errorf("errors %q, want %q", got, want)
		}
	}
}

// TestVolumesRestored: Velero's restore phase is no proof the data is back;
// each held volume must be Bound again and its PodVolumeRestore Completed.
func TestVolumesRestored(t *testing.T) {
	held := []VolumeInfo{pvbInfo("data-db-0", "Completed", "succeeded"),
		{PVCName: "logs", PVCNamespace: "shop", BackupMethod: "CSISnapshot", SnapshotDataMoved: true, Result: "succeeded"}}
	bound := func(name string, phase corev1.PersistentVolumeClaimPhase) corev1.PersistentVolumeClaim {
		c := claim(name, "pv-"+name, "1Gi")
		c.Status.Phase = phase
		return *c
	}
	pvr := func(pod, volume string, phase velerov1.PodVolumeRestorePhase) velerov1.PodVolumeRestore {
		return velerov1.PodVolumeRestore{ObjectMeta: metav1.ObjectMeta{Name: "pvr-" + pod},
			Spec:   velerov1.PodVolumeRestoreSpec{Pod: corev1.ObjectReference{Namespace: "shop", Name: pod}, Volume: volume},
			Status: velerov1.PodVolumeRestoreStatus{Phase: phase, Message: "kopia: snapshot not found"}}
	}
	both := []corev1.PersistentVolumeClaim{bound("data-db-0", corev1.ClaimBound), bound("logs", corev1.ClaimBound)}
	cases := []struct {
		name    string
		pvcs    []corev1.PersistentVolumeClaim
		pvrs    []velerov1.PodVolumeRestore
		waiting string
		err     string
	}{
		{name: "all back", pvcs: both, pvrs: []velerov1.PodVolumeRestore{pvr("db-0", "data", velerov1.PodVolumeRestorePhaseCompleted)}},
		{name: "a PVC still Pending", pvcs: []corev1.PersistentVolumeClaim{bound("data-db-0", corev1.ClaimBound), bound("logs", corev1.ClaimPending)},
			pvrs: []velerov1.PodVolumeRestore{pvr("db-0", "data", velerov1.PodVolumeRestorePhaseCompleted)}, waiting: "PVC logs Bound"},
		{name: "a PVC not back", pvcs: both[:1], pvrs: []velerov1.PodVolumeRestore{pvr("db-0", "data", velerov1.PodVolumeRestorePhaseCompleted)}, waiting: "PVC logs Bound"},
		{name: "no PodVolumeRestore yet", pvcs: both, waiting: "a PodVolumeRestore of PVC data-db-0 (pod db-0, volume data)"},
		{name: "another volume's PodVolumeRestore is not this one's", pvcs: both, pvrs: []velerov1.PodVolumeRestore{pvr("db-0", "scratch", velerov1.PodVolumeRestorePhaseCompleted)},
			waiting: "a PodVolumeRestore of PVC data-db-0"},
		{name: "PodVolumeRestore still copying", pvcs: both, pvrs: []velerov1.PodVolumeRestore{pvr("db-0", "data", velerov1.PodVolumeRestorePhaseInProgress)},
			waiting: `PodVolumeRestore pvr-db-0 of PVC data-db-0 Completed (now "InProgress")`},
		{name: "PodVolumeRestore failed", pvcs: both, pvrs: []velerov1.PodVolumeRestore{pvr("db-0", "data", velerov1.PodVolumeRestorePhaseFailed)},
			err: "PodVolumeRestore pvr-db-0 of PVC data-db-0 ended Failed: kopia: snapshot not found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			waiting, err := volumesRestored(held, tc.pvcs, tc.pvrs)
			switch {
			case tc.err != "":
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
			case err != nil:
				t.Fatal(err)
			case tc.waiting == "" && len(waiting) > 0:
				t.Fatalf("waiting for %q, want all back", waiting)
			case tc.waiting != "" && !strings.Contains(strings.Join(waiting, ", "), tc.waiting):
				t.Fatalf("waiting for %q, want %q", waiting, tc.waiting)
			}
		})
	}
}

// A pod's generic ephemeral volume is scratch: its claim, controlled by
// the pod, is made anew with each pod and deleted with it. No backup
// holds it and no restore brings it back, and deleting it loses nothing a
// pod restart would not: it is not a PVC whose data the backup must hold.
func TestBoundPVCsLeavesEphemeralClaimsOut(t *testing.T) {
	scratch := claim("web-7d9f-x2k4-scratch", "pvc-9", "1Gi")
	scratch.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: "web-7d9f-x2k4", UID: "pod-uid", Controller: ptr.To(true)}}
	other := claim("data-db-0", "pvc-1", "1Gi")
	other.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db", UID: "sts-uid", Controller: ptr.To(true)}}
	got, err := BoundPVCs(context.Background(), fake.NewClientset(scratch, other, claim("unbound", "", "")), "shop")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "data-db-0" {
		t.Fatalf("bound PVCs %v, want only data-db-0", got)
	}
}
