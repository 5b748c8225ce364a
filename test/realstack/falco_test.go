package realstack_test

// corrupt-falco-rules on the real node. Falco cannot run here (it needs a
// kernel driver and is not on the Go module proxy), so its DaemonSet runs
// hack/images/rulescheck: a container that loads the rules file as Falco
// does (at start and on every change) and exits non-zero on rules it
// cannot load. The crash, the restarts and CrashLoopBackOff are the
// kubelet's; the ConfigMap reaches the pod through the kubelet's volume
// sync, as Falco's does.

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/test/localcluster"
	"github.com/drillbot-io/drillbot/test/testharness"
)

// falcoRules are valid rules, with bytes a careless restore would mangle.
const falcoRules = "- rule: Terminal shell in container\n  desc: >\n    A shell was spawned — “unexpected”\n  condition: spawned_process and container and shell_procs\n  output: \"shell (user=%user.name)\"\n  priority: WARNING\n"

// falcoLike runs the stand-in DaemonSet in ns and waits until it is Ready.
func falcoLike(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	if err := cluster.ImportImage(ctx, "rulescheck"); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.Kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "falco-rules"},
		Data: map[string]string{"falco_rules.yaml": falcoRules}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	l := map[string]string{"app.kubernetes.io/name": "falco"}
	tmpl := localcluster.SampleApp(l)
	c := &tmpl.Spec.Containers[0]
	c.Name, c.Image, c.Args = "falco", localcluster.ImageRef("rulescheck"), []string{"/etc/falco/falco_rules.yaml"}
	c.ReadinessProbe.HTTPGet.Port = intstr.FromInt32(8765)
	c.VolumeMounts = []corev1.VolumeMount{{Name: "rules", MountPath: "/etc/falco", ReadOnly: true}}
	tmpl.Spec.Volumes = []corev1.Volume{{Name: "rules", VolumeSource: corev1.VolumeSource{
		ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "falco-rules"}}}}}
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "falco"}, Spec: appsv1.DaemonSetSpec{
		Selector: &metav1.LabelSelector{MatchLabels: l}, Template: tmpl,
		UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: ptr.To(intstr.FromInt32(1))}}}}
	if _, err := cluster.Kube.AppsV1().DaemonSets(ns).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(ctx, time.Second, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		got, err := cluster.Kube.AppsV1().DaemonSets(ns).Get(ctx, "falco", metav1.GetOptions{})
		return err == nil && got.Status.DesiredNumberScheduled > 0 && got.Status.NumberReady == got.Status.DesiredNumberScheduled, err
	})
	if err != nil {
		t.Fatalf("the Falco stand-in never got Ready: %v", err)
	}
}

const falcoDrill = `apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata: {name: corrupt-falco-rules}
spec:
  scenario: corrupt-config
  objectives: {rto: 20m, rpo: 5m}
  timeouts: {recover: 4m, revert: 2m}
  target: {namespace: %s}
  params: {configMap: falco-rules, key: falco_rules.yaml, daemonSet: falco}
`

// TestCorruptFalcoRules: the corrupt rules reach the pod, the container
// exits and the kubelet restarts it (detection), drillbot restores the
// rules byte for byte and restarts the DaemonSet, which is Ready again.
func TestCorruptFalcoRules(t *testing.T) {
	localcluster.Require(t, cluster)
	h := testharness.New(t, cluster)
	ns := "falco-" + localcluster.RandomSuffix()
	testharness.Namespace(t, cluster, ns, map[string]string{v1alpha1.LabelAllowDisaster: "true"})
	falcoLike(t, ns)
	// The detection must be the container's own exit on the bad rules, as
	// the kubelet reports it.
	ctx, stop := context.WithCancel(context.Background())
	exited := make(chan string, 1)
	go watchExit(ctx, ns, exited)

	run := h.Run(h.Drill(fmt.Sprintf(falcoDrill, ns)))
	stop()

	st := run.Status
	story := testharness.Story(st)
	t.Logf("verdict %s RTO %s RPO %s: %s", st.Verdict, st.RTO, st.RPO, story)
	if st.Verdict != v1alpha1.VerdictPass {
		t.Fatalf("verdict %s: %s", st.Verdict, story)
	}
	if got := testharness.Milestones(st); got != "detected,rules-restored,ready" {
		t.Errorf("milestones %q", got)
	}
	cm, err := cluster.Kube.CoreV1().ConfigMaps(ns).Get(context.Background(), "falco-rules", metav1.GetOptions{})
	if err != nil || cm.Data["falco_rules.yaml"] != falcoRules {
		t.Errorf("rules not restored byte for byte: %q %v", cm.Data["falco_rules.yaml"], err)
	}
	select {
	case msg := <-exited:
		t.Logf("the kubelet reported: %s", msg)
	default:
		t.Error("no container of the DaemonSet was seen exiting on the corrupt rules")
	}
}

// watchExit reports the first container of ns's pods seen terminated with
// a non-zero exit code (now or in its last state).
func watchExit(ctx context.Context, ns string, exited chan<- string) {
	_ = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		pods, err := cluster.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		for _, p := range pods.Items {
			for _, cs := range p.Status.ContainerStatuses {
				for _, st := range []*corev1.ContainerStateTerminated{cs.State.Terminated, cs.LastTerminationState.Terminated} {
					if st != nil && st.ExitCode != 0 {
						exited <- fmt.Sprintf("pod %s container %s exited %d (%s), restarts %d", p.Name, cs.Name, st.ExitCode, st.Reason, cs.RestartCount)
						return true, nil
					}
				}
			}
		}
		return false, nil
	})
}
