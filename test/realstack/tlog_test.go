package realstack_test

// rekor-outage (transparency-log-outage) against real Kyverno on the real
// node: the log is played by a listener on the node's bridge, at an
// address outside the pod and service ranges (localcluster.OutsideIP), so
// nothing leaves this machine; the block is a NetworkPolicy enforced by the
// node's kube-router; the canary is the shipped
// examples/kyverno/tlog-canary.yaml with the listener's URL, so Kyverno
// itself calls the log to admit it.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/scenarios/admissionprobe"
	"github.com/drillbot-io/drillbot/internal/scenarios/tlogoutage"
	"github.com/drillbot-io/drillbot/test/localcluster"
	"github.com/drillbot-io/drillbot/test/realstack"
	"github.com/drillbot-io/drillbot/test/testharness"
)

// transparencyLog answers Rekor's GET /api/v1/log (the log's tree) and
// counts the calls. It closes connections idle for 5 s (as a load balancer
// in front of a log does), so a drill's quiet period can outlast them.
type transparencyLog struct {
	url   string
	calls atomic.Int64
}

func serveTransparencyLog(t *testing.T) *transparencyLog {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(localcluster.OutsideIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	l := &transparencyLog{url: "http://" + ln.Addr().String()}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/log" {
			http.NotFound(w, r)
			return
		}
		l.calls.Add(1)
		_ = json.NewEncoder(w).Encode(map[string]any{"treeSize": 1042, "treeID": "1193050959916656506",
			"rootHash": "6b7fe1b5c2b6e8c2f3a8c1e8a4c9d1b2a3f4e5d6c7b8a9f0e1d2c3b4a5f6e7d8"})
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l
}

// applyClusterPolicy creates doc (a ClusterPolicy) and waits until it is
// Ready and probe holds; it is deleted when the test ends.
func applyClusterPolicy(t *testing.T, doc string, probe func(context.Context) bool) {
	t.Helper()
	ctx := context.Background()
	var obj unstructured.Unstructured
	if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil {
		t.Fatal(err)
	}
	res := cluster.Dynamic.Resource(realstack.ClusterPolicies)
	if _, err := res.Create(ctx, &obj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := res.Delete(ctx, obj.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete ClusterPolicy %s: %v", obj.GetName(), err)
		}
	})
	if err := wait.PollUntilContextTimeout(ctx, time.Second, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := res.Get(ctx, obj.GetName(), metav1.GetOptions{})
		return err == nil && ready(p) && probe(ctx), nil
	}); err != nil {
		t.Fatalf("ClusterPolicy %s not in force: %v", obj.GetName(), err)
	}
}

