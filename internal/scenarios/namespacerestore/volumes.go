package namespacerestore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	"github.com/vmware-tanzu/velero/pkg/label"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/drillbot-io/drillbot/internal/engine"
)

// Volumes are the drill's params.volumes.
type Volumes struct {
	// Accept names PVCs of the target whose data may be lost: the drill
	// deletes them although the backup does not hold their data, and every
	// run records it.
	Accept []string `json:"accept,omitempty"`
}

func validateVolumes(v Volumes, path *field.Path) field.ErrorList {
	return ValidateClaimNames(v.Accept, path.Child("accept"))
}

// ValidateClaimNames checks a drill's list of PersistentVolumeClaim names:
// each a valid name, none twice.
func ValidateClaimNames(names []string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[string]bool{}
	for i, name := range names {
		p := path.Index(i)
		switch {
		case len(validation.IsDNS1123Subdomain(name)) > 0:
			errs = append(errs, field.Invalid(p, name, "a PersistentVolumeClaim's name: "+strings.Join(validation.IsDNS1123Subdomain(name), "; ")))
		case seen[name]:
			errs = append(errs, field.Duplicate(p, name))
		}
		seen[name] = true
	}
	return errs
}

// VolumeInfo is one volume of a backup as Velero records it in the
// backup's volume information (BackupVolumeInfos, Velero 1.13 and later;
// internal/volume.BackupVolumeInfo): the fields drillbot reads.
type VolumeInfo struct {
	PVCName      string `json:"pvcName,omitempty"`
	PVCNamespace string `json:"pvcNamespace,omitempty"`
	PVName       string `json:"pvName,omitempty"`
	// BackupMethod is PodVolumeBackup, CSISnapshot or NativeSnapshot.
	BackupMethod      string `json:"backupMethod,omitempty"`
	SnapshotDataMoved bool   `json:"snapshotDataMoved"`
	Skipped           bool   `json:"skipped"`
	SkippedReason     string `json:"skippedReason,omitempty"`
	// Result is Velero's own word on the volume's data: succeeded or failed.
	Result  string         `json:"result,omitempty"`
	PVBInfo *PodVolumeInfo `json:"pvbInfo,omitempty"`
}

// PodVolumeInfo is a file-system backup of the volume.
type PodVolumeInfo struct {
	VolumeName   string `json:"volumeName"`
	PodName      string `json:"podName"`
	PodNamespace string `json:"podNamespace"`
	// Phase is the PodVolumeBackup's (Velero writes it without a JSON tag).
	Phase string `json:"Phase"`
	// SnapshotHandle is the uploader's snapshot of the volume; an empty
	// one is an empty volume (restic, Velero before 1.17), which Velero
	// restores with no PodVolumeRestore: there is nothing to copy back.
	SnapshotHandle string `json:"snapshotHandle,omitempty"`
}

// VolumeReader reads a backup's volume information.
type VolumeReader interface {
	BackupVolumeInfos(ctx context.Context, vns, backup string) ([]VolumeInfo, error)
}

// BackupVolumeInfos implements VolumeReader; a backup without volume
// information returns ErrNotStored.
func (v VeleroDownloads) BackupVolumeInfos(ctx context.Context, vns, backup string) ([]VolumeInfo, error) {
	var infos []VolumeInfo
	err := v.Decode(ctx, vns, backup, velerov1.DownloadTargetKindBackupVolumeInfos, "volume information", &infos)
	return infos, err
}

// LostVolume is a PVC of the target whose data the backup does not hold.
type LostVolume struct {
	PVC    string
	Size   string
	Reason string
}

func (l LostVolume) String() string {
	return fmt.Sprintf("PVC %s (%s): %s", l.PVC, l.Size, l.Reason)
}

// BoundPVCs lists the namespace's PVCs that hold data: those bound to a
// volume (an unbound claim has nothing to lose), but not a pod's generic
// ephemeral volume (a claim its pod controls: scratch, made anew with each
// pod and deleted with it, so no restore brings it back and none loses it).
func BoundPVCs(ctx context.Context, c kubernetes.Interface, ns string) ([]corev1.PersistentVolumeClaim, error) {
	var out []corev1.PersistentVolumeClaim
	opts := metav1.ListOptions{Limit: 500}
	for {
		page, err := c.CoreV1().PersistentVolumeClaims(ns).List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list PersistentVolumeClaims in %s: %w", ns, err)
		}
		for _, p := range page.Items {
			if EphemeralClaim(&p) {
				continue
			}
			if p.Spec.VolumeName != "" {
				out = append(out, p)
			}
		}
		if page.Continue == "" {
			sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
			return out, nil
		}
		opts.Continue = page.Continue
	}
}

// EphemeralClaim reports whether a claim is a pod's generic ephemeral
// volume: controlled by its Pod, made anew with each pod and deleted with
// it (scratch: no backup holds it, no restore brings it back).
func EphemeralClaim(c *corev1.PersistentVolumeClaim) bool {
	owner := metav1.GetControllerOf(c)
	return owner != nil && owner.Kind == "Pod" && owner.APIVersion == "v1"
}

