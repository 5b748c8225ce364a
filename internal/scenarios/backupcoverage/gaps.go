package backupcoverage

import (
	"fmt"
	"slices"
	"strings"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Namespace is what the check knows of one selected namespace.
type Namespace struct {
	Name string
	// Created is its creation: a backup started before it holds it only if
	// a restore from that backup made it.
	Created metav1.Time
	// Managers are the field managers of the namespace object (its
	// managedFields): who wrote it, Velero's server for one it restored.
	Managers []string
	// PVCs are its PersistentVolumeClaims: their data must be in a backup
	// that holds all of it.
	PVCs []string
	// Bound are those bound to a volume: the ones that hold data.
	Bound []corev1.PersistentVolumeClaim
}

// specKind says whose spec is judged: a Backup's, as its Velero completed
// it, or a Schedule's template, which Velero fills in when it makes each
// backup (an unset defaultVolumesToFsBackup is the server's default).
type specKind int

const (
	backupSpec specKind = iota
	templateSpec
)

// specGaps names what a backup spec leaves out of a namespace that its
// namespace lists take: the objects a label selector does not match, the
// resources it does not include or excludes, its volumes' data, what a
// resource policy may skip. None: the spec takes all of it.
func specGaps(s *velerov1.BackupSpec, ns *Namespace, kind specKind) []string {
	var gaps []string
	if s.LabelSelector != nil && !emptySelector(s.LabelSelector) {
		gaps = append(gaps, "objects not matching labelSelector "+metav1.FormatLabelSelector(s.LabelSelector))
	}
	if len(s.OrLabelSelectors) > 0 && !slices.ContainsFunc(s.OrLabelSelectors, emptySelector) {
		sels := make([]string, 0, len(s.OrLabelSelectors))
		for _, sel := range s.OrLabelSelectors {
			sels = append(sels, metav1.FormatLabelSelector(sel))
		}
		gaps = append(gaps, "objects not matching orLabelSelectors "+strings.Join(sels, " or "))
	}
	for _, l := range []struct {
		field string
		items []string
	}{{"includedResources", s.IncludedResources}, {"includedNamespaceScopedResources", s.IncludedNamespaceScopedResources}} {
		if len(l.items) > 0 && !slices.Contains(l.items, "*") {
			gaps = append(gaps, fmt.Sprintf("every resource but %s (%s)", strings.Join(l.items, ", "), l.field))
		}
	}
	for _, l := range []struct {
		field string
		items []string
	}{{"excludedResources", s.ExcludedResources}, {"excludedNamespaceScopedResources", s.ExcludedNamespaceScopedResources},
		{"excludedClusterScopedResources", s.ExcludedClusterScopedResources}} {
		var left []string
		for _, r := range l.items {
			if leavesOut(r, ns, l.field == "excludedClusterScopedResources") {
				left = append(left, r)
			}
		}
		if len(left) > 0 {
			gaps = append(gaps, fmt.Sprintf("%s (%s)", strings.Join(left, ", "), l.field))
		}
	}
	// A backup's volumes are judged by Velero's record of them (volumeGaps);
	// a schedule's template only says what the next backups will try.
	if kind == templateSpec && len(ns.PVCs) > 0 && s.SnapshotVolumes != nil && !*s.SnapshotVolumes {
		if fs := s.DefaultVolumesToFsBackup; fs != nil && !*fs {
			gaps = append(gaps, fmt.Sprintf("the data of PVC %s (snapshotVolumes false, defaultVolumesToFsBackup not true: only volumes of pods annotated backup.velero.io/backup-volumes are in it)",
				strings.Join(ns.PVCs, ", ")))
		}
	}
	if s.ResourcePolicy != nil {
		gaps = append(gaps, fmt.Sprintf("whatever resource policy %s %s skips (drillbot does not read it)", strings.ToLower(s.ResourcePolicy.Kind), s.ResourcePolicy.Name))
	}
	return gaps
}

func emptySelector(s *metav1.LabelSelector) bool {
	return s == nil || (len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0)
}

// Resources whose exclusion leaves nothing of a namespace out: derived or
// ephemeral ones, the CSI snapshot objects Velero itself excludes from
// every backup (they are intermediate; pkg/controller/backup_controller.go
// autoExclude*Resources), and what Velero never restores
// (pkg/controller/restore_controller.go nonRestorableResources, v1.18).
var (
	neverMissed = []string{"events", "event", "ev", "events.events.k8s.io", "endpoints", "ep", "endpointslices.discovery.k8s.io",
		"volumesnapshots.snapshot.storage.k8s.io", "volumesnapshotcontents.snapshot.storage.k8s.io",
		"nodes", "node", "no", "backups.velero.io", "restores.velero.io", "resticrepositories.velero.io",
		"csinodes.storage.k8s.io", "volumeattachments.storage.k8s.io", "backuprepositories.velero.io"}
	volumeResources = []string{"persistentvolumeclaims", "persistentvolumeclaim", "pvc", "persistentvolumes", "persistentvolume", "pv"}
)

// leavesOut reports whether excluding resource r leaves part of ns out. Of
// the cluster-scoped ones only persistent volumes matter to a namespace;
// volumes matter only to a namespace with PVCs.
func leavesOut(r string, ns *Namespace, clusterScoped bool) bool {
	r = strings.ToLower(r)
	switch {
	case slices.Contains(neverMissed, r):
		return false
	case slices.Contains(volumeResources, r):
		return len(ns.PVCs) > 0
	default:
		return !clusterScoped
	}
}
