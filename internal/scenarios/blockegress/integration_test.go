package blockegress_test

// Integration tests on the local cluster with the real ExternalSecret API
// (external-secrets.io/v1, installed as a CRD), for what the real stack in
// test/realstack (ESO, kube-router) cannot show: a CNI that enforces
// nothing, Secrets emptied during the outage, and the opt-in refusal. No
// External Secrets controller, Key Vault or CNI runs here, so the test
// plays them: every
// 200ms it syncs each ExternalSecret (Ready, a new refreshTime, the Secret
// written) unless a NetworkPolicy selects the controller's pods and the
// simulated CNI enforces it, in which case the sync fails
// (Ready=False, SecretSyncedError) and the existing Secret is left alone,
// as the controller does.

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/kube"
	"github.com/drillbot-io/drillbot/internal/scenarios/blockegress"
	nr "github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
	"github.com/drillbot-io/drillbot/test/localcluster"
	"github.com/drillbot-io/drillbot/test/testharness"
)

var cluster *localcluster.Cluster

func TestMain(m *testing.M) { os.Exit(localcluster.RunTests(m, &cluster)) }

var esGVR = schema.GroupVersionResource{Group: "external-secrets.io", Version: "v1", Resource: "externalsecrets"}

const blockDrill = `apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata: {name: %s}
spec:
  scenario: block-secrets-backend
  objectives: {rto: 15m}
  timeouts: {recover: %s}
  target:
    namespace: %s
    selector: {app.kubernetes.io/name: external-secrets}
  params:
    externalSecrets: [%s/db-password, %s/api-token]
    detectionWindow: 3s
`

// world is how the simulated cluster behaves.
type world struct {
	enforced    bool // the CNI enforces NetworkPolicies
	wipeOnError bool // a failed sync empties the Secret (a misconfigured deletionPolicy)
}

// secretsStack creates the controller namespace and Deployment, an app
// namespace with two ExternalSecrets, and plays the controller until the
// test ends.
func secretsStack(t *testing.T, ctrlNS, appNS string, w world) {
	t.Helper()
	ctx := context.Background()
	if err := kube.EnsureCRD(ctx, cluster.REST, []byte(testharness.ExternalSecretCRD)); err != nil {
		t.Fatal(err)
	}
	testharness.Namespace(t, cluster, ctrlNS, map[string]string{v1alpha1.LabelAllowDisaster: "true"})
	testharness.Namespace(t, cluster, appNS, nil)
	testharness.Deployment(t, cluster, ctrlNS, "external-secrets", map[string]string{"app.kubernetes.io/name": "external-secrets"}, 1)
	for _, name := range []string{"db-password", "api-token"} {
		es := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
			"metadata": map[string]any{"name": name, "namespace": appNS},
			"spec": map[string]any{"refreshInterval": "1m", "secretStoreRef": map[string]any{"kind": "ClusterSecretStore", "name": "azure-key-vault"},
				"target": map[string]any{"name": name}, "data": []any{map[string]any{"secretKey": "value", "remoteRef": map[string]any{"key": name}}}},
		}}
		if _, err := cluster.Dynamic.Resource(esGVR).Namespace(appNS).Create(ctx, es, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	pctx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	go playController(pctx, t, ctrlNS, appNS, w)
	// Wait for the first sync and the controller's pod.
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := cluster.Kube.CoreV1().Secrets(appNS).Get(ctx, "api-token", metav1.GetOptions{})
		return err == nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := nr.WaitWorkloadsReady(wctx, cluster.Kube, ctrlNS); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // refreshTime has 1s resolution: a re-sync must be visibly newer
}