// LostVolumes names the PVCs whose data backup does not hold, by Velero's
// own record of each volume: held means the record names the PVC and the
// volume it is bound to now (pvName: a claim re-created since on another
// volume holds data the backup never saw, unless Velero restored it from
// this very backup), not skipped, a backup method, and result succeeded (a
// Completed PodVolumeBackup, snapshot or data upload). A PVC the record
// does not name is not held.
func LostVolumes(backup string, pvcs []corev1.PersistentVolumeClaim, infos []VolumeInfo) []LostVolume {
	var lost []LostVolume
	for _, p := range pvcs {
		size := "size unknown"
		if q, ok := p.Status.Capacity[corev1.ResourceStorage]; ok {
			size = q.String()
		} else if q, ok := p.Spec.Resources.Requests[corev1.ResourceStorage]; ok {
			size = q.String()
		}
		if _, why := recordOf(backup, &p, infos); why != "" {
			lost = append(lost, LostVolume{PVC: p.Name, Size: size, Reason: why})
		}
	}
	return lost
}

// recordOf finds the backup's record of the data of the volume PVC p is
// bound to now; why says why the backup does not hold it ("": it does).
func recordOf(backup string, p *corev1.PersistentVolumeClaim, infos []VolumeInfo) (v *VolumeInfo, why string) {
	i := slices.IndexFunc(infos, func(v VolumeInfo) bool { return v.PVCNamespace == p.Namespace && v.PVCName == p.Name })
	if i < 0 {
		return nil, "the backup's volume information does not name it (no data of it was backed up: newer than the backup, or left out by its filters)"
	}
	v = &infos[i]
	if why := notHeld(v); why != "" {
		return v, why
	}
	// Velero restores a claim onto a new volume and labels it with the
	// backup it came from (restore.go addRestoreLabels).
	restored := p.Labels[velerov1.BackupNameLabel] == label.GetValidName(backup)
	if v.PVName != p.Spec.VolumeName && !restored {
		pv := v.PVName
		if pv == "" {
			pv = "no volume"
		}
		return v, fmt.Sprintf("it is bound to volume %s, the backup holds the data of %s (the claim was re-created since, not restored from this backup)", p.Spec.VolumeName, pv)
	}
	return v, ""
}

// notHeld says why Velero's record of a volume does not hold its data
// ("": it does).
func notHeld(v *VolumeInfo) string {
	switch {
	case v.Skipped:
		// Velero ends each of its reasons with a semicolon.
		reason := strings.TrimRight(v.SkippedReason, "; ")
		if reason == "" {
			reason = "no reason given"
		}
		return "Velero skipped its data: " + reason
	case v.BackupMethod == "":
		return "no file-system backup, snapshot or data upload of it"
	case v.Result != "succeeded":
		how := v.BackupMethod
		if v.PVBInfo != nil && v.PVBInfo.Phase != "" {
			how += " " + v.PVBInfo.Phase
		}
		return fmt.Sprintf("its %s did not succeed (result %q)", how, v.Result)
	}
	return ""
}

// checkVolumes refuses, before anything is deleted, a target whose PVCs
// hold data the backup cannot bring back, unless the drill accepts their
// loss by name. An unreadable record is no evidence either way: the run
// stops before the fault, INCONCLUSIVE. The PVCs are listed again after
// the record is read (a download: seconds, up to a minute), so a claim
// bound meanwhile is judged too; call it right before the delete.
func (s *scenario) checkVolumes(ctx context.Context) error {
	pvcs, err := BoundPVCs(ctx, s.deps.Kube, s.ns)
	if err != nil || len(pvcs) == 0 {
		return err
	}
	infos, err := s.deps.Volumes.BackupVolumeInfos(ctx, s.params.VeleroNamespace, s.backup.Name)
	if errors.Is(err, ErrNotStored) {
		names := make([]string, 0, len(pvcs))
		for _, p := range pvcs {
			names = append(names, p.Name)
		}
		return engine.Refuse("velero backup %s has no volume information (taken before Velero 1.13, or its upload failed): cannot tell whether it holds the data of PVC %s, refusing to delete namespace %s",
			s.backup.Name, strings.Join(names, ", "), s.ns)
	}
	if err != nil {
		return engine.Unknown(fmt.Errorf("read the volume information of Velero backup %s: %w", s.backup.Name, err))
	}
	if pvcs, err = BoundPVCs(ctx, s.deps.Kube, s.ns); err != nil {
		return err
	}
	var refused []string
	s.accepted = nil
	for _, l := range LostVolumes(s.backup.Name, pvcs, infos) {
		if slices.Contains(s.params.Volumes.Accept, l.PVC) {
			s.accepted = append(s.accepted, fmt.Sprintf("data of %s accepted as lost (params.volumes.accept): the restore brings back an empty volume", l))
			continue
		}
		refused = append(refused, l.String())
	}
	if len(refused) > 0 {
		return engine.Refuse("velero backup %s does not hold the data of %s; deleting namespace %s would destroy it: refusing (back its volumes up, or accept their loss by name in params.volumes.accept)",
			s.backup.Name, strings.Join(refused, "; "), s.ns)
	}
	s.held = heldVolumes(s.backup.Name, pvcs, infos)
	s.volumes = fmt.Sprintf("%d of %d bound PVCs have their data in backup %s (Velero's volume information)", len(s.held), len(pvcs), s.backup.Name)
	return nil
}

