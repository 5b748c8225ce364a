package namespacerestore

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery/cached/memory"
	fakediscovery "k8s.io/client-go/discovery/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
)

// TestInventorySeesKindsInstalledAfterStart: the daemon's discovery client
// caches; a CRD installed after it started must still be inventoried, or
// the drill would pass without checking the CRD's objects came back.
func TestInventorySeesKindsInstalledAfterStart(t *testing.T) {
	fd := kubefake.NewClientset().Discovery().(*fakediscovery.FakeDiscovery)
	fd.Resources = []*metav1.APIResourceList{{GroupVersion: "v1", APIResources: []metav1.APIResource{
		{Name: "configmaps", Namespaced: true, Kind: "ConfigMap", Verbs: veleroServed}}}}
	disc := memory.NewMemCacheClient(fd)
	scheme := runtime.NewScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	meta := metadatafake.NewSimpleMetadataClient(scheme,
		&metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, ObjectMeta: metav1.ObjectMeta{Name: "prices", Namespace: "shop"}},
		&metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "example.com/v1", Kind: "Widget"}, ObjectMeta: metav1.ObjectMeta{Name: "w", Namespace: "shop"}})
	ctx := context.Background()
	first, _, err := TakeInventory(ctx, disc, meta, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := first["configmaps/prices"]; !ok || len(first) != 1 {
		t.Fatalf("first inventory %v", first)
	}
	// The CRD is installed while the daemon runs.
	fd.Resources = append(fd.Resources, &metav1.APIResourceList{GroupVersion: "example.com/v1", APIResources: []metav1.APIResource{
		{Name: "widgets", Namespaced: true, Kind: "Widget", Verbs: veleroServed}}})
	second, _, err := TakeInventory(ctx, disc, meta, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := second["widgets.example.com/w"]; !ok {
		t.Errorf("inventory %v misses the CRD installed after start", second)
	}
}
