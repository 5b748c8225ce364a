package namespacerestore

// Second adversarial review of the http data check (commit 1efbdd4, the
// fixes of the first review). Every TestReview2* below fails on the change
// as reviewed: each is a defect.

import (
	"context"
	"testing"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
)

// TestReview2ServiceThatCannotBeEvidenceIsRefusedAfterTheDrillsWrites:
// 1efbdd4 refuses an http check whose Service can never be evidence (an
// ExternalName) "before the delete", and the docs promise "the run stops
// before its first write". With backup.create the check sits after
// createBackup: drillbot has already stamped the RPO marker into the
// target namespace and created a Velero Backup (kept for its TTL in the
// storage location, counted as the namespace's newest backup) before it
// reads the Service and refuses. Nothing of that check needs the backup:
// the Service and its pods can be read first (Preflight only reads; the
// test runs Preflight then Inject). A
// refusal known before any write must come before any write (EVIDENCE
// rule 7; rule 9: a refusal that left objects behind is no clean refusal).
func TestReview2ServiceThatCannotBeEvidenceIsRefusedAfterTheDrillsWrites(t *testing.T) {
	objs := []runtime.Object{object("apps/v1", "Deployment", "web", started.Add(-time.Hour))}
	s, kube := contentsScenario(t, resourceList{list: map[string][]string{"apps/v1/Deployment": {"shop/web"}, "v1/Namespace": {"shop"}}}, objs...)
	ext := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"}}
	if _, err := kube.CoreV1().Services("shop").Create(context.Background(), ext, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kube.ClearActions()
	s.params.Backup = BackupSource{Create: true}
	s.backup = nil
	s.httpCheck = &v1alpha1.HTTPCheck{Service: "db", Port: "http", Path: "/newest"}
	s.deps.Proxy, s.deps.PollInterval = &fakeProxy{data: liveData}, time.Millisecond
	// Velero: the backup drillbot creates completes at once.
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		BackupsGVR: "BackupList", BSLGVR: "BackupStorageLocationList"}, unstructuredOf(t, bsl(velerov1.BackupStorageLocationPhaseAvailable)))
	dyn.PrependReactor("create", "backups", func(a k8stesting.Action) (bool, runtime.Object, error) {
		u := a.(k8stesting.CreateAction).GetObject().(*unstructured.Unstructured)
		start := metav1.NewTime(started.Add(time.Hour))
		u.Object["status"] = map[string]any{"phase": string(velerov1.BackupPhaseCompleted),
			"startTimestamp": start.UTC().Format(time.RFC3339), "completionTimestamp": start.Add(30 * time.Second).UTC().Format(time.RFC3339)}
		return false, nil, nil
	})
	s.deps.Dynamic = dyn
	// Preflight, then Inject: the refusal may come from either.
	err := s.Preflight(context.Background())
	deleted := false
	if err == nil {
		deleted, err = injectDeleted(t, s)
	}
	if deleted {
		t.Fatalf("namespace deleted (%v) for an http check of an ExternalName Service", err)
	}
	if err == nil {
		t.Fatal("not refused")
	}
	var wrote []string
	for _, a := range append(kube.Actions(), dyn.Actions()...) {
		if v := a.GetVerb(); v != "get" && v != "list" && v != "watch" {
			wrote = append(wrote, v+" "+a.GetResource().Resource)
		}
	}
	if len(wrote) > 0 {
		t.Fatalf("refused (%v) only after writing %v: the Service (an ExternalName, never evidence) could have been read before any write", err, wrote)
	}
}
