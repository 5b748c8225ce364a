package encryptionatrest_test

// Integration tests: the encryption-at-rest check against two real local
// control planes: one whose API server encrypts Secrets (aescbc, an
// EncryptionConfiguration), and the package's cluster, which has none.
// Both ways: the API server's counters, and etcd's raw key.

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/localcluster"
	"github.com/drillbot-io/drillbot/internal/scenarios/encryptionatrest"
	"github.com/drillbot-io/drillbot/internal/testharness"
)

var cluster *localcluster.Cluster

func TestMain(m *testing.M) { os.Exit(localcluster.RunTests(m, &cluster)) }

func checkDrill(c *localcluster.Cluster, withEtcd bool) string {
	etcd := ""
	if withEtcd {
		etcd = fmt.Sprintf(", etcd: {endpoints: [%q]}", c.EtcdURL)
	}
	return fmt.Sprintf(`apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata: {name: encryption}
spec:
  scenario: encryption-at-rest
  objectives: {rto: 1m}
  params: {canaryNamespace: %s%s}
`, testharness.RunNamespace, etcd)
}

func TestEncryptionAtRest(t *testing.T) {
	localcluster.Require(t, cluster)
	encrypted := localcluster.Another(t, localcluster.Config{EncryptSecrets: true, NoBackups: true})
	for _, tc := range []struct {
		name    string
		c       *localcluster.Cluster
		etcd    bool
		verdict v1alpha1.Verdict
		want    string
	}{
		{"encrypted, from the counters", encrypted, false, v1alpha1.VerdictPass, "encrypted the canary's write with k8s:enc:aescbc:v1:"},
		{"encrypted, from etcd", encrypted, true, v1alpha1.VerdictPass, "etcd holds the canary encrypted (k8s:enc:aescbc:...)"},
		{"no EncryptionConfiguration, from the counters", cluster, false, v1alpha1.VerdictFail, "Secrets are not encrypted at rest"},
		{"no EncryptionConfiguration, from etcd", cluster, true, v1alpha1.VerdictFail, "etcd holds the canary Secret in plaintext"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testharness.New(t, tc.c)
			run := h.Run(h.Drill(checkDrill(tc.c, tc.etcd)))
			all := run.Status.Reason + "\n" + strings.Join(run.Status.Findings, "\n")
			if run.Status.Verdict != tc.verdict || !strings.Contains(all, tc.want) {
				t.Fatalf("verdict %s: %s (findings %q), want %s with %q", run.Status.Verdict, run.Status.Reason, run.Status.Findings, tc.verdict, tc.want)
			}
			// Its only writes: the canary, in drillbot's namespace, gone after.
			for _, w := range h.TargetWrites() {
				if !strings.Contains(w, "/namespaces/"+testharness.RunNamespace+"/secrets") {
					t.Errorf("the check wrote %s", w)
				}
			}
			if _, err := tc.c.Kube.CoreV1().Secrets(testharness.RunNamespace).Get(context.Background(), encryptionatrest.CanaryName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("the canary is still there (%v)", err)
			}
		})
	}
}
