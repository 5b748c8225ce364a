package realstack_test

// The Kyverno drills against real Kyverno: its admission controller runs on
// the real node from its own chart, verifies cosign signatures (key-based,
// no transparency log) of images in a registry on this machine, and is
// killed for real (the kubelet and its ReplicaSet bring it back).

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"

	"github.com/drillbot-io/drillbot/internal/alerts"
	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/scenarios/admissionprobe"
	"github.com/drillbot-io/drillbot/test/localcluster"
	"github.com/drillbot-io/drillbot/test/realstack"
	"github.com/drillbot-io/drillbot/test/testharness"
)

// signing is the registry and the images the Kyverno tests use.
type signing struct {
	reg              *localcluster.Registry
	publicKey        string
	otherKey         string // a key that signed nothing
	signed, unsigned string // by digest / by tag
}

var (
	kyvernoOnce sync.Once
	kyvernoErr  error
	kyv         signing
)

// probeNS is where admission is probed: Kyverno's policy applies there.
const probeNS = "drill-demo"

// kyverno installs Kyverno (one replica: a kill is a full outage), the
// registry with a signed and an unsigned image, and the probe namespace,
// once for the package.
func kyverno(t *testing.T) signing {
	t.Helper()
	localcluster.Require(t, cluster)
	kyvernoOnce.Do(func() { kyvernoErr = setUpKyverno(context.Background()) })
	if kyvernoErr != nil {
		t.Fatal(kyvernoErr)
	}
	return kyv
}

func setUpKyverno(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 8*time.Minute)
	defer cancel()
	p, err := realstack.PathsFromEnv()
	if err != nil {
		return err
	}
	reg, err := cluster.ServeRegistry()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "drillbot-cosign-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	key, pub, err := localcluster.CosignKeyPair(ctx, p.Cosign, dir)
	if err != nil {
		return err
	}
	images := os.Getenv("DRILLBOT_IMAGES")
	signed, err := reg.Push(ctx, images, "sampleapp", "drillbot/signed", "v1")
	if err != nil {
		return err
	}
	if err := reg.Sign(ctx, p.Cosign, key, signed); err != nil {
		return err
	}
	if _, err := reg.Push(ctx, images, "sampleapp", "drillbot/unsigned", "v1"); err != nil {
		return err
	}
	pubPEM, err := os.ReadFile(pub)
	if err != nil {
		return err
	}
	if err := os.Mkdir(dir+"/other", 0o700); err != nil {
		return err
	}
	_, otherPub, err := localcluster.CosignKeyPair(ctx, p.Cosign, dir+"/other")
	if err != nil {
		return err
	}
	otherPEM, err := os.ReadFile(otherPub)
	if err != nil {
		return err
	}
	kyv = signing{reg: reg, publicKey: string(pubPEM), otherKey: string(otherPEM), signed: signed, unsigned: reg.Host + "/drillbot/unsigned:v1"}
	if err := realstack.InstallKyverno(ctx, cluster, p, 1); err != nil {
		return err
	}
	if err := labelNamespace(ctx, realstack.KyvernoNamespace, map[string]string{v1alpha1.LabelAllowDisaster: "true"}); err != nil {
		return err
	}
	_, err = cluster.Kube.CoreV1().Namespaces().Create(ctx, namespace(probeNS, map[string]string{
		v1alpha1.LabelAllowDisaster: "true", "drillbot.io/signed-images": "required",
		"pod-security.kubernetes.io/enforce": "restricted"}), metav1.CreateOptions{})
	return err
}

// requireSignedImages is the plan's policy: pods in namespaces labelled
// drillbot.io/signed-images=required may only run images of the registry
// signed with the key. failurePolicy is the webhook's when Kyverno does not
// answer.
const requireSignedImages = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: require-signed-images}
spec:
  background: false
  failurePolicy: %s
  webhookTimeoutSeconds: 10
  rules:
  - name: verify-cosign-signature
    match:
      any:
      - resources:
          kinds: [Pod]
          namespaceSelector: {matchLabels: {drillbot.io/signed-images: required}}
    verifyImages:
    - imageReferences: [%q]
      failureAction: Enforce
      mutateDigest: false
      verifyDigest: false
      required: true
      attestors:
      - entries:
        - keys:
            publicKeys: %q
            rekor: {ignoreTlog: true}
            ctlog: {ignoreSCT: true}
