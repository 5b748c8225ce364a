package backupcoverage

// Written as the adversary would, both ways: a namespace Velero restored
// from a backup is held by that backup, although the backup started before
// the namespace (as recreated) existed (rule 8: not FAIL after every
// restore drill); and a restore that did not make this namespace from that
// backup gives that backup no credit (rule 2).

import (
	"strings"
	"testing"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
)

// restore is a Velero restore of backup, started and completed the given
// time ago.
func restore(name, backup string, phase velerov1.RestorePhase, started, completed time.Duration, spec velerov1.RestoreSpec) velerov1.Restore {
	spec.BackupName = backup
	s, c := metav1.NewTime(now.Add(-started)), metav1.NewTime(now.Add(-completed))
	return velerov1.Restore{TypeMeta: metav1.TypeMeta{APIVersion: "velero.io/v1", Kind: "Restore"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "velero"}, Spec: spec,
		Status: velerov1.RestoreStatus{Phase: phase, StartTimestamp: &s, CompletionTimestamp: &c}}
}

func TestNamespaceRestoredFromItsBackup(t *testing.T) {
	rw := location("default", true, velerov1.BackupStorageLocationPhaseAvailable)
	all := velerov1.BackupSpec{IncludedNamespaces: []string{"*"}}
	hourly := schedule("hourly", false, all)
	// shop as a restore drill leaves it: deleted, and made again 5 minutes
	// ago by a Velero restore from hourly-1, which started 30 minutes ago.
	restored := func() runtime.Object {
		n := shop()
		n.CreationTimestamp = metav1.NewTime(now.Add(-5 * time.Minute))
		n.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "velero-server", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1", Time: &n.CreationTimestamp}}
		return n
	}
	hourly1 := ptr.To(held("hourly-1", "hourly", "default", 30*time.Minute, all))
	shopOnly := velerov1.RestoreSpec{IncludedNamespaces: []string{"shop"}}
	notCounted := "(started before the namespace was created at 2026-12-01T11:55:00Z, and no Completed Velero restore of all of it from that backup made it)"
	cases := []struct {
		name     string
		pvcs     bool // shop has a PVC
		velero   []any
		counted  bool
		findings []string
	}{
		{name: "made by a Completed restore from it", velero: []any{ptr.To(restore("drill-1", "hourly-1", velerov1.RestorePhaseCompleted, 6*time.Minute, 4*time.Minute, shopOnly))},
			counted: true, findings: []string{"namespace shop: backup hourly-1 started before the namespace was created", "counted: Velero restore drill-1 made the namespace from it"}},
		{name: "made by a restore as Velero leaves it", velero: []any{ptr.To(restore("drill-1", "hourly-1", velerov1.RestorePhaseCompleted, 6*time.Minute, 4*time.Minute,
			velerov1.RestoreSpec{IncludedNamespaces: []string{"shop"}, ExcludedResources: []string{"nodes", "events", "events.events.k8s.io", "backups.velero.io",
				"restores.velero.io", "resticrepositories.velero.io", "csinodes.storage.k8s.io", "volumeattachments.storage.k8s.io", "backuprepositories.velero.io"}}))},
			counted: true},
		{name: "made by a restore of all namespaces from it", velero: []any{ptr.To(restore("drill-1", "hourly-1", velerov1.RestorePhaseCompleted, 6*time.Minute, 4*time.Minute, velerov1.RestoreSpec{}))},
			counted: true},
		{name: "restore from another backup", velero: []any{ptr.To(restore("drill-1", "hourly-0", velerov1.RestorePhaseCompleted, 6*time.Minute, 4*time.Minute, shopOnly))}},
		{name: "restore only partly done", velero: []any{ptr.To(restore("drill-1", "hourly-1", velerov1.RestorePhasePartiallyFailed, 6*time.Minute, 4*time.Minute, shopOnly))}},
		{name: "restore still running", velero: []any{ptr.To(func() velerov1.Restore {
			r := restore("drill-1", "hourly-1", velerov1.RestorePhaseInProgress, 6*time.Minute, 0, shopOnly)
			r.Status.CompletionTimestamp = nil
			return r
		}())}},
		{name: "namespace made again after the restore", velero: []any{ptr.To(restore("drill-1", "hourly-1", velerov1.RestorePhaseCompleted, 20*time.Minute, 18*time.Minute, shopOnly))}},
		{name: "namespace made before the restore", velero: []any{ptr.To(restore("drill-1", "hourly-1", velerov1.RestorePhaseCompleted, 4*time.Minute, 3*time.Minute, shopOnly))}},
		{name: "restore of another namespace", velero: []any{ptr.To(restore("drill-1", "hourly-1", velerov1.RestorePhaseCompleted, 6*time.Minute, 4*time.Minute,
			velerov1.RestoreSpec{IncludedNamespaces: []string{"billing"}}))}},
		{name: "restore that excludes it", velero: []any{ptr.To(restore("drill-1", "hourly-1", velerov1.RestorePhaseCompleted, 6*time.Minute, 4*time.Minute,
			velerov1.RestoreSpec{ExcludedNamespaces: []string{"sh*"}}))}},
		{name: "another namespace's data mapped onto it", velero: []any{ptr.To(restore("drill-1", "hourly-1", velerov1.RestorePhaseCompleted, 6*time.Minute, 4*time.Minute,
			velerov1.RestoreSpec{NamespaceMapping: map[string]string{"billing": "shop"}}))}},
		{name: "its data mapped elsewhere", velero: []any{ptr.To(restore("drill-1", "hourly-1", velerov1.RestorePhaseCompleted, 6*time.Minute, 4*time.Minute,
			velerov1.RestoreSpec{NamespaceMapping: map[string]string{"shop": "shop-copy"}}))}},
		{name: "restore only of some resources", velero: []any{ptr.To(restore("drill-1", "hourly-1", velerov1.RestorePhaseCompleted, 6*time.Minute, 4*time.Minute,
			velerov1.RestoreSpec{IncludedNamespaces: []string{"shop"}, IncludedResources: []string{"configmaps"}}))}},
		{name: "restore that leaves out its secrets", velero: []any{ptr.To(restore("drill-1", "hourly-1", velerov1.RestorePhaseCompleted, 6*time.Minute, 4*time.Minute,
			velerov1.RestoreSpec{ExcludedResources: []string{"nodes", "secrets"}}))}},
		{name: "restore without its volumes", pvcs: true, velero: []any{ptr.To(restore("drill-1", "hourly-1", velerov1.RestorePhaseCompleted, 6*time.Minute, 4*time.Minute,
			velerov1.RestoreSpec{RestorePVs: ptr.To(false)}))}},
		{name: "restore of labelled objects only", velero: []any{ptr.To(restore("drill-1", "hourly-1", velerov1.RestorePhaseCompleted, 6*time.Minute, 4*time.Minute,
			velerov1.RestoreSpec{LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}))}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kube := []runtime.Object{restored()}
			if tc.pvcs {
				kube = append(kube, pvc("shop", "data-db-0"))
			}
			v := runCheck(t, production, world{kube: kube, velero: append([]any{&rw, &hourly, hourly1}, tc.velero...)})
			fails, finds := strings.Join(v.Failures, "\n"), strings.Join(v.Findings, "\n")
			if !tc.counted {
				if !strings.Contains(fails, "not counted: hourly-1") || !strings.Contains(fails, notCounted) || v.Posture == nil || v.Posture.Compliant != 0 {
					t.Fatalf("failures:\n%s\nposture %+v: want hourly-1 not counted", fails, v.Posture)
				}
				return
			}
			if fails != "" || v.Posture == nil || v.Posture.Compliant != 1 {
				t.Fatalf("failures:\n%s\nposture %+v: want shop compliant on hourly-1", fails, v.Posture)
			}
			if v.DataTimestamp == nil || !v.DataTimestamp.Equal(now.Add(-30*time.Minute)) {
				t.Errorf("RPO data timestamp %v, want hourly-1's start", v.DataTimestamp)
			}
			for _, w := range tc.findings {
				if !strings.Contains(finds, w) {
					t.Errorf("findings:\n%s\nwant %q", finds, w)
				}
			}
		})
	}
}
