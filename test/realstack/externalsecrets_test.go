package realstack_test

// block-key-vault against the real External Secrets Operator: ESO runs on
// the real node from its chart and syncs ExternalSecrets through its
// webhook provider from a backend this test serves on the node's address
// (standing in for Azure Key Vault: one HTTP GET per secret). The drill's
// NetworkPolicy is enforced by the node's kube-router, so the fault is
// real: ESO's requests to the backend are dropped, it reports
// SecretSyncedError, and re-syncs once the policy is gone.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/test/localcluster"
	"github.com/drillbot-io/drillbot/test/realstack"
	"github.com/drillbot-io/drillbot/test/testharness"
)

// keyVault is the secrets backend: GET /secrets/NAME answers
// {"value": ...}; down makes it answer 503 (the backend itself failing).
// With keepAlive false it closes each connection after its answer, so
// every sync opens a new one (as when ESO's refreshInterval is longer than
// its HTTP client's idle timeout, the usual case for Key Vault).
type keyVault struct {
	url   string
	down  atomic.Bool
	calls atomic.Int64
	srv   *http.Server
}

func serveKeyVault(t *testing.T, secrets map[string]string, keepAlive bool) *keyVault {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(localcluster.NodeIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	kv := &keyVault{url: "http://" + ln.Addr().String()}
	kv.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kv.calls.Add(1)
		if kv.down.Load() {
			http.Error(w, "key vault unavailable", http.StatusServiceUnavailable)
			return
		}
		v, ok := secrets[strings.TrimPrefix(r.URL.Path, "/secrets/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"value": v})
	})}
	kv.srv.SetKeepAlivesEnabled(keepAlive)
	go func() { _ = kv.srv.Serve(ln) }()
	t.Cleanup(func() { _ = kv.srv.Close() })
	return kv
}

var (
	esoOnce sync.Once
	esoErr  error
)

func externalSecrets(t *testing.T) {
	t.Helper()
	localcluster.Require(t, cluster)
	esoOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
		defer cancel()
		p, err := realstack.PathsFromEnv()
		if esoErr = err; err != nil {
			return
		}
		if esoErr = realstack.InstallExternalSecrets(ctx, cluster, p); esoErr != nil {
			return
		}
		esoErr = labelNamespace(ctx, realstack.ESONamespace, map[string]string{v1alpha1.LabelAllowDisaster: "true"})
	})
	if esoErr != nil {
		t.Fatal(esoErr)
	}
}

var (
	secretStores    = schema.GroupVersionResource{Group: "external-secrets.io", Version: "v1", Resource: "secretstores"}
	externalSecretR = schema.GroupVersionResource{Group: "external-secrets.io", Version: "v1", Resource: "externalsecrets"}
)

const keyVaultStore = `apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {name: key-vault}
spec:
  provider:
    webhook:
      url: "%s/secrets/{{ .remoteRef.key }}"
      result: {jsonPath: "$.value"}
      timeout: 5s
`

const externalSecret = `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: %s}
spec:
  refreshInterval: 2s
  secretStoreRef: {name: key-vault, kind: SecretStore}
  target: {name: %s}
  data:
  - secretKey: value
    remoteRef: {key: %s}
`