`

// applyPolicy (re)creates the policy with failurePolicy and the public key,
// and waits until it is Ready and Kyverno enforces it: the unsigned image
// is denied.
func applyPolicy(t *testing.T, s signing, failurePolicy, publicKey string) {
	t.Helper()
	ctx := context.Background()
	var obj unstructured.Unstructured
	host := s.reg.Host[:strings.LastIndex(s.reg.Host, ":")]
	if err := yaml.Unmarshal([]byte(fmt.Sprintf(requireSignedImages, failurePolicy, host+":*", publicKey)), &obj.Object); err != nil {
		t.Fatal(err)
	}
	res := cluster.Dynamic.Resource(realstack.ClusterPolicies)
	if cur, err := res.Get(ctx, obj.GetName(), metav1.GetOptions{}); err == nil {
		obj.SetResourceVersion(cur.GetResourceVersion())
		_, err = res.Update(ctx, &obj, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	} else if _, err := res.Create(ctx, &obj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var last admissionprobe.Result
	err := wait.PollUntilContextTimeout(ctx, time.Second, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := res.Get(ctx, obj.GetName(), metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if !ready(p) {
			return false, nil
		}
		last = admissionprobe.Probe(ctx, cluster.Kube, probeNS, "setup", admissionprobe.PodSpec{Image: s.unsigned, Restricted: true})
		if last.Outcome != admissionprobe.Denied || !strings.Contains(last.Message, kyvernoDenial) {
			return false, nil
		}
		// The key in force: the signed image is admitted with its own key only.
		last = admissionprobe.Probe(ctx, cluster.Kube, probeNS, "setup", admissionprobe.PodSpec{Image: s.signed, Restricted: true})
		return (last.Outcome == admissionprobe.Admitted) == (publicKey == s.publicKey), nil
	})
	if err != nil {
		t.Fatalf("policy %s (failurePolicy %s) not enforced: %v; last probe %s %s", obj.GetName(), failurePolicy, err, last.Outcome, last.Message)
	}
	// Kyverno's webhook configuration now carries the policy's failure policy.
	want := "kyverno.svc-" + strings.ToLower(failurePolicy)
	err = wait.PollUntilContextTimeout(ctx, time.Second, time.Minute, true, func(ctx context.Context) (bool, error) {
		l, err := cluster.Kube.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{LabelSelector: realstack.KyvernoWebhooks})
		if err != nil {
			return false, err
		}
		for _, c := range l.Items {
			for _, w := range c.Webhooks {
				if strings.Contains(w.Name, want) && len(w.Rules) > 0 && string(*w.FailurePolicy) == failurePolicy {
					return true, nil
				}
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("no Kyverno webhook %s with failurePolicy %s: %v", want, failurePolicy, err)
	}
}

func ready(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		if m, _ := c.(map[string]any); m["type"] == "Ready" && m["status"] == "True" {
			return true
		}
	}
	return false
}

const unsignedImageDrill = `apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata: {name: unsigned-image}
spec:
  scenario: admission-probe
  objectives: {rto: 1m}
  target: {namespace: %s}
  params:
    attempt: {image: %q, restricted: %t}
    reasonContains: %q
    positiveControl: {image: %q, restricted: true}
`

// kyvernoDenial is the part of Kyverno's own denial of an unsigned image
// the drill expects (Kyverno v1.19.1's wording).
const kyvernoDenial = "failed to verify image"

// TestUnsignedImage: the unsigned image is denied by Kyverno itself, the
// signed one (the positive control) admitted: PASS. Each way the real
// stack can make that answer untrue is a FAIL: an image outside the
// policy's references is admitted; an attempt denied by Pod Security is
// denied for another reason; a policy with the wrong key denies the signed
// image too.
func TestUnsignedImage(t *testing.T) {
	s := kyverno(t)
	cases := []struct {
		name        string
		key         string
		attempt     string
		restricted  bool
		wantVerdict v1alpha1.Verdict
		want        string
	}{
		{name: "unsigned denied by Kyverno, signed admitted", attempt: s.unsigned, restricted: true, wantVerdict: v1alpha1.VerdictPass,
			want: "positive control admitted: " + s.signed},
		{name: "image outside the policy's references", attempt: "registry.example/unsigned:latest", restricted: true,
			wantVerdict: v1alpha1.VerdictFail, want: "ADMITTED"},
		// Kyverno's mutating webhook answers before Pod Security (a
		// validating plugin), so only an image Kyverno admits reaches it.
		{name: "signed image denied by Pod Security instead", attempt: s.signed, restricted: false,
			wantVerdict: v1alpha1.VerdictFail, want: "not for the expected reason"},
		{name: "policy with another key denies the signed image too", key: s.otherKey, attempt: s.unsigned, restricted: true,
			wantVerdict: v1alpha1.VerdictFail, want: "positive control " + s.signed + " was denied"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			applyPolicy(t, s, "Fail", cmp.Or(tc.key, s.publicKey))
			h := testharness.New(t, cluster)

			run := h.Run(h.Drill(fmt.Sprintf(unsignedImageDrill, probeNS, tc.attempt, tc.restricted, kyvernoDenial, s.signed)))

			st := run.Status
			story := testharness.Story(st)
			t.Logf("verdict %s: %s", st.Verdict, story)
			if st.Verdict != tc.wantVerdict || !strings.Contains(story, tc.want) {
				t.Fatalf("verdict %s, want %s with %q", st.Verdict, tc.wantVerdict, tc.want)
			}
			if tc.wantVerdict == v1alpha1.VerdictPass && !strings.Contains(story, "denied as expected: ") {
				t.Errorf("no denial recorded: %s", story)
			}
		})
	}
}

const killKyvernoDrill = `apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata: {name: kill-kyverno}
spec:
  scenario: pod-kill
  objectives: {rto: 5m}
  timeouts: {recover: 4m, revert: 4m}
  target:
    namespace: kyverno
    selector: {app.kubernetes.io/component: admission-controller}
  params:
    admission:
      namespace: %s
      attempt: {image: %q, restricted: true}
      reasonContains: %q
      interval: 500ms
      webhookConfigurations: %q
    requiredObjects: {group: kyverno.io, version: v1, resource: clusterpolicies}