// PodVolumeRestoresGVR is Velero's PodVolumeRestore resource.
var PodVolumeRestoresGVR = velerov1.SchemeGroupVersion.WithResource("podvolumerestores")

// heldVolumes keeps, of the backup's record, the volumes whose data it holds
// for the namespace's bound PVCs: what must come back.
func heldVolumes(backup string, pvcs []corev1.PersistentVolumeClaim, infos []VolumeInfo) []VolumeInfo {
	var held []VolumeInfo
	for i := range pvcs {
		if v, why := recordOf(backup, &pvcs[i], infos); why == "" {
			held = append(held, *v)
		}
	}
	return held
}

// volumesRestored reports whether every held volume is back: its PVC
// Bound, and, for a file-system backup, a Completed PodVolumeRestore of
// this restore for it. A Failed or Canceled PodVolumeRestore is an error:
// its data did not come back. Waiting lists what is not back yet.
func volumesRestored(held []VolumeInfo, pvcs []corev1.PersistentVolumeClaim, pvrs []velerov1.PodVolumeRestore) (waiting []string, err error) {
	for _, h := range held {
		i := slices.IndexFunc(pvcs, func(p corev1.PersistentVolumeClaim) bool { return p.Name == h.PVCName })
		if i < 0 || pvcs[i].Status.Phase != corev1.ClaimBound {
			waiting = append(waiting, "PVC "+h.PVCName+" Bound")
		}
		// An empty volume's backup has no snapshot: Velero restores it
		// with no PodVolumeRestore (podvolume getVolumeBackupInfoForPod).
		if h.BackupMethod != "PodVolumeBackup" || h.PVBInfo == nil || h.PVBInfo.SnapshotHandle == "" {
			continue
		}
		j := slices.IndexFunc(pvrs, func(r velerov1.PodVolumeRestore) bool {
			return r.Spec.Pod.Namespace == h.PVCNamespace && r.Spec.Pod.Name == h.PVBInfo.PodName && r.Spec.Volume == h.PVBInfo.VolumeName
		})
		switch {
		case j < 0:
			waiting = append(waiting, fmt.Sprintf("a PodVolumeRestore of PVC %s (pod %s, volume %s)", h.PVCName, h.PVBInfo.PodName, h.PVBInfo.VolumeName))
		case pvrs[j].Status.Phase == velerov1.PodVolumeRestorePhaseFailed || pvrs[j].Status.Phase == velerov1.PodVolumeRestorePhaseCanceled:
			return nil, fmt.Errorf("PodVolumeRestore %s of PVC %s ended %s: %s", pvrs[j].Name, h.PVCName, pvrs[j].Status.Phase, pvrs[j].Status.Message)
		case pvrs[j].Status.Phase != velerov1.PodVolumeRestorePhaseCompleted:
			waiting = append(waiting, fmt.Sprintf("PodVolumeRestore %s of PVC %s Completed (now %q)", pvrs[j].Name, h.PVCName, pvrs[j].Status.Phase))
		}
	}
	return waiting, nil
}

// waitVolumesRestored waits, within the recover phase, until every volume
// whose data the backup held is back (volumesRestored).
func (s *scenario) waitVolumesRestored(ctx context.Context) error {
	var waiting []string
	err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		list, err := s.deps.Kube.CoreV1().PersistentVolumeClaims(s.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, fmt.Errorf("list PersistentVolumeClaims in %s: %w", s.ns, err)
		}
		var pvrs []velerov1.PodVolumeRestore
		page, err := s.deps.Dynamic.Resource(PodVolumeRestoresGVR).Namespace(s.params.VeleroNamespace).List(ctx,
			metav1.ListOptions{LabelSelector: velerov1.RestoreNameLabel + "=" + label.GetValidName(s.run)})
		if err != nil {
			return false, fmt.Errorf("list Velero PodVolumeRestores of restore %s: %w", s.run, err)
		}
		for i := range page.Items {
			var r velerov1.PodVolumeRestore
			if err := FromUnstructured(&page.Items[i], &r); err != nil {
				return false, err
			}
			pvrs = append(pvrs, r)
		}
		waiting, err = volumesRestored(s.held, list.Items, pvrs)
		return err == nil && len(waiting) == 0, err
	})
	if err != nil && len(waiting) > 0 {
		return fmt.Errorf("volumes not restored: waiting for %s: %w", strings.Join(waiting, ", "), err)
	}
	return err
}