func create(t *testing.T, gvr schema.GroupVersionResource, ns, doc string) {
	t.Helper()
	var u unstructured.Unstructured
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.Dynamic.Resource(gvr).Namespace(ns).Create(context.Background(), &u, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// appNamespace creates a namespace with the key-vault store and one
// ExternalSecret per secret, and waits until ESO has synced them all.
func appNamespace(t *testing.T, kv *keyVault, names ...string) string {
	t.Helper()
	ns := "apps-" + localcluster.RandomSuffix()
	testharness.Namespace(t, cluster, ns, nil)
	create(t, secretStores, ns, fmt.Sprintf(keyVaultStore, kv.url))
	for _, n := range names {
		create(t, externalSecretR, ns, fmt.Sprintf(externalSecret, n, n, n))
	}
	err := wait.PollUntilContextTimeout(context.Background(), time.Second, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, n := range names {
			es, err := cluster.Dynamic.Resource(externalSecretR).Namespace(ns).Get(ctx, n, metav1.GetOptions{})
			if err != nil || !ready(es) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("ExternalSecrets in %s not synced by ESO: %v", ns, err)
	}
	return ns
}

const blockKeyVaultDrill = `apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata: {name: block-key-vault}
spec:
  scenario: block-secrets-backend
  objectives: {rto: 15m}
  timeouts: {recover: %s}
  target:
    namespace: external-secrets
    selector: {app.kubernetes.io/name: external-secrets}
  params:
    externalSecrets: [%s/db-password, %s/api-token]
    detectionWindow: %s
`

// keyVaultCase is one run of block-key-vault against real ESO.
type keyVaultCase struct {
	name         string
	keepAlive    bool
	backendDown  bool
	recover      string
	window       string
	wantVerdict  v1alpha1.Verdict
	wantInReason string
}

// TestBlockKeyVault: kube-router enforces the drill's policy, so ESO
// really cannot reach the backend (SecretSyncedError), the Secrets survive
// unchanged, and ESO re-syncs once the policy is gone: PASS. With the
// backend itself failing during the block (the policy not the cause of the
// lasting outage), no re-sync comes: FAIL at the recover timeout, the
// policy removed all the same. With a keep-alive connection open before
// the block, ESO keeps syncing through it (kube-router, like Calico,
// lets established connections through): the fault has no effect, and the
// drill says INCONCLUSIVE, naming that cause. Under Calico the first and
// the last cases run, with the same verdicts (Calico drops, kube-router
// refuses; both let an established connection through).
func TestBlockKeyVault(t *testing.T) {
	externalSecrets(t)
	secrets := map[string]string{"db-password": "s3cr3t-db", "api-token": "tok-123"}
	cases := []keyVaultCase{
		{name: "ESO cut off by the enforced policy, then re-syncs", recover: "3m", window: "1m", wantVerdict: v1alpha1.VerdictPass},
		{name: "backend down meanwhile: no re-sync", backendDown: true, recover: "20s", window: "1m", wantVerdict: v1alpha1.VerdictFail, wantInReason: "timed out"},
		{name: "established keep-alive connection survives the policy", keepAlive: true, recover: "1m", window: "20s",
			wantVerdict: v1alpha1.VerdictInconclusive, wantInReason: "kept a connection to the backend"},
	}
	if cluster.Calico() {
		// Under Calico: the PASS, and what it does to a kept-alive
		// connection (the backend failing meanwhile is the drill's own
		// logic, the same under any enforcer).
		cases = []keyVaultCase{cases[0], cases[2]}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kv := serveKeyVault(t, secrets, tc.keepAlive)
			ns := appNamespace(t, kv, "db-password", "api-token")
			before := secretData(t, ns, "db-password")
			h := testharness.New(t, cluster)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.backendDown {
				// The backend fails from the moment the block is in place.
				go func() {
					_ = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
						_, err := cluster.Kube.NetworkingV1().NetworkPolicies(realstack.ESONamespace).Get(ctx, "drillbot-block-egress", metav1.GetOptions{})
						return err == nil, nil
					})
					kv.down.Store(true)
				}()
			}

			run := h.Run(h.Drill(fmt.Sprintf(blockKeyVaultDrill, tc.recover, ns, ns, tc.window)))

			st := run.Status
			story := testharness.Story(st)
			t.Logf("verdict %s RTO %s: %s", st.Verdict, st.RTO, story)
			if st.Verdict != tc.wantVerdict || !strings.Contains(st.Reason, tc.wantInReason) {
				t.Fatalf("verdict %s %q, want %s with %q", st.Verdict, st.Reason, tc.wantVerdict, tc.wantInReason)
			}
			if len(st.Journal) != 1 || st.Journal[0].State != v1alpha1.JournalReverted {
				t.Errorf("journal %s", localcluster.JSON(st.Journal))
			}
			if _, err := cluster.Kube.NetworkingV1().NetworkPolicies(realstack.ESONamespace).Get(context.Background(), "drillbot-block-egress", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("the drill's NetworkPolicy is still there: %v", err)
			}
			if after := secretData(t, ns, "db-password"); after != before {
				t.Errorf("Secret changed: %q -> %q", before, after)
			}
			if tc.wantVerdict != v1alpha1.VerdictPass {
				return
			}
			if got := testharness.Milestones(st); got != "sync-failing,unblocked,synced" {
				t.Errorf("milestones %q", got)
			}
		})
	}
}

func secretData(t *testing.T, ns, name string) string {
	t.Helper()
	s, err := cluster.Kube.CoreV1().Secrets(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return string(s.Data["value"])
}

var _ = corev1.SecretTypeOpaque

// TestKillExternalSecrets: the catalog's kill-external-secrets (the
// runbook's ESO row) against the real controller: its pods are killed, the
// Deployment brings new ones, and the ExternalSecrets the drill names are
// still there and Ready: PASS, RTO measured.
func TestKillExternalSecrets(t *testing.T) {
	externalSecrets(t)
	kv := serveKeyVault(t, map[string]string{"db-password": "s3cr3t-db", "api-token": "tok-123"}, false)
	ns := appNamespace(t, kv, "db-password", "api-token")
	doc, err := os.ReadFile("../../drills/kill-external-secrets.yaml")
	if err != nil {
		t.Fatal(err)
	}
	h := testharness.New(t, cluster)
	before := controllerPods(t, realstack.ESONamespace, "app.kubernetes.io/name=external-secrets")
	run := h.Run(h.Drill(strings.Replace(string(doc), "namespace: payments", "namespace: "+ns, 1)))
	st := run.Status
	t.Logf("verdict %s RTO %s: %s", st.Verdict, st.RTO, st.Reason)
	if st.Verdict != v1alpha1.VerdictPass || st.RTO == "" {
		t.Fatalf("verdict %s %q, want PASS with an RTO", st.Verdict, st.Reason)
	}
	for _, p := range controllerPods(t, realstack.ESONamespace, "app.kubernetes.io/name=external-secrets") {
		if slices.Contains(before, p) {
			t.Errorf("ESO pod %s survived the kill", p)
		}
	}
	if got := secretData(t, ns, "db-password"); got != "s3cr3t-db" {
		t.Errorf("db-password after the drill: %q", got)
	}
}
