package localcluster_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/drillbot-io/drillbot/test/localcluster"
)

// sysctls the real node may change; they must be as they were after it.
var sysctls = []string{"net/ipv4/ip_forward", "vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops", "vm/panic_on_oom"}

func readSysctls(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, k := range sysctls {
		v, err := os.ReadFile(filepath.Join("/proc/sys", k))
		if err != nil {
			t.Fatal(err)
		}
		out[k] = strings.TrimSpace(string(v))
	}
	return out
}

// A real node whose harness crashed (every process SIGKILLed, nothing
// cleaned: containers, shims, mounts, netns, bridge, iptables chains and
// cgroups left) is cleared by the next start, and a clean stop leaves
// nothing on the machine.
func TestRealNodeCrashLeftoversClearedAndStopLeavesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	bins, err := localcluster.BinsFromEnv()
	if err != nil {
		if os.Getenv(localcluster.RequireEnv) != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	unlock, err := localcluster.LockRealNode(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	before := readSysctls(t)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	// make cluster-down (StopDetached of its own directories) clears a
	// crashed test cluster's node too: it is gone, the node is no one's.
	gone := crash(ctx, t, bins, log)
	if err := localcluster.StopDetached(shortTempDir(t)); err != nil {
		t.Fatalf("cluster-down of another directory: %v", err)
	}
	if left := localcluster.NodeLeftovers(gone); len(left) > 0 {
		t.Fatalf("cluster-down did not clear the crashed node: %s", strings.Join(left, "; "))
	}

	crashed := crash(ctx, t, bins, log)
	b, err := localcluster.Start(ctx, localcluster.Config{Bins: bins, Dir: shortTempDir(t), Logger: log, RealNode: true})
	if err != nil {
		t.Fatal(err)
	}
	if left := localcluster.NodeLeftovers(crashed); len(left) > 0 {
		b.Stop()
		t.Fatalf("the next start did not clear the crashed node: %s", strings.Join(left, "; "))
	}
	runSampleApp(ctx, t, b)
	pullGoesNowhere(ctx, t, b)
	b.Stop()
	for _, dir := range []string{crashed, b.Dir()} {
		if left := localcluster.NodeLeftovers(dir); len(left) > 0 {
			t.Errorf("after Stop, %s left: %s", dir, strings.Join(left, "; "))
		}
	}
	if after := readSysctls(t); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("sysctls changed: before %v, after %v", before, after)
	}
}

// crash starts a real node, runs the sample app, and SIGKILLs every
// process of the cluster, which leaves its node behind; it returns the
// cluster's directory.
func crash(ctx context.Context, t *testing.T, bins localcluster.Bins, log *slog.Logger) string {
	t.Helper()
	dir := shortTempDir(t)
	a, err := localcluster.Start(ctx, localcluster.Config{Bins: bins, Dir: dir, Logger: log, RealNode: true, Detach: true})
	if err != nil {
		t.Fatal(err)
	}
	runSampleApp(ctx, t, a)
	pidFiles, _ := filepath.Glob(filepath.Join(dir, "*.pid"))
	for _, f := range pidFiles {
		var pid int
		data, _ := os.ReadFile(f)
		if _, err := fmt.Sscan(string(data), &pid); err == nil {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	}
	time.Sleep(time.Second)
	left := localcluster.NodeLeftovers(dir)
	if len(left) == 0 {
		t.Fatal("the crash left nothing to clear: the test cannot tell a clean-up from none")
	}
	t.Logf("left by the crash: %s", strings.Join(left, "; "))
	return dir
}

// runSampleApp runs one sample-app pod on the real node until it is Ready.
func runSampleApp(ctx context.Context, t *testing.T, c *localcluster.Cluster) {
	t.Helper()
	labels := map[string]string{"app": "sample"}
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "sample", Namespace: "default"}, Spec: appsv1.DeploymentSpec{
		Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: localcluster.SampleApp(labels),
	}}
	if _, err := c.Kube.AppsV1().Deployments("default").Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		d, err := c.Kube.AppsV1().Deployments("default").Get(ctx, "sample", metav1.GetOptions{})
		return err == nil && d.Status.ReadyReplicas == 1, nil
	}); err != nil {
		t.Fatalf("sample app never Ready on the real node: %v", err)
	}
}

// shortTempDir is a temporary directory with a path short enough for the
// real node's sockets (t.TempDir's holds the test's name).
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "drillbot-node-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// pullGoesNowhere: an image the node does not have is pulled through the
// no-registry proxy on loopback, and fails there.
func pullGoesNowhere(ctx context.Context, t *testing.T, c *localcluster.Cluster) {
	t.Helper()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "pull", Namespace: "default"}, Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: "app", Image: "registry.example/not-here:1", ImagePullPolicy: corev1.PullAlways}}}}
	if _, err := c.Kube.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var msg string
	if err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := c.Kube.CoreV1().Pods("default").Get(ctx, "pull", metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Waiting == nil {
			return false, nil
		}
		msg = p.Status.ContainerStatuses[0].State.Waiting.Message
		return msg != "", nil
	}); err != nil {
		t.Fatalf("the pull never failed: %v", err)
	}
	if want := strings.TrimPrefix(localcluster.NoRegistryProxy, "http://"); !strings.Contains(msg, want) {
		t.Errorf("the pull did not go to the no-registry proxy %s: %s", want, msg)
	}
}
