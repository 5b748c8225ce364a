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

func TestMain(m *testing.M) { os.Exit(localcluster.RunRealNodeTests(m, &cluster)) }

func namespace(name string, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

// labelNamespace adds labels to a namespace.
func labelNamespace(ctx context.Context, name string, labels map[string]string) error {
	patch := map[string]any{"metadata": map[string]any{"labels": labels}}
	_, err := cluster.Kube.CoreV1().Namespaces().Patch(ctx, name, types.MergePatchType, []byte(localcluster.JSON(patch)), metav1.PatchOptions{})
	return err
}