func playController(ctx context.Context, t *testing.T, ctrlNS, appNS string, w world) {
	_ = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, err := cluster.Kube.NetworkingV1().NetworkPolicies(ctrlNS).Get(ctx, blockegress.PolicyName, metav1.GetOptions{})
		blocked := err == nil && w.enforced
		list, err := cluster.Dynamic.Resource(esGVR).Namespace(appNS).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		for i := range list.Items {
			es := &list.Items[i]
			cond := map[string]any{"type": "Ready", "status": "True", "reason": "SecretSynced", "message": "secret synced"}
			if blocked {
				cond = map[string]any{"type": "Ready", "status": "False", "reason": "SecretSyncedError",
					"message": "could not get secret data from provider: dial tcp: i/o timeout"}
				if w.wipeOnError {
					sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: es.GetName(), Namespace: appNS}}
					if _, err := cluster.Kube.CoreV1().Secrets(appNS).Update(ctx, sec, metav1.UpdateOptions{}); err != nil && ctx.Err() == nil {
						t.Logf("controller player: %v", err)
					}
				}
			} else {
				sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: es.GetName(), Namespace: appNS},
					Data: map[string][]byte{"value": []byte("vault value of " + es.GetName())}}
				if _, err := cluster.Kube.CoreV1().Secrets(appNS).Create(ctx, sec, metav1.CreateOptions{}); err != nil {
					if _, err := cluster.Kube.CoreV1().Secrets(appNS).Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
						continue
					}
				}
				_ = unstructured.SetNestedField(es.Object, time.Now().UTC().Format(time.RFC3339), "status", "refreshTime")
			}
			_ = unstructured.SetNestedSlice(es.Object, []any{cond}, "status", "conditions")
			if _, err := cluster.Dynamic.Resource(esGVR).Namespace(appNS).UpdateStatus(ctx, es, metav1.UpdateOptions{}); err != nil && ctx.Err() == nil {
				t.Logf("controller player: %v", err)
			}
		}
		return false, nil
	})
}

func TestBlockSecretsBackend(t *testing.T) {
	cases := []struct {
		name        string
		world       world
		recover     string
		wantVerdict v1alpha1.Verdict
		wantReason  string
		wantMS      string
	}{
		{name: "CNI without NetworkPolicy enforcement: inconclusive", wantVerdict: v1alpha1.VerdictInconclusive,
			wantReason: "fault had no effect: NetworkPolicy may not be enforced by the cluster's CNI", wantMS: "unblocked,synced"},
		{name: "Secrets emptied during the outage: fail", world: world{enforced: true, wipeOnError: true}, wantVerdict: v1alpha1.VerdictFail,
			wantReason: "Secrets lost or changed during the outage", wantMS: "sync-failing,unblocked,synced"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := testharness.New(t, cluster)
			suffix := fmt.Sprintf("%d-%s", i, localcluster.RandomSuffix())
			ctrlNS, appNS := "eso-"+suffix, "app-"+suffix
			secretsStack(t, ctrlNS, appNS, tc.world)
			recover := cmp.Or(tc.recover, "1m")

			run := h.Run(h.Drill(fmt.Sprintf(blockDrill, ctrlNS, recover, ctrlNS, appNS, appNS)))

			st := run.Status
			if st.Verdict != tc.wantVerdict || !strings.Contains(st.Reason, tc.wantReason) {
				t.Fatalf("verdict %s %q, want %s with %q", st.Verdict, st.Reason, tc.wantVerdict, tc.wantReason)
			}
			if got := testharness.Milestones(st); got != tc.wantMS {
				t.Errorf("milestones %q, want %q", got, tc.wantMS)
			}
			if len(st.Journal) != 1 || st.Journal[0].State != v1alpha1.JournalReverted {
				t.Errorf("journal %s", localcluster.JSON(st.Journal))
			}
			if _, err := cluster.Kube.NetworkingV1().NetworkPolicies(ctrlNS).Get(context.Background(), blockegress.PolicyName, metav1.GetOptions{}); err == nil {
				t.Error("the NetworkPolicy is still there")
			}
			if tc.world.wipeOnError {
				return
			}
			for _, n := range []string{"db-password", "api-token"} {
				s, err := cluster.Kube.CoreV1().Secrets(appNS).Get(context.Background(), n, metav1.GetOptions{})
				if err != nil || string(s.Data["value"]) != "vault value of "+n {
					t.Errorf("secret %s: %v", n, err)
				}
			}
		})
	}
}

func TestBlockEgressRefusesNamespaceWithoutOptIn(t *testing.T) {
	h := testharness.New(t, cluster)
	ns := "eso-noopt-" + localcluster.RandomSuffix()
	testharness.Namespace(t, cluster, ns, nil)

	run := h.Run(h.Drill(fmt.Sprintf(blockDrill, ns, "1m", ns, ns, ns)))

	if run.Status.Verdict != v1alpha1.VerdictFail || !strings.Contains(run.Status.Reason, "not opted in") {
		t.Fatalf("verdict %s %q", run.Status.Verdict, run.Status.Reason)
	}
	if w := h.TargetWrites(); len(w) > 0 {
		t.Errorf("refused drill wrote: %v", w)
	}
}