// canaryPolicy is the shipped canary pointed at the log's URL; with
// everyPod it matches every pod the signing policy does instead of the
// canary's label: a policy set whose deploys need the log.
func canaryPolicy(t *testing.T, logURL, name string, everyPod bool) string {
	t.Helper()
	b, err := os.ReadFile("../../examples/kyverno/tlog-canary.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Replace(string(b), "https://rekor.sigstore.dev", logURL, 1)
	doc = strings.Replace(doc, "name: drillbot-tlog-canary", "name: "+name, 1)
	if everyPod {
		doc = strings.Replace(doc, `              selector:
                matchLabels:
                  drillbot.io/tlog-canary: "true"`, `              namespaceSelector:
                matchLabels:
                  drillbot.io/signed-images: required`, 1)
	}
	if strings.Contains(doc, "rekor.sigstore.dev") || (everyPod && strings.Contains(doc, "tlog-canary: \"true\"")) {
		t.Fatal("examples/kyverno/tlog-canary.yaml changed: the test no longer knows where to point it")
	}
	return doc
}

const rekorOutageDrill = `apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata: {name: rekor-outage}
spec:
  scenario: transparency-log-outage
  objectives: {rto: 5m}
  timeouts: {recover: 4m, revert: 2m}
  target:
    namespace: kyverno
    selector: {app.kubernetes.io/component: admission-controller}
  params:
    logCIDRs: [%q]
    probeNamespace: %s
    signed: {image: %q, restricted: true}
    unsigned: {image: %q, restricted: true}
    reasonContains: %q
    canary: {image: %q, restricted: true, labels: {drillbot.io/tlog-canary: "true"}}
    quietPeriod: %s
    detectionWindow: %s
`

// TestRekorOutage: Kyverno's pods cut off from the log for real. With the
// plan's key-based policy (no log needed) the signed image is admitted and
// the unsigned denied while the log is unreachable: PASS. A policy set
// whose deploys need the log stops them: FAIL. A block that misses the
// log's address leaves the canary admitted: INCONCLUSIVE, never a PASS.
func TestRekorOutage(t *testing.T) {
	s := kyverno(t)
	// Kyverno's image-verification cache is off (realstack.InstallKyverno):
	// the signed image is verified afresh during the block.
	requireKyvernoArgs(t, true)
	applyPolicy(t, s, "Fail", s.publicKey)
	logSrv := serveTransparencyLog(t)
	canary := admissionprobe.PodSpec{Image: s.signed, Restricted: true, Labels: map[string]string{"drillbot.io/tlog-canary": "true"}}
	admitted := func(p admissionprobe.PodSpec) func(context.Context) bool {
		return func(ctx context.Context) bool {
			return admissionprobe.Probe(ctx, cluster.Kube, probeNS, "setup", p).Outcome == admissionprobe.Admitted
		}
	}
	applyClusterPolicy(t, canaryPolicy(t, logSrv.url, "drillbot-tlog-canary", false), admitted(canary))
	if logSrv.calls.Load() == 0 {
		t.Fatal("the canary was admitted without Kyverno calling the log")
	}
	type rekorCase = struct {
		name, cidr, quiet, window string
		needsLog                  bool
		verdict                   v1alpha1.Verdict
		want                      string
		milestones                string
	}
	cases := []rekorCase{
		{name: "key-based fallback", cidr: localcluster.OutsideIP + "/32", quiet: "10s", window: "1m", verdict: v1alpha1.VerdictPass,
			want: "signed image admitted (key-based fallback), unsigned image denied", milestones: "log-unreachable,outage-probed,unblocked,log-reachable"},
		{name: "deploys need the log", cidr: localcluster.OutsideIP + "/32", quiet: "10s", window: "1m", needsLog: true, verdict: v1alpha1.VerdictFail,
			want: "while the log was unreachable: deploys stop: the signed image " + s.signed, milestones: "log-unreachable,outage-probed,unblocked,log-reachable"},
		// Seen first on this stack: Kyverno keeps its connection to the log
		// alive, kube-router lets an established connection through, and a
		// canary asked every 2 s keeps it busy: without a quiet period the
		// block has no effect.
		{name: "connection kept alive through the block", cidr: localcluster.OutsideIP + "/32", quiet: "0s", window: "15s", verdict: v1alpha1.VerdictInconclusive,
			want: "a connection to the log opened before the block was let through", milestones: "unblocked,log-reachable"},
		{name: "block misses the log", cidr: "10.244.1.2/32", quiet: "10s", window: "15s", verdict: v1alpha1.VerdictInconclusive,
			want: "the block had no effect", milestones: "unblocked,log-reachable"},
	}
	if cluster.Calico() {
		// Calico drops what a policy denies (kube-router refuses it):
		// Kyverno's call to the cut-off log hangs until its
		// --apiCallTimeout (30 s by default), past the canary policy's
		// 10 s webhook timeout, so no answer of the canary's policy comes:
		// INCONCLUSIVE, saying why. With the call's timeout below the
		// webhook's, the key-based fallback PASSes as under kube-router
		// (the other cases are kube-router's: one run each under Calico).
		cases = append([]rekorCase{{name: "Calico drops the call: Kyverno's default apiCallTimeout outlasts the webhook", cidr: localcluster.OutsideIP + "/32",
			quiet: "10s", window: "30s", verdict: v1alpha1.VerdictInconclusive, want: "A webhook timeout here is Kyverno's call to the log outlasting the webhook's timeout",
			milestones: "unblocked,log-reachable"}}, cases[0])
	}
	for i, tc := range cases {
		if cluster.Calico() && i == 1 {
			setAPICallTimeout(t, "5s", admitted(canary))
		}
		t.Run(tc.name, func(t *testing.T) {
			if tc.needsLog {
				signed := admissionprobe.PodSpec{Image: s.signed, Restricted: true}
				applyClusterPolicy(t, canaryPolicy(t, logSrv.url, "test-deploys-need-the-log", true), admitted(signed))
			}
			h := testharness.New(t, cluster)
			before := logSrv.calls.Load()

			run := h.Run(h.Drill(fmt.Sprintf(rekorOutageDrill, tc.cidr, probeNS, s.signed, s.unsigned, kyvernoDenial, s.signed, tc.quiet, tc.window)))

			st := run.Status
			story := testharness.Story(st)
			t.Logf("verdict %s RTO %s: %s", st.Verdict, st.RTO, story)
			if st.Verdict != tc.verdict || !strings.Contains(story, tc.want) {
				t.Fatalf("verdict %s, want %s with %q", st.Verdict, tc.verdict, tc.want)
			}
			if got := testharness.Milestones(st); got != tc.milestones {
				t.Errorf("milestones %q, want %q", got, tc.milestones)
			}
			if len(st.Journal) != 1 || st.Journal[0].State != v1alpha1.JournalReverted {
				t.Errorf("journal %s", localcluster.JSON(st.Journal))
			}
			if _, err := cluster.Kube.NetworkingV1().NetworkPolicies(realstack.KyvernoNamespace).Get(context.Background(), tlogoutage.PolicyName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("the block outlived the run: %v", err)
			}
			if logSrv.calls.Load() == before {
				t.Error("the log got no call during the run: the canary did not exercise it")
			}
		})
	}
}

// setAPICallTimeout gives Kyverno's admission controller
// --apiCallTimeout=d until the test ends, and waits until ready holds
// again (a new pod loads its policies anew).
func setAPICallTimeout(t *testing.T, d string, ready func(context.Context) bool) {
	t.Helper()
	ctx := context.Background()
	set := func(d string) func([]string) []string {
		return func(args []string) []string {
			args = slices.DeleteFunc(args, func(a string) bool { return strings.HasPrefix(a, "--apiCallTimeout=") })
			if d != "" {
				args = append(args, "--apiCallTimeout="+d)
			}
			return args
		}
	}
	if err := realstack.SetKyvernoArgs(ctx, cluster, set(d)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := realstack.SetKyvernoArgs(ctx, cluster, set("")); err != nil {
			t.Error(err)
		}
	})
	if err := wait.PollUntilContextTimeout(ctx, time.Second, 2*time.Minute, true, func(ctx context.Context) (bool, error) { return ready(ctx), nil }); err != nil {
		t.Fatalf("Kyverno with --apiCallTimeout=%s: not ready: %v", d, err)
	}
}

