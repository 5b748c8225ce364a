package backupcoverage

// Adversarial review of "a Velero restore made the namespace from that
// backup" (madeFrom / partialRestore), checked against Velero v1.18.3.

import (
	"strings"
	"testing"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/drillbot-io/drillbot/internal/engine"
)

// reviewWorld: shop made again 5 minutes ago; hourly-1 (all namespaces,
// this cluster's Available ReadWrite location) started 30 minutes ago.
func reviewWorld(pvcs bool, managers []string, velero ...any) world {
	rw := location("default", true, velerov1.BackupStorageLocationPhaseAvailable)
	all := velerov1.BackupSpec{IncludedNamespaces: []string{"*"}}
	hourly := schedule("hourly", false, all)
	n := shop()
	n.CreationTimestamp = metav1.NewTime(now.Add(-5 * time.Minute))
	for _, m := range managers {
		n.ManagedFields = append(n.ManagedFields, metav1.ManagedFieldsEntry{Manager: m, Operation: metav1.ManagedFieldsOperationUpdate,
			APIVersion: "v1", Time: &n.CreationTimestamp, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:labels":{".":{},"f:env":{}}}}`)}})
	}
	kube := []runtime.Object{n}
	if pvcs {
		kube = append(kube, pvc("shop", "data-db-0"))
	}
	return world{kube: kube, velero: append([]any{&rw, &hourly, ptr.To(held("hourly-1", "hourly", "default", 30*time.Minute, all))}, velero...)}
}

func wantNotCredited(t *testing.T, v engine.Verification) {
	t.Helper()
	failures, compliant := v.Failures, v.Posture.Compliant
	if compliant != 0 || !strings.Contains(strings.Join(failures, "\n"), "not counted: hourly-1") {
		t.Fatalf("shop compliant=%d, failures:\n%s\nwant hourly-1 not counted for shop (no restore from it made all of shop)", compliant, strings.Join(failures, "\n"))
	}
}

// Velero v1.18 restores take spec.resourcePolicy: a ConfigMap whose
// namespacedFilterPolicies narrow, per namespace, which kinds, names and
// labels are restored (pkg/restore/restore.go: Restore resolves
// req.ResPolicies, getOrderedResourceCollection skips kinds "not in
// resourceFilters"). partialRestore never looks at it, while specGaps
// counts a backup's resource policy as a gap.
func TestReviewRestoreResourcePolicyNarrowsIt(t *testing.T) {
	r := restore("drill-1", "hourly-1", velerov1.RestorePhaseCompleted, 6*time.Minute, 4*time.Minute,
		velerov1.RestoreSpec{IncludedNamespaces: []string{"shop"},
			ResourcePolicy: &corev1.TypedLocalObjectReference{Kind: "configmap", Name: "only-configmaps"}})
	v := runCheck(t, production, reviewWorld(false, nil, &r))
	wantNotCredited(t, v)
}

// includeClusterResources: false makes Velero skip every cluster-scoped
// item that is not must-include, the PV a PVC brings as an additional item
// included (pkg/restore/restore.go restoreItem: "Not restoring item because
// it's cluster-scoped"; pkg/restore/actions/pvc_action.go adds the PV
// without the must-include annotation). A PV restored from a native
// snapshot is then not restored: the PVC keeps its volumeName and holds no
// data, and the restore is Completed. Like restorePVs: false, it leaves the
// volume data of a namespace with PVCs out.
func TestReviewRestoreWithoutClusterResourcesLeavesVolumesOut(t *testing.T) {
	r := restore("drill-1", "hourly-1", velerov1.RestorePhaseCompleted, 6*time.Minute, 4*time.Minute,
		velerov1.RestoreSpec{IncludedNamespaces: []string{"shop"}, IncludeClusterResources: ptr.To(false)})
	v := runCheck(t, production, reviewWorld(true, nil, &r))
	wantNotCredited(t, v)
}

// Two restores were running when shop was made: drill-1, a restore of
// every namespace from hourly-1 (in its WaitingForPluginOperations /
// Finalizing phases, which keep its window open), and other-1, a restore
// of shop from another cluster's backup in a ReadOnly location. Velero runs
// one restore's InProgress phase at a time and drill-1 would have created
// shop in its own InProgress phase had hourly-1 held it: shop was made by
// other-1, and hourly-1 holds none of it. The check credits hourly-1.
func TestReviewTwoRestoresRunningWhenMade(t *testing.T) {
	ro := readOnly("other")
	otherBackup := held("other-1", "", "other", 2*time.Hour, velerov1.BackupSpec{IncludedNamespaces: []string{"shop"}})
	broad := restore("drill-1", "hourly-1", velerov1.RestorePhaseCompleted, 20*time.Minute, 1*time.Minute, velerov1.RestoreSpec{})
	other := restore("other-1", "other-1", velerov1.RestorePhaseCompleted, 6*time.Minute, 4*time.Minute,
		velerov1.RestoreSpec{IncludedNamespaces: []string{"shop"}})
	v := runCheck(t, production, reviewWorld(false, nil, &ro, &otherBackup, &broad, &other))
	wantNotCredited(t, v)
}

// A cluster-wide restore from hourly-1 (which started before shop ever
// existed, so holds none of it) ran while a GitOps controller created shop:
// the namespace's own managedFields say argocd-controller created it, not
// velero-server (Velero's server client, pkg/cmd/server/server.go
// SetBasename "velero-server"; pkg/restore/restore.go creates a namespace
// with kube.EnsureNamespaceExistsAndIsReady, nothing else marks it). A
// Completed restore of "all namespaces" does not show it restored shop:
// Velero restores only the namespaces in the backup tarball
// (getOrderedResourceCollection iterates resourceList.ItemsByNamespace)
// and says nothing of one it does not hold. The check credits hourly-1
// on timing alone.
func TestReviewNamespaceMadeByAnotherClientDuringRestore(t *testing.T) {
	r := restore("dr-1", "hourly-1", velerov1.RestorePhaseCompleted, 20*time.Minute, 1*time.Minute, velerov1.RestoreSpec{})
	v := runCheck(t, production, reviewWorld(false, []string{"argocd-controller"}, &r))
	wantNotCredited(t, v)
}

// Velero matches a restore's namespace lists with
// collections.IncludesExcludes.ShouldInclude: globStringSet.match walks
// the set's sorted List() and returns false at the first pattern that does
// not compile (pkg/util/collections/includes_excludes.go). With
// includedNamespaces ["shop", "[bad"], "[bad" sorts first, so Velero
// includes nothing and restores nothing of shop; nr.IncludesNamespace walks
// the list in spec order, matches "shop" and says yes.
func TestReviewRestoreIncludesInVelerosOrder(t *testing.T) {
	r := restore("drill-1", "hourly-1", velerov1.RestorePhaseCompleted, 6*time.Minute, 4*time.Minute,
		velerov1.RestoreSpec{IncludedNamespaces: []string{"shop", "[bad"}})
	v := runCheck(t, production, reviewWorld(false, nil, &r))
	wantNotCredited(t, v)
}

// Same second, other client: the restore completed at 11:55:00, then
// shop was deleted and kubectl made it again, empty, in that same second
// (metav1.Time keeps seconds). Created is not before the completion, so
// the timing admits it; the namespace's managedFields (kubectl-create, not
// velero-server) say the restore did not make it. Less likely than the
// cluster-wide case above (deleting a restored namespace takes time), the
// same defect: credit on timing alone.
func TestReviewMadeAgainInTheCompletionSecond(t *testing.T) {
	r := restore("drill-1", "hourly-1", velerov1.RestorePhaseCompleted, 10*time.Minute, 5*time.Minute,
		velerov1.RestoreSpec{IncludedNamespaces: []string{"shop"}})
	v := runCheck(t, production, reviewWorld(false, []string{"kubectl-create"}, &r))
	wantNotCredited(t, v)
}

// The other way, same cause as TestReviewRestoreIncludesInVelerosOrder:
// excludedNamespaces ["shop", "[bad"]: Velero's excludes.match stops at
// "[bad" (sorted first) and excludes nothing, so it restores all of shop
// (a Completed restore, made by velero-server); nr.IncludesNamespace
// matches "shop" first and says excluded: FAIL, worse than the truth.
func TestReviewRestoreExcludesInVelerosOrder(t *testing.T) {
	r := restore("drill-1", "hourly-1", velerov1.RestorePhaseCompleted, 6*time.Minute, 4*time.Minute,
		velerov1.RestoreSpec{ExcludedNamespaces: []string{"shop", "[bad"}})
	v := runCheck(t, production, reviewWorld(false, []string{"velero-server"}, &r))
	if len(v.Failures) > 0 || v.Posture.Compliant != 1 {
		t.Fatalf("failures:\n%s\nwant shop compliant on hourly-1: Velero restored all of it", strings.Join(v.Failures, "\n"))
	}
}
