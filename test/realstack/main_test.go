package realstack_test

import (
	"context"
	"os"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/drillbot-io/drillbot/test/localcluster"
)

var cluster *localcluster.Cluster

// TestMain starts the real node with kube-router enforcing NetworkPolicy,
// or with Calico when DRILLBOT_ENFORCER=calico (make test runs the network
// drills' tests a second time that way).
func TestMain(m *testing.M) {
	if os.Getenv("DRILLBOT_ENFORCER") == "calico" {
		os.Exit(localcluster.RunCalicoTests(m, &cluster))
	}
	os.Exit(localcluster.RunRealNodeTests(m, &cluster))
}

func namespace(name string, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

// labelNamespace adds labels to a namespace.
func labelNamespace(ctx context.Context, name string, labels map[string]string) error {
	patch := map[string]any{"metadata": map[string]any{"labels": labels}}
	_, err := cluster.Kube.CoreV1().Namespaces().Patch(ctx, name, types.MergePatchType, []byte(localcluster.JSON(patch)), metav1.PatchOptions{})
	return err
}
