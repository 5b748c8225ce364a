package failoverrestore

// Written as the adversary would.

import (
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery/cached/memory"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes/fake"
)

// TestVerifyClusterMadeObjectsAreNoEvidence: the cluster makes the root CA
// ConfigMap (and the default ServiceAccount) in every namespace, the copy
// too, the moment drillbot creates it, whether or not the restore brought
// anything back. A backup whose only comparable objects in the source are
// those is a comparison of nothing (EVIDENCE rule 1): INCONCLUSIVE, not
// PASS.
func TestVerifyClusterMadeObjectsAreNoEvidence(t *testing.T) {
	list := map[string][]string{
		"v1/Namespace": {"shop"},
		"v1/ConfigMap": {"shop/kube-root-ca.crt"},
		"v1/Pod":       {"shop/web-1"},
	}
	// The restore brought nothing: the copy holds only what the cluster made.
	disc, md := verifyFixture(t, []runtime.Object{inCopy("v1", "ConfigMap", "kube-root-ca.crt", nil)})
	v, err := verifyRestored(t, fake.NewClientset(), md, disc, list)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Failures) == 0 && v.Inconclusive == "" {
		t.Fatalf("PASS on the cluster's own root CA ConfigMap; findings %q", strings.Join(v.Findings, "\n"))
	}
	if want := "made in every namespace by itself (no evidence): configmaps 1"; !strings.Contains(v.Inconclusive, want) {
		t.Errorf("inconclusive %q, want %q", v.Inconclusive, want)
	}
}

// flakyGroup is discovery in which one group version's resources cannot be
// read (an aggregated API or a CRD's discovery answering 503).
type flakyGroup struct {
	*fakediscovery.FakeDiscovery
	gv string
}

func (f flakyGroup) ServerResourcesForGroupVersion(gv string) (*metav1.APIResourceList, error) {
	if gv == f.gv {
		return nil, apierrors.NewServiceUnavailable("discovery of " + gv + " down")
	}
	return f.FakeDiscovery.ServerResourcesForGroupVersion(gv)
}

// TestVerifyDiscoveryFailureIsNotUnserved: a group whose discovery failed
// is not a group this cluster does not serve. Its objects were restored
// and are in the copy; the error is unknown (EVIDENCE rule 5), not a FAIL
// (rule 8).
func TestVerifyDiscoveryFailureIsNotUnserved(t *testing.T) {
	list := map[string][]string{
		"v1/ConfigMap":          {"shop/prices"},
		"example.com/v1/Widget": {"shop/blue"},
	}
	_, md := verifyFixture(t, []runtime.Object{inCopy("v1", "ConfigMap", "prices", nil), inCopy("example.com/v1", "Widget", "blue", nil)})
	inner := fake.NewClientset().Discovery().(*fakediscovery.FakeDiscovery)
	verbs := metav1.Verbs{"list"}
	inner.Resources = []*metav1.APIResourceList{
		{GroupVersion: "v1", APIResources: []metav1.APIResource{
			{Name: "configmaps", Namespaced: true, Kind: "ConfigMap", Verbs: verbs},
			{Name: "namespaces", Kind: "Namespace", Verbs: verbs}}},
		{GroupVersion: "example.com/v1", APIResources: []metav1.APIResource{
			{Name: "widgets", Namespaced: true, Kind: "Widget", Verbs: verbs}}},
	}
	flaky := memory.NewMemCacheClient(flakyGroup{FakeDiscovery: inner, gv: "example.com/v1"})
	v, err := verifyRestored(t, fake.NewClientset(), md, flaky, list)
	if len(v.Failures) > 0 {
		t.Fatalf("FAIL on a discovery error: %q (err %v)", v.Failures, err)
	}
	if err == nil || !strings.Contains(err.Error(), "discover example.com/v1") {
		t.Fatalf("Verify error %v, want the discovery error (the run INCONCLUSIVE); inconclusive %q", err, v.Inconclusive)
	}
}
