package kindcluster_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/test/kindcluster"
	"github.com/drillbot-io/drillbot/test/localcluster"
)

// The node image and runtime wrapper the Makefile builds (make kind-node).
const (
	nodeEnv    = "DRILLBOT_KIND_NODE"
	nodeRefEnv = "DRILLBOT_KIND_NODE_REF"
	runtimeEnv = "DRILLBOT_KIND_RUNTIME"
)

// kind starts the harness's Docker and a kind cluster on the local node
// image, and removes both (checking nothing is left) when the test ends.
func kind(t *testing.T) *kindcluster.Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("integration")
	}
	node, ref, rt := os.Getenv(nodeEnv), os.Getenv(nodeRefEnv), os.Getenv(runtimeEnv)
	if node == "" || ref == "" || rt == "" {
		msg := fmt.Sprintf("%s, %s and %s name the local kind node image (make kind-node)", nodeEnv, nodeRefEnv, runtimeEnv)
		if os.Getenv(localcluster.RequireEnv) != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// The machine's one real node: kind's node is a container of the same
	// machine, its cgroups and iptables beside the real node's.
	unlock, err := localcluster.LockRealNode(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unlock)
	d, err := kindcluster.StartDocker(ctx, kindcluster.DockerConfig{Dockerd: "dockerd", Runtime: rt, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Stop(context.Background()); err != nil {
			t.Errorf("stop docker: %v", err)
		}
		if left := kindcluster.DockerLeftovers(d.Dir); len(left) > 0 {
			t.Errorf("left behind: %s", strings.Join(left, "; "))
		}
	})
	start := time.Now()
	if err := d.LoadImage(ctx, node); err != nil {
		t.Fatal(err)
	}
	log.Info("node image loaded", "took", time.Since(start).Round(time.Second))
	if err := d.Network(ctx, "drillbot-kind", "drillbot-kind0", "172.30.250.0/24"); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	c, err := kindcluster.Create(ctx, kindcluster.Config{
		Name: "drillbot-e2e", NodeImage: ref, Local: true,
		Kubeconfig: filepath.Join(t.TempDir(), "kubeconfig"), DockerHost: d.Host, Network: "drillbot-kind",
		Retain: os.Getenv("DRILLBOT_KIND_RETAIN") != "", Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	log.Info("kind cluster created", "took", time.Since(start).Round(time.Second))
	t.Cleanup(func() {
		if t.Failed() {
			dir := filepath.Join(os.TempDir(), "drillbot-kind-logs-"+time.Now().Format("150405"))
			if err := c.CollectLogs(dir); err == nil {
				t.Logf("kind logs kept in %s", dir)
			}
		}
		if err := c.Delete(); err != nil {
			t.Errorf("delete: %v", err)
		}
	})
	return c
}

// nodeReady: the local node image became a Ready node whose control plane
// runs from the preloaded images, kube-proxy (privileged: the runtime
// wrapper one level down) included.
func nodeReady(t *testing.T, c *kindcluster.Cluster) {
	t.Helper()
	ctx := context.Background()
	if err := wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		nodes, err := c.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil || len(nodes.Items) != 1 {
			return false, nil
		}
		for _, cond := range nodes.Items[0].Status.Conditions {
			if cond.Type == corev1.NodeReady {
				return cond.Status == corev1.ConditionTrue, nil
			}
		}
		return false, nil
	}); err != nil {
		t.Fatalf("the node never went Ready: %v", err)
	}
	if err := wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		ds, err := c.Kube.AppsV1().DaemonSets("kube-system").Get(ctx, "kube-proxy", metav1.GetOptions{})
		return err == nil && ds.Status.NumberReady == 1, nil
	}); err != nil {
		t.Fatalf("kube-proxy never ran: %v", err)
	}
}

// TestKindNamespaceRestoreByTheChart: drillbot as users install it, by its
// chart on a kind cluster on the local node image, with Velero and its S3
// store as pods (kindcluster.E2E): the daemon's scheduled namespace-restore
// run deletes the namespace, has Velero restore it and passes on the
// restored workloads and marker, RTO and RPO measured. One cluster (the
// machine has two cores): the node checks come first.
func TestKindNamespaceRestoreByTheChart(t *testing.T) {
	c := kind(t)
	ctx := context.Background()
	nodeReady(t, c)
	e := kindcluster.E2E{Images: os.Getenv("DRILLBOT_IMAGES"), KindImages: os.Getenv("DRILLBOT_KIND_IMAGES"),
		Helm: os.Getenv("DRILLBOT_HELM"), Velero: os.Getenv("DRILLBOT_VELERO"), Chart: "../../deploy/helm/drillbot"}
	run, err := c.RunE2E(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("run %s: %s %s (RTO %s, RPO %s from %s)", run.Name, run.Status.Verdict, run.Status.Reason, run.Status.RTO, run.Status.RPO, run.Status.RPOSource)
	if run.Status.Verdict != v1alpha1.VerdictPass || run.Status.RTO == "" || run.Status.RPO == "" || run.Status.DisasterAt == nil {
		t.Errorf("run %s: verdict %q (%s), RTO %q, RPO %q; want PASS, a disaster, both measured", run.Name, run.Status.Verdict, run.Status.Reason, run.Status.RTO, run.Status.RPO)
	}
}
