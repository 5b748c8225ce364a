package encryptionatrest_test

// Integration tests: the encryption-at-rest check against two real local
// control planes: one whose API server encrypts Secrets (aescbc, an
// EncryptionConfiguration), and the package's cluster, which has none.
// Both ways: the API server's counters, and etcd's raw key. Only the raw
// key can PASS. The local API server advertises an address nothing dials
// (192.0.2.1), so through drillbot's wiring its own /metrics cannot be
// read and the counters are INCONCLUSIVE; TestEachAPIServer reads them at
// its loopback address instead.

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/scenarios/encryptionatrest"
	"github.com/drillbot-io/drillbot/test/localcluster"
	"github.com/drillbot-io/drillbot/test/testharness"
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
		{"encrypted, from the counters", encrypted, false, v1alpha1.VerdictInconclusive, "the API servers' counters could not be read on each of them"},
		{"encrypted, from etcd", encrypted, true, v1alpha1.VerdictPass, "etcd holds the canary encrypted (k8s:enc:aescbc:...), at revision "},
		{"no EncryptionConfiguration, from the counters", cluster, false, v1alpha1.VerdictInconclusive, "read API server 192.0.2.1:"},
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

// loopback reads the local API server's own /metrics at the address it
// listens on, for the endpoint it advertises.
type loopback struct {
	c *localcluster.Cluster
}

func (l loopback) Metrics(ctx context.Context, endpoint string) ([]byte, error) {
	_, port, err := net.SplitHostPort(endpoint)
	if err != nil {
		return nil, err
	}
	return encryptionatrest.RESTMetrics{Config: l.c.REST}.Metrics(ctx, net.JoinHostPort(l.c.Host(), port))
}

// TestEachAPIServer: the counters read on the (one) API server the
// kubernetes Service lists: encrypting writes are no PASS; none counted is
// a FAIL.
func TestEachAPIServer(t *testing.T) {
	localcluster.Require(t, cluster)
	encrypted := localcluster.Another(t, localcluster.Config{EncryptSecrets: true, NoBackups: true})
	for _, tc := range []struct {
		name                  string
		c                     *localcluster.Cluster
		fail, finding, inconc string
	}{
		{name: "encrypted", c: encrypted, finding: "with k8s:enc:aescbc:v1:)", inconc: "count every writer's Secrets, not the canary's stored bytes"},
		{name: "no EncryptionConfiguration", c: cluster, fail: "none of the 1 API servers the kubernetes Service lists"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			def := testharness.New(t, tc.c).Drill(checkDrill(tc.c, false)) // New: drillbot's namespace exists
			sc, err := encryptionatrest.Kind{Deps: encryptionatrest.Deps{Kube: tc.c.Kube, Metrics: loopback{tc.c}}}.New(def, "each-api-server")
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := sc.Preflight(ctx); err != nil {
				t.Fatal(err)
			}
			if err := sc.Recover(ctx, noMarks{}); err != nil {
				t.Fatal(err)
			}
			v, err := sc.Verify(ctx)
			if err != nil {
				t.Fatal(err)
			}
			fails, finds := strings.Join(v.Failures, "\n"), strings.Join(v.Findings, "\n")
			t.Logf("failures %q, findings %q, inconclusive %q", fails, finds, v.Inconclusive)
			if (tc.fail == "") != (fails == "") || !strings.Contains(fails, tc.fail) || !strings.Contains(finds, tc.finding) ||
				(tc.inconc == "") != (v.Inconclusive == "") || !strings.Contains(v.Inconclusive, tc.inconc) {
				t.Errorf("want failure %q, finding %q, inconclusive %q", tc.fail, tc.finding, tc.inconc)
			}
		})
	}
}

type noMarks struct{}

func (noMarks) Mark(string) {}
