package failoverrestore

// Adversarial review of failover-restore's volume data rule (commit
// 563ab1d, volumeData): every TestReviewHTTP* below fails on the change as
// reviewed.

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery/cached/memory"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"

	nr "github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
)

// TestReviewHTTPFailoverVolumesTheBackupNeverHeldAreNotAPass: volumeData looks only at
// the PVCs the backup's resource list names. A backup that holds none (a
// schedule with excludedResources: [persistentvolumeclaims], or PVCs left
// out by its label selector) of a stateful app: the StatefulSet is
// restored into the copy, its controller makes a fresh, empty PVC from
// its volumeClaimTemplates, the pod goes Ready on it, and every object
// the list names is back. No data was in the backup, none came back, none
// was read, and the run PASSes with not a word about volume data: a
// failover that would come up with an empty database is audit evidence
// of a good one. Breaks EVIDENCE rule 1 (no positive evidence of the
// data) and rule 3 (what happened: the copy's workload runs on a claim no
// backup held); the commit's own rule, "a restore drill is not PASS until
// its data is verified", is skipped because the claim is not in the list.
func TestReviewHTTPFailoverVolumesTheBackupNeverHeldAreNotAPass(t *testing.T) {
	list := map[string][]string{
		"v1/Namespace":        {"shop"},
		"v1/ConfigMap":        {"shop/prices"},
		"apps/v1/StatefulSet": {"shop/db"},
	}
	// The copy after the restore: what the list names, restored; the
	// claim made by the StatefulSet controller (no restore label), Bound.
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data-db-0", Namespace: "shop-copy",
		Labels: map[string]string{"app": "db"}},
		Spec:   corev1.PersistentVolumeClaimSpec{VolumeName: "pvc-7f3a"},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound}}
	copyObjs := []runtime.Object{
		inCopy("v1", "ConfigMap", "prices", restored),
		inCopy("apps/v1", "StatefulSet", "db", restored),
		inCopy("v1", "PersistentVolumeClaim", "data-db-0", map[string]string{"app": "db"}),
	}
	fd := fake.NewClientset().Discovery().(*fakediscovery.FakeDiscovery)
	verbs := metav1.Verbs{"list"}
	fd.Resources = []*metav1.APIResourceList{
		{GroupVersion: "v1", APIResources: []metav1.APIResource{
			{Name: "configmaps", Namespaced: true, Kind: "ConfigMap", Verbs: verbs},
			{Name: "persistentvolumeclaims", Namespaced: true, Kind: "PersistentVolumeClaim", Verbs: verbs},
			{Name: "pods", Namespaced: true, Kind: "Pod", Verbs: verbs},
			{Name: "namespaces", Kind: "Namespace", Verbs: verbs}}},
		{GroupVersion: "apps/v1", APIResources: []metav1.APIResource{
			{Name: "statefulsets", Namespaced: true, Kind: "StatefulSet", Verbs: verbs}}},
	}
	scheme := runtime.NewScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	md := metadatafake.NewSimpleMetadataClient(scheme, copyObjs...)
	marker := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: nr.MarkerName, Namespace: "shop-copy"},
		Data: map[string]string{nr.MarkerKey: now.Add(-5 * time.Minute).Format(time.RFC3339Nano)}}
	v, err := verifyRestored(t, fake.NewClientset(marker, pvc), md, memory.NewMemCacheClient(fd), list)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Failures) == 0 && v.Inconclusive == "" {
		t.Fatalf("PASS for a copy whose StatefulSet runs on claim data-db-0, which no backup held and no check read; findings %q",
			strings.Join(v.Findings, "\n"))
	}
}
