package namespacerestore

// Written as the adversary would.

import (
	"context"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery/cached/memory"
	fakediscovery "k8s.io/client-go/discovery/fake"
)

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

// TestVerifyDiscoveryFailureIsNotMissing: the restore brought the
// Deployment back, but discovery of apps/v1 fails when Verify takes the
// inventory after it. Objects that could not be looked for are unknown
// (EVIDENCE rule 5), not "not restored" (a FAIL worse than the truth,
// rule 8).
func TestVerifyDiscoveryFailureIsNotMissing(t *testing.T) {
	before := Inventory{"deployments.apps/web": {}, "configmaps/prices": {}}
	s := verifyScenario(t, before,
		&metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}, ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}},
		&metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, ObjectMeta: metav1.ObjectMeta{Name: "prices", Namespace: "shop"}})
	fd := s.deps.Kube.Discovery().(*fakediscovery.FakeDiscovery)
	s.deps.Discovery = memory.NewMemCacheClient(flakyGroup{FakeDiscovery: fd, gv: "apps/v1"})
	v, err := s.Verify(context.Background())
	if len(v.Failures) > 0 {
		t.Fatalf("FAIL on a discovery error: %q (err %v)", v.Failures, err)
	}
	if err == nil || !strings.Contains(err.Error(), "deployments.apps/web") {
		t.Fatalf("Verify error %v, want one naming the object not looked for (the run INCONCLUSIVE)", err)
	}
}