// requireKyvernoArgs fails the test unless every admission pod runs with
// the image-verification cache off (or, with off false, at its default:
// no cache flag).
func requireKyvernoArgs(t *testing.T, off bool) {
	t.Helper()
	args, err := realstack.KyvernoArgs(context.Background(), cluster)
	if err != nil {
		t.Fatal(err)
	}
	if len(args) == 0 {
		t.Fatal("no Kyverno admission pod")
	}
	for pod, a := range args {
		if slices.Contains(a, realstack.KyvernoCacheOff) != off || (!off && slices.ContainsFunc(a, isCacheFlag)) {
			t.Fatalf("pod %s runs %q: want the image-verification cache off %v", pod, a, off)
		}
	}
}

func isCacheFlag(arg string) bool {
	return strings.HasPrefix(strings.TrimLeft(arg, "-"), "imageVerifyCache")
}

// TestRekorOutageImageVerifyCache: Kyverno with its image-verification
// cache at its default (on, 60 min: the flag absent, as its chart installs
// it). The signed image verified before the block (by the drill's own
// preflight probe among others) would be admitted from the cache during
// it, without verification: the run must not PASS. drillbot reads the
// running pod's args and refuses before the block, the wait of the TTL
// not fitting timeouts.recover.
func TestRekorOutageImageVerifyCache(t *testing.T) {
	s := kyverno(t)
	applyPolicy(t, s, "Fail", s.publicKey)
	logSrv := serveTransparencyLog(t)
	canary := admissionprobe.PodSpec{Image: s.signed, Restricted: true, Labels: map[string]string{"drillbot.io/tlog-canary": "true"}}
	admitted := func(ctx context.Context) bool {
		return admissionprobe.Probe(ctx, cluster.Kube, probeNS, "setup", canary).Outcome == admissionprobe.Admitted
	}
	applyClusterPolicy(t, canaryPolicy(t, logSrv.url, "drillbot-tlog-canary", false), admitted)
	ctx := context.Background()
	if err := realstack.SetKyvernoArgs(ctx, cluster, func(a []string) []string { return slices.DeleteFunc(a, isCacheFlag) }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := realstack.SetKyvernoArgs(ctx, cluster, func(a []string) []string {
			return append(slices.DeleteFunc(a, isCacheFlag), realstack.KyvernoCacheOff)
		}); err != nil {
			t.Errorf("restore Kyverno's args: %v", err)
			return
		}
		// The next tests need the policies in force again.
		applyPolicy(t, s, "Fail", s.publicKey)
	})
	requireKyvernoArgs(t, false)
	// Kyverno's new pod enforces the policies: the drill would run but for
	// the cache.
	applyPolicy(t, s, "Fail", s.publicKey)
	if err := wait.PollUntilContextTimeout(ctx, time.Second, 2*time.Minute, true, func(ctx context.Context) (bool, error) { return admitted(ctx), nil }); err != nil {
		t.Fatalf("the canary is not admitted after Kyverno's restart: %v", err)
	}
	h := testharness.New(t, cluster)

	run := h.Run(h.Drill(fmt.Sprintf(rekorOutageDrill, localcluster.OutsideIP+"/32", probeNS, s.signed, s.unsigned, kyvernoDenial, s.signed, "10s", "1m")))

	st := run.Status
	story := testharness.Story(st)
	t.Logf("verdict %s: %s", st.Verdict, story)
	if st.Verdict == v1alpha1.VerdictPass {
		t.Fatalf("PASS with Kyverno's image-verification cache on: %s", story)
	}
	if want := "Kyverno's image-verification cache is on (TTL 1h0m0s"; !strings.Contains(story, want) {
		t.Errorf("the run does not say %q", want)
	}
	if len(st.Journal) != 0 {
		t.Errorf("the block was injected: journal %s", localcluster.JSON(st.Journal))
	}
	if _, err := cluster.Kube.NetworkingV1().NetworkPolicies(realstack.KyvernoNamespace).Get(ctx, tlogoutage.PolicyName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the block exists: %v", err)
	}
}