`

// TestKillKyverno kills Kyverno's admission controller for real. With the
// policy's failurePolicy Ignore the API server admits the unsigned image
// while Kyverno is down (fail-open: FAIL, window measured); with Fail it
// refuses every pod in the policy's scope (fail-closed: a finding). Either
// way the ClusterPolicy must be Ready again afterwards, and Kyverno's
// webhook configurations are watched throughout.
func TestKillKyverno(t *testing.T) {
	s := kyverno(t)
	cases := []struct {
		failurePolicy string
		wantVerdict   v1alpha1.Verdict
		want          string
	}{
		{"Ignore", v1alpha1.VerdictFail, "fail-open window"},
		{"Fail", v1alpha1.VerdictPass, "fail-closed window"},
	}
	for _, tc := range cases {
		t.Run(tc.failurePolicy, func(t *testing.T) {
			applyPolicy(t, s, tc.failurePolicy, s.publicKey)
			h := testharness.New(t, cluster)
			before := kyvernoPods(t)

			run := h.Run(h.Drill(fmt.Sprintf(killKyvernoDrill, probeNS, s.unsigned, kyvernoDenial, realstack.KyvernoWebhooks)))

			st := run.Status
			story := testharness.Story(st)
			t.Logf("verdict %s RTO %s: %s", st.Verdict, st.RTO, story)
			if st.Verdict != tc.wantVerdict || !strings.Contains(story, tc.want) {
				t.Fatalf("verdict %s, want %s with %q", st.Verdict, tc.wantVerdict, tc.want)
			}
			if got := testharness.Milestones(st); got != "pods-ready,workloads-ready,admission-enforcing" {
				t.Errorf("milestones %q", got)
			}
			if len(st.Journal) != 1 || st.Journal[0].State != v1alpha1.JournalReverted {
				t.Errorf("journal %s", localcluster.JSON(st.Journal))
			}
			for _, n := range kyvernoPods(t) {
				if slices.Contains(before, n) {
					t.Errorf("Kyverno pod %s survived the kill", n)
				}
			}
		})
	}
}

func kyvernoPods(t *testing.T) []string {
	t.Helper()
	return controllerPods(t, realstack.KyvernoNamespace, "app.kubernetes.io/component=admission-controller")
}

// controllerPods names the pods matching selector in ns that are not
// being deleted; there must be some.
func controllerPods(t *testing.T, ns, selector string) []string {
	t.Helper()
	pods, err := cluster.Kube.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			names = append(names, p.Name)
		}
	}
	if len(names) == 0 {
		t.Fatalf("no pods matching %s in %s", selector, ns)
	}
	return names
}

// kyvernoDownRules alert when no Kyverno admission controller is scraped
// up: the local cluster's Prometheus finds the pods by their annotations.
const kyvernoDownRules = `groups:
  - name: kyverno
    rules:
      - alert: KyvernoAdmissionDown
        expr: absent(up{job="kyverno-admission"} == 1)
        labels: {severity: page, namespace: kyverno}
      - alert: KyvernoNeverFires
        expr: absent(up{job="kyverno-admission"} == 1) and vector(1) == 2
        labels: {severity: page, namespace: kyverno}
