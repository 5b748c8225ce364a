package realcalico_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/test/localcluster"
	"github.com/drillbot-io/drillbot/test/testharness"
)

// pod runs the sample app as a bare pod labelled app=name and waits until
// it is Ready; it returns the pod's IP and its container's host PID (to
// probe from inside its network namespace).
func pod(t *testing.T, ns, name string) (ip string, pid int) {
	t.Helper()
	ctx := context.Background()
	tmpl := localcluster.SampleApp(map[string]string{"app": name})
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: tmpl.Labels}, Spec: tmpl.Spec}
	if _, err := cluster.Kube.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var got *corev1.Pod
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		var err error
		got, err = cluster.Kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		return err == nil && got.Status.PodIP != "" && len(got.Status.ContainerStatuses) == 1 && got.Status.ContainerStatuses[0].Ready, nil
	}); err != nil {
		t.Fatalf("pod %s/%s not Ready: %v", ns, name, err)
	}
	pid, err := cluster.ContainerPID(ctx, got.Status.ContainerStatuses[0].ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	return got.Status.PodIP, pid
}

// reach tells whether the pod of pid gets an HTTP answer from ip's sample
// app within a second (Felix drops what policy denies: no answer).
func reach(ctx context.Context, pid int, ip string) bool {
	out, _ := exec.CommandContext(ctx, "nsenter", "-t", fmt.Sprint(pid), "-n",
		"curl", "-s", "-m", "1", "-o", "/dev/null", "-w", "%{http_code}", "http://"+ip+":8080/healthz").Output()
	return string(out) == "200"
}

// denyIngress creates a NetworkPolicy denying all ingress to app=target.
func denyIngress(t *testing.T, ns, name, target string) {
	t.Helper()
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": target}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}}
	if _, err := cluster.Kube.NetworkingV1().NetworkPolicies(ns).Create(context.Background(), np, metav1.CreateOptions{}); err != nil {
		t.Error(err)
	}
}

func waitReach(t *testing.T, pid int, ip string, want bool) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		return reach(ctx, pid, ip) == want, nil
	}); err != nil {
		t.Fatalf("%s: reachable should be %v", ip, want)
	}
}

func calicoNodePods(ctx context.Context) (uids []types.UID, ready bool) {
	l, err := cluster.Kube.CoreV1().Pods(localcluster.CalicoNamespace).List(ctx, metav1.ListOptions{LabelSelector: "k8s-app=calico-node"})
	if err != nil {
		return nil, false
	}
	for _, p := range l.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		uids = append(uids, p.UID)
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ready = true
			}
		}
	}
	return uids, ready
}

// outage is what the probes saw from the kill of calico-node until a
// policy made meanwhile was enforced, on the test's clock.
type outage struct {
	killed, policyMade, calicoReady, enforced time.Duration
	guardedOpen                               int // probes that reached a pod denied before the kill
	unenforced                                int // probes that reached the pod after its policy was made
	probes                                    int
}

