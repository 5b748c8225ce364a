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
	// One heavy cluster at a time on 2 cores: the kind node waits its turn
	// behind the real node's packages (go test runs packages in parallel).
	lockCtx, cancelLock := context.WithTimeout(context.Background(), 35*time.Minute)
	unlock, err := localcluster.LockRealNode(lockCtx)
	cancelLock()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unlock)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// As with the built-in cluster's node: a demo left running is taken
	// over (stopped as make cluster-down does), and said so.
	if pid := kindcluster.LiveDaemon(kindcluster.DockerDir); pid > 0 {
		fmt.Fprintf(os.Stderr, "stopping the kind demo's Docker (pid %d) left running by make demo CLUSTER=kind, as make cluster-down does\n", pid)
		if err := kindcluster.StopDocker(ctx, kindcluster.DockerDir, log); err != nil {
			t.Fatal(err)
		}
	}
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
	if err := kindcluster.CheckE2ERun(run); err != nil {
		t.Errorf("run %s: %v", run.Name, err)
	}
	// What drillbot recorded, checked against the cluster itself.
	if err := c.CheckRestored(ctx, run, "drill-demo", "shop-web"); err != nil {
		t.Errorf("after run %s: %v", run.Name, err)
	}
}

// TestCheckE2ERun: a PASS is not evidence of the e2e's claim unless the
// daemon's schedule started it and its RPO came from the restored marker.
func TestCheckE2ERun(t *testing.T) {
	now := metav1.NowMicro()
	good := func() *v1alpha1.DrillRun {
		r := &v1alpha1.DrillRun{}
		r.Spec.Drill, r.Spec.StartedBy = kindcluster.E2EDrill, &v1alpha1.Initiator{Kind: v1alpha1.InitiatorSchedule}
		r.Status.Verdict, r.Status.RTO, r.Status.RPO, r.Status.DisasterAt = v1alpha1.VerdictPass, "11s", "1m55s", &now
		r.Status.RPOSource = "restored marker ConfigMap drillbot-rpo-marker"
		return r
	}
	if err := kindcluster.CheckE2ERun(good()); err != nil {
		t.Fatal(err)
	}
	for name, spoil := range map[string]func(*v1alpha1.DrillRun){
		"started by a user":        func(r *v1alpha1.DrillRun) { r.Spec.StartedBy.Kind = v1alpha1.InitiatorUser },
		"RPO from the backup time": func(r *v1alpha1.DrillRun) { r.Status.RPOSource = "backup start time (no marker in restored data)" },
		"no disaster":              func(r *v1alpha1.DrillRun) { r.Status.DisasterAt = nil },
		"INCONCLUSIVE":             func(r *v1alpha1.DrillRun) { r.Status.Verdict = v1alpha1.VerdictInconclusive },
		"another drill":            func(r *v1alpha1.DrillRun) { r.Spec.Drill = "namespace-restore" },
	} {
		r := good()
		spoil(r)
		if err := kindcluster.CheckE2ERun(r); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
