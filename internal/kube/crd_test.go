package kube_test

import (
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/kube"
)

// TestMissingFields: a CRD installed by an older drillbot (no
// status.detections, no status.stop) is found stale, so drillbot refuses to
// write runs the API server would prune; the current one is not.
func TestMissingFields(t *testing.T) {
	var want apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(v1alpha1.DrillRunCRD, &want); err != nil {
		t.Fatal(err)
	}
	if got := kube.MissingFields(&want, &want); len(got) != 0 {
		t.Errorf("the current CRD against itself: %v", got)
	}
	old := want.DeepCopy()
	status := old.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["status"]
	delete(status.Properties, "detections")
	delete(status.Properties, "stop")
	journal := status.Properties["journal"]
	delete(journal.Items.Schema.Properties, "expiresAt")
	status.Properties["journal"] = journal
	old.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["status"] = status
	got := strings.Join(kube.MissingFields(old, &want), "; ")
	if got != "v1alpha1 .status.detections; v1alpha1 .status.journal[].expiresAt; v1alpha1 .status.stop" {
		t.Errorf("missing %q", got)
	}
}