// TestKillCalicoNode runs the shipped kill-calico-node drill against the
// real calico-node, drillbot connecting to the drill's canary from inside a
// pod as it would from its own, and watches the outage from inside a pod:
// a policy that existed before the kill must hold throughout (Felix's
// rules stay in the kernel while it is down), and a policy made while
// calico-node is down is enforced only by its replacement. The drill's own
// check must say the same: its policy enforced, after it was made.
func TestKillCalicoNode(t *testing.T) {
	localcluster.Require(t, cluster)
	ctx := context.Background()
	// calico-system opted in, as the drill's comment asks.
	patch := `{"metadata":{"labels":{"` + v1alpha1.LabelAllowDisaster + `":"true"}}}`
	if _, err := cluster.Kube.CoreV1().Namespaces().Patch(ctx, localcluster.CalicoNamespace, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	ns := "drillbot-canary" // the shipped drill's canary namespace
	testharness.Namespace(t, cluster, ns, map[string]string{v1alpha1.LabelAllowDisaster: "true"})
	pod(t, ns, "policy-canary")
	webIP, _ := pod(t, ns, "web")
	guardedIP, _ := pod(t, ns, "guarded")
	_, client := pod(t, ns, "client")
	waitReach(t, client, webIP, true)
	denyIngress(t, ns, "deny-guarded", "guarded")
	waitReach(t, client, guardedIP, false)

	before, _ := calicoNodePods(ctx)
	if len(before) != 1 {
		t.Fatalf("calico-node pods: %v", before)
	}
	var (
		o    outage
		wg   sync.WaitGroup
		done = make(chan struct{})
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		start := time.Now()
		wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		for { // the kill: the pod that ran before is gone
			uids, _ := calicoNodePods(wctx)
			if !slices.Contains(uids, before[0]) || wctx.Err() != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		o.killed = time.Since(start)
		denyIngress(t, ns, "deny-web", "web") // the change made during the outage
		o.policyMade = time.Since(start)
		for wctx.Err() == nil {
			o.probes++
			if reach(wctx, client, guardedIP) {
				o.guardedOpen++
			}
			open := reach(wctx, client, webIP)
			_, ready := calicoNodePods(wctx)
			if ready && o.calicoReady == 0 {
				o.calicoReady = time.Since(start)
			}
			if open {
				o.unenforced++
			} else if o.enforced == 0 {
				o.enforced = time.Since(start)
			}
			if o.enforced != 0 && o.calicoReady != 0 {
				break
			}
			select {
			case <-done:
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()

	doc, err := os.ReadFile("../../drills/kill-calico-node.yaml")
	if err != nil {
		t.Fatal(err)
	}
	h := testharness.New(t, cluster)
	h.Dial = localcluster.DialFrom(client)
	run := h.Run(h.Drill(string(doc)))
	close(done)
	wg.Wait()
	st := run.Status
	t.Logf("verdict %s RTO %s: %s", st.Verdict, st.RTO, st.Reason)
	t.Logf("outage (test clock from the watch's start): calico-node killed %s, policy made %s, replacement Ready %s, policy enforced %s; %d probes, %d reached the pod after its policy was made, %d reached the pod denied before the kill",
		o.killed, o.policyMade, o.calicoReady, o.enforced, o.probes, o.unenforced, o.guardedOpen)
	if st.Verdict != v1alpha1.VerdictPass || st.RTO == "" {
		t.Fatalf("verdict %s %q, want PASS with an RTO", st.Verdict, st.Reason)
	}
	if after, _ := calicoNodePods(ctx); slices.Contains(after, before[0]) {
		t.Errorf("calico-node pod %s survived the kill", before[0])
	}
	if o.guardedOpen > 0 {
		t.Errorf("a pod denied before the kill was reached %d times while calico-node was replaced", o.guardedOpen)
	}
	if o.enforced == 0 || o.calicoReady == 0 {
		t.Fatalf("the policy made during the outage was never enforced (%s) or calico-node never Ready again (%s)", o.enforced, o.calicoReady)
	}
	t.Logf("findings: %s", strings.Join(st.Findings, "; "))
	if m := testharness.Milestones(st); !strings.Contains(m, "policy-enforced") {
		t.Errorf("milestones %s: recovery did not wait for the policy made during the outage", m)
	}
	if !slices.ContainsFunc(st.Findings, func(f string) bool {
		return strings.HasPrefix(f, "a NetworkPolicy made right after the kill was enforced ")
	}) {
		t.Errorf("no finding on the policy made during the outage: %q", st.Findings)
	}
	if _, err := cluster.Kube.NetworkingV1().NetworkPolicies(ns).Get(ctx, "drillbot-policy-check", metav1.GetOptions{}); err == nil {
		t.Error("the drill left its NetworkPolicy")
	}
}