`

// TestKillKyvernoIsDetected: Kyverno's pods killed for real, with a real
// Prometheus scraping them and a real Alertmanager. The runbook's "verify:
// alerts sent": an expected alert that fires while Kyverno is down PASSes
// with its time to detect (Alertmanager's startsAt, after the disaster) and
// resolves after recovery; the same drill expecting an alert whose rule
// never fires FAILs naming it.
func TestKillKyvernoIsDetected(t *testing.T) {
	s := kyverno(t)
	mon, err := cluster.StartMonitoring(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := mon.SetRules(context.Background(), "kyverno", []byte(kyvernoDownRules)); err != nil {
		t.Fatal(err)
	}
	am, err := alerts.NewAlertmanager(mon.AlertmanagerURL, "")
	if err != nil {
		t.Fatal(err)
	}
	prom := mon.PrometheusURL + `/api/v1/query?query=up{job="kyverno-admission"}==1`
	pollUntil(t, "Prometheus scrapes Kyverno's admission controller", 2*time.Minute, func() (bool, error) {
		body, err := httpGet(prom)
		return strings.Contains(body, `"job":"kyverno-admission"`), err
	})
	// Until the first scrape the rule fired (nothing was up yet); the drill
	// rightly refuses to start while its expected alert is already active
	// (seen once: INCONCLUSIVE "already active before the fault"), so wait
	// for Alertmanager to have it resolved.
	pollUntil(t, "KyvernoAdmissionDown resolved in Alertmanager", 2*time.Minute, func() (bool, error) {
		active, err := am.Active(context.Background())
		for _, a := range active {
			if a.Name == "KyvernoAdmissionDown" {
				return false, err
			}
		}
		return err == nil, err
	})
	applyPolicy(t, s, "Fail", s.publicKey)
	for _, tc := range []struct {
		name, expect string
		verdict      v1alpha1.Verdict
		reason       string
	}{
		{"detected", "KyvernoAdmissionDown", v1alpha1.VerdictPass, "alert KyvernoAdmissionDown{namespace=\"kyverno\"} detected in "},
		{"never detected", "KyvernoNeverFires", v1alpha1.VerdictFail, "alert KyvernoNeverFires{namespace=\"kyverno\"} not firing within 1m0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testharness.New(t, cluster)
			h.Alerts, h.AlertPoll = am, time.Second
			doc := fmt.Sprintf(killKyvernoDrill, probeNS, s.unsigned, kyvernoDenial, realstack.KyvernoWebhooks) +
				"  alerts:\n    expect:\n      - {name: " + tc.expect + ", matchers: '{namespace=\"kyverno\"}', within: 1m, resolveWithin: 2m}\n"
			run := h.Run(h.Drill(doc))
			st := run.Status
			t.Logf("verdict %s RTO %s: %s; detections %s", st.Verdict, st.RTO, st.Reason, localcluster.JSON(st.Detections))
			if st.Verdict != tc.verdict || !strings.Contains(st.Reason, tc.reason) {
				t.Fatalf("verdict %s %q, want %s with %q", st.Verdict, st.Reason, tc.verdict, tc.reason)
			}
			if tc.verdict != v1alpha1.VerdictPass {
				return
			}
			d := st.Detections[0]
			if d.FiredAt == nil || d.FiredAt.Before(st.DisasterAt) || d.ResolvedAt == nil || d.ResolvedAt.Before(st.RecoveredAt) {
				t.Errorf("detection %s: fired before the disaster (%s) or not resolved after recovery (%s)", localcluster.JSON(d), st.DisasterAt, st.RecoveredAt)
			}
			if rto, _ := time.ParseDuration(st.RTO); rto > 0 && d.FiredAt.Sub(st.DisasterAt.Time) > rto {
				t.Errorf("detected %s after the disaster, after recovery (RTO %s)", d.Detection, st.RTO)
			}
		})
	}
}

func httpGet(url string) (string, error) {
	resp, err := http.Get(url) //nolint:gosec // the local cluster's Prometheus
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func pollUntil(t *testing.T, what string, timeout time.Duration, cond func() (bool, error)) {
	t.Helper()
	var last error
	if err := wait.PollUntilContextTimeout(context.Background(), time.Second, timeout, true, func(context.Context) (bool, error) {
		ok, err := cond()
		last = err
		return ok, nil
	}); err != nil {
		t.Fatalf("%s: not within %s (last error: %v)", what, timeout, last)
	}
}
