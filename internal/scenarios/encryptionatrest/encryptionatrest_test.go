package encryptionatrest

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
)

func TestParseTransformations(t *testing.T) {
	body := `# HELP apiserver_storage_transformation_operations_total [ALPHA] Total number of transformations.
# TYPE apiserver_storage_transformation_operations_total counter
apiserver_storage_transformation_operations_total{resource="secrets",status="OK",transformation_type="to_storage",transformer_prefix="k8s:enc:aescbc:v1:key1:"} 7
apiserver_storage_transformation_operations_total{resource="secrets",status="OK",transformation_type="from_storage",transformer_prefix="k8s:enc:aescbc:v1:key1:"} 9
apiserver_storage_transformation_operations_total{resource="secrets",status="Unknown",transformation_type="to_storage",transformer_prefix="k8s:enc:aescbc:v1:key1:"} 1
apiserver_storage_transformation_operations_total{resource="configmaps",status="OK",transformation_type="to_storage",transformer_prefix="identity"} 4
`
	got, err := parseTransformations([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["k8s:enc:aescbc:v1:key1:"] != 7 {
		t.Errorf("transformations %v, want only the Secrets' successful to_storage ones", got)
	}
	if got, err := parseTransformations([]byte("# no such metric\nup 1\n")); err != nil || len(got) != 0 {
		t.Errorf("without the metric: %v %v", got, err)
	}
	// An API server whose counters do not name the resource: a Secret's
	// transformation cannot be told from a ConfigMap's.
	old := `apiserver_storage_transformation_operations_total{status="OK",transformation_type="to_storage",transformer_prefix="k8s:enc:aescbc:v1:key1:"} 7` + "\n"
	if _, err := parseTransformations([]byte(old)); err == nil || !strings.Contains(err.Error(), "no resource label") {
		t.Errorf("without the resource label: %v", err)
	}
}

const aescbc = "k8s:enc:aescbc:v1:key1:"

func servers(deltas ...map[string]float64) Counters {
	var c Counters
	for i, d := range deltas {
		c.Servers = append(c.Servers, ServerDelta{Endpoint: fmt.Sprintf("10.0.0.%d:6443", i+1), Delta: d})
	}
	return c
}

func TestJudge(t *testing.T) {
	enc := map[string]float64{aescbc: 1}
	none := map[string]float64{}
	encrypted := []byte("k8s:enc:secretbox:v1:key1:\x00\x01")
	plaintext := []byte("k8s\x00\n\x0c\n\x02v1\x12\x06Secret canary 0123abcd")
	cases := []struct {
		name                  string
		ev                    Evidence
		fail, finding, inconc string
	}{
		// The counters alone never PASS: they count every writer's Secrets.
		{name: "counters show encryption on every API server", ev: Evidence{Counters: servers(enc, none)},
			finding: "the 2 API servers the kubernetes Service lists counted encrypting Secret writes during the run (10.0.0.1:6443: 1 with k8s:enc:aescbc:v1:key1:)",
			inconc:  "count every writer's Secrets, not the canary's stored bytes"},
		// What a real API server with aescbc counts for one write (seen on
		// kube-apiserver v1.34): the provider's prefix, and its key's
		// inner prefix as a series of its own. The key is no plaintext.
		{name: "a real aescbc write: the provider and its key", ev: Evidence{Counters: servers(map[string]float64{"k8s:enc:aescbc:v1:": 1, "key1:": 1})},
			finding: "1 with k8s:enc:aescbc:v1:", inconc: "count every writer's Secrets, not the canary's stored bytes"},
		{name: "no transformation counted on any API server", ev: Evidence{Counters: servers(none, none)},
			fail: "none of the 2 API servers the kubernetes Service lists (10.0.0.1:6443, 10.0.0.2:6443) counted a transformation of the canary's write: Secrets are not encrypted at rest"},
		{name: "identity on one API server", ev: Evidence{Counters: servers(none, map[string]float64{"identity": 1})},
			fail: "API server 10.0.0.2:6443 stored Secrets without encryption during the run (1 with the identity provider (no encryption)"},
		// The adversary: another writer's encrypted Secret on one API
		// server, a plaintext one (the canary's, maybe) on another.
		{name: "an identity write in the same window as an encrypting one", ev: Evidence{Counters: servers(enc, map[string]float64{"": 1})},
			fail: "API server 10.0.0.2:6443 stored Secrets without encryption"},
		{name: "counters unreadable, no etcd", ev: Evidence{Counters: Counters{Err: errors.New("forbidden")}},
			finding: "API server counters not tied to the canary's write: forbidden", inconc: "could not be read on each of them"},
		{name: "etcd proves it", ev: Evidence{Counters: servers(enc), Etcd: true, Raw: encrypted, RawRevision: 42, Written: "42"},
			finding: "etcd holds the canary encrypted (k8s:enc:secretbox:...), at revision 42: the canary's write"},
		{name: "etcd proves it, counters unreadable", ev: Evidence{Counters: Counters{Err: errors.New("forbidden")}, Etcd: true, Raw: encrypted, RawRevision: 42, Written: "42"},
			finding: "etcd holds the canary encrypted"},
		{name: "etcd encrypted, but another API server stores plaintext", ev: Evidence{Counters: servers(enc, map[string]float64{"identity": 2}), Etcd: true, Raw: encrypted, RawRevision: 42, Written: "42"},
			fail: "API server 10.0.0.2:6443 stored Secrets without encryption during the run (2 with the identity provider"},
		{name: "etcd encrypted, no listed API server counted it", ev: Evidence{Counters: servers(none), Etcd: true, Raw: encrypted, RawRevision: 42, Written: "42"},
			finding: "the API server that encrypted the canary is not among those the kubernetes Service lists"},
		{name: "etcd's key is another write", ev: Evidence{Counters: servers(enc), Etcd: true, Raw: encrypted, RawRevision: 57, Written: "42"},
			finding: `but at revision 57, not the canary's write (resourceVersion "42")`, inconc: "not the canary's write"},
		{name: "etcd shows the canary in plaintext", ev: Evidence{Counters: servers(none), Etcd: true, Raw: plaintext, RawRevision: 42, Written: "42", Marker: "0123abcd"},
			fail: `etcd holds the canary Secret in plaintext (its value starts "k8s...`},
		{name: "etcd shows plaintext that is not the canary", ev: Evidence{Counters: servers(enc), Etcd: true, Raw: plaintext, RawRevision: 42, Written: "42", Marker: "ffff0000"},
			finding: "does not hold the canary's data", inconc: "not the canary's write"},
		{name: "etcd unreadable, counters encrypting", ev: Evidence{Counters: servers(enc), Etcd: true, EtcdErr: errors.New("connection refused")},
			finding: "etcd not read: connection refused", inconc: "only the canary's stored bytes prove it encrypted"},
		{name: "nothing readable", ev: Evidence{Counters: Counters{Err: errors.New("forbidden")}, Etcd: true, EtcdErr: errors.New("refused")}, inconc: "could not be read"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkVerification(t, Judge(tc.ev), tc.fail, tc.finding, tc.inconc)
		})
	}
}

func checkVerification(t *testing.T, v engine.Verification, fail, finding, inconc string) {
	t.Helper()
	fails, finds := strings.Join(v.Failures, "\n"), strings.Join(v.Findings, "\n")
	if fail == "" && fails != "" {
		t.Errorf("failures %q", fails)
	}
	if fail != "" && !strings.Contains(fails, fail) {
		t.Errorf("failures %q, want %q", fails, fail)
	}
	if finding != "" && !strings.Contains(finds, finding) {
		t.Errorf("findings %q, want %q", finds, finding)
	}
	if !strings.Contains(v.Inconclusive, inconc) || (inconc == "" && v.Inconclusive != "") {
		t.Errorf("inconclusive %q, want %q", v.Inconclusive, inconc)
	}
}

// metricsBody is an API server's /metrics with these Secret to_storage counts.
func metricsBody(counts map[string]float64) string {
	var b strings.Builder
	b.WriteString("# TYPE apiserver_storage_transformation_operations_total counter\n")
	for prefix, n := range counts {
		fmt.Fprintf(&b, "apiserver_storage_transformation_operations_total{resource=%q,status=\"OK\",transformation_type=\"to_storage\",transformer_prefix=%q} %g\n", "secrets", prefix, n)
	}
	return b.String()
}

// fakeMetrics answers each endpoint's /metrics reads in turn ("" is an error).
type fakeMetrics map[string][]string

func (f fakeMetrics) Metrics(_ context.Context, endpoint string) ([]byte, error) {
	bodies := f[endpoint]
	if len(bodies) == 0 || bodies[0] == "" {
		return nil, fmt.Errorf("dial tcp %s: i/o timeout", endpoint)
	}
	f[endpoint] = bodies[1:]
	return []byte(bodies[0]), nil
}

func apiServers(addrs ...string) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: "kubernetes"}},
		AddressType: discoveryv1.AddressTypeIPv4, Ports: []discoveryv1.EndpointPort{{Name: ptr.To("https"), Port: ptr.To[int32](6443)}}}
	for _, a := range addrs {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{a}})
	}
	return s
}

// TestCounters runs the check's Recover on fakes: two API servers, each
// read at its own endpoint, and a canary write between.
func TestCounters(t *testing.T) {
	c := func(n float64) string { return metricsBody(map[string]float64{aescbc: 100 + n}) }
	cases := []struct {
		name                  string
		metrics               fakeMetrics
		slices                [][]string // the API servers listed at each list; default both, always
		fail, finding, inconc string
	}{
		// The adversary: through the Service, one /metrics would have
		// shown 10.0.0.1's count move (another writer's Secret), while
		// 10.0.0.2 stored the canary in plaintext.
		{name: "another writer's encrypted Secret on one API server, the canary in plaintext on the other",
			metrics: fakeMetrics{"10.0.0.1:6443": {c(0), c(1)}, "10.0.0.2:6443": {metricsBody(map[string]float64{"identity": 3}), metricsBody(map[string]float64{"identity": 4})}},
			fail:    "API server 10.0.0.2:6443 stored Secrets without encryption during the run (1 with the identity provider (no encryption)"},
		{name: "every API server encrypting", metrics: fakeMetrics{"10.0.0.1:6443": {c(0), c(0)}, "10.0.0.2:6443": {c(5), c(6)}},
			finding: "10.0.0.2:6443: 1 with k8s:enc:aescbc:v1:key1:", inconc: "count every writer's Secrets"},
		{name: "an API server's own /metrics unreadable", metrics: fakeMetrics{"10.0.0.1:6443": {c(0), c(1)}, "10.0.0.2:6443": {c(0), ""}},
			finding: "read API server 10.0.0.2:6443's own /metrics: dial tcp 10.0.0.2:6443: i/o timeout", inconc: "could not be read on each of them"},
		{name: "an API server restarted during the write", metrics: fakeMetrics{"10.0.0.1:6443": {c(0), c(1)}, "10.0.0.2:6443": {c(9), c(0)}},
			finding: "API server 10.0.0.2:6443's counters went back", inconc: "could not be read"},
		{name: "the API servers changed during the write", metrics: fakeMetrics{"10.0.0.1:6443": {c(0), c(1)}, "10.0.0.2:6443": {c(0)}},
			slices:  [][]string{{"10.0.0.1", "10.0.0.2"}, {"10.0.0.1"}},
			finding: "the API servers changed during the canary's write (before: 10.0.0.1:6443, 10.0.0.2:6443; after: 10.0.0.1:6443)", inconc: "could not be read"},
		{name: "no API server listed", metrics: fakeMetrics{}, slices: [][]string{{}, {}},
			finding: "the kubernetes Service's EndpointSlices list no API server", inconc: "could not be read"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lists := tc.slices
			if lists == nil {
				lists = [][]string{{"10.0.0.1", "10.0.0.2"}, {"10.0.0.1", "10.0.0.2"}}
			}
			sc := newCheck(t, fakeKube(t, lists), tc.metrics, "")
			if err := sc.Recover(context.Background(), marks{}); err != nil {
				t.Fatal(err)
			}
			v, _ := sc.Verify(context.Background())
			checkVerification(t, v, tc.fail, tc.finding, tc.inconc)
		})
	}
}

// fakeKube is a clientset holding drillbot's namespace, listing the API
// servers lists[i] at the i-th list, and stamping the canary's write with
// resourceVersion 42.
func fakeKube(t *testing.T, lists [][]string) *fake.Clientset {
	kube := fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "drillbot-system"}})
	n := 0
	kube.PrependReactor("list", "endpointslices", func(k8stesting.Action) (bool, runtime.Object, error) {
		if n >= len(lists) {
			t.Errorf("the API servers listed %d times", n+1)
			return true, nil, errors.New("unexpected list")
		}
		s := apiServers(lists[n]...)
		n++
		return true, &discoveryv1.EndpointSliceList{Items: []discoveryv1.EndpointSlice{*s}}, nil
	})
	kube.PrependReactor("create", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		s := a.(k8stesting.CreateAction).GetObject().(*corev1.Secret).DeepCopy()
		s.ResourceVersion = "42"
		if err := kube.Tracker().Create(corev1.SchemeGroupVersion.WithResource("secrets"), s, s.Namespace); err != nil {
			return true, nil, err
		}
		return true, s, nil
	})
	return kube
}

func newCheck(t *testing.T, kube *fake.Clientset, metrics EndpointMetrics, etcd string) engine.Scenario {
	t.Helper()
	params := `{}`
	if etcd != "" {
		params = fmt.Sprintf(`{"etcd":{"endpoints":[%q]}}`, etcd)
	}
	def := drillDef(params)
	sc, err := Kind{Deps: Deps{Kube: kube, Metrics: metrics}}.New(def, "run-1")
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

type marks struct{}

func (marks) Mark(string) {}

func drillDef(params string) drill.Definition {
	return drill.Definition{Name: "encryption", Spec: v1alpha1.DrillSpec{Scenario: Name, Objectives: v1alpha1.Objectives{RTO: "1m"}, Params: []byte(params)}}
}

// fakeEtcd is etcd's JSON gateway holding the canary's key as stored is
// makes it from the canary Secret the clientset holds, at revision rev.
func fakeEtcd(t *testing.T, kube *fake.Clientset, stored func(*corev1.Secret) []byte, rev string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Key []byte }
		if r.URL.Path != "/v3/kv/range" || json.NewDecoder(r.Body).Decode(&req) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if string(req.Key) != "/registry/secrets/drillbot-system/"+CanaryName {
			t.Errorf("etcd asked for %s", req.Key)
		}
		s, err := kube.CoreV1().Secrets("drillbot-system").Get(r.Context(), CanaryName, metav1.GetOptions{})
		if err != nil {
			_, _ = w.Write([]byte(`{"header":{}}`))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"kvs": []map[string]any{{"key": req.Key, "value": stored(s), "mod_revision": rev}}})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestStoredBytes: only the canary's stored bytes PASS, whatever the
// counters (here unreadable: no endpoint answers).
func TestStoredBytes(t *testing.T) {
	encrypted := func(*corev1.Secret) []byte { return []byte("k8s:enc:aescbc:v1:key1:\x8f\x01\x02") }
	plaintext := func(s *corev1.Secret) []byte {
		return append([]byte("k8s\x00\n\x0c\n\x02v1\x12\x06Secret"), s.Data["canary"]...)
	}
	for _, tc := range []struct {
		name                  string
		stored                func(*corev1.Secret) []byte
		rev                   string
		fail, finding, inconc string
	}{
		{name: "encrypted, the canary's write", stored: encrypted, rev: "42", finding: "etcd holds the canary encrypted (k8s:enc:aescbc:...), at revision 42: the canary's write"},
		{name: "encrypted, another write's", stored: encrypted, rev: "57", inconc: "not the canary's write"},
		{name: "the canary in plaintext", stored: plaintext, rev: "42", fail: "etcd holds the canary Secret in plaintext"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kube := fakeKube(t, [][]string{{"10.0.0.1"}})
			sc := newCheck(t, kube, fakeMetrics{}, fakeEtcd(t, kube, tc.stored, tc.rev))
			if err := sc.Recover(context.Background(), marks{}); err != nil {
				t.Fatal(err)
			}
			v, _ := sc.Verify(context.Background())
			checkVerification(t, v, tc.fail, tc.finding, tc.inconc)
			if tc.fail == "" && tc.inconc == "" && (v.Posture == nil || v.Posture.Compliant != 1) {
				t.Errorf("posture %+v", v.Posture)
			}
			if _, err := kube.CoreV1().Secrets("drillbot-system").Get(context.Background(), CanaryName, metav1.GetOptions{}); err == nil {
				t.Error("the canary is still there")
			}
		})
	}
}

// TestRESTMetrics: each endpoint is read at its own address, with
// drillbot's credentials, and must prove the identity drillbot's
// configured host does (its TLS server name).
func TestRESTMetrics(t *testing.T) {
	var hits [2]int
	var srvs [2]*httptest.Server
	for i := range srvs {
		srvs[i] = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/metrics" || r.Header.Get("Authorization") != "Bearer drillbot-token" {
				http.Error(w, "forbidden", http.StatusForbidden)
				return
			}
			hits[i]++
			_, _ = fmt.Fprintf(w, "server %d\n", i)
		}))
		t.Cleanup(srvs[i].Close)
	}
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvs[0].Certificate().Raw})
	cfg := &rest.Config{Host: srvs[0].URL, BearerToken: "drillbot-token", TLSClientConfig: rest.TLSClientConfig{CAData: ca}}
	m := RESTMetrics{Config: cfg}
	ep1 := strings.TrimPrefix(srvs[1].URL, "https://")
	body, err := m.Metrics(context.Background(), ep1)
	if err != nil || string(body) != "server 1\n" || hits != [2]int{0, 1} {
		t.Fatalf("endpoint %s: %q %v (hits %v), want the second server's own", ep1, body, err, hits)
	}
	// A name the endpoint's certificate does not hold: refused.
	named := rest.CopyConfig(cfg)
	named.TLSClientConfig.ServerName = "apiserver.elsewhere.example"
	if _, err := (RESTMetrics{Config: named}).Metrics(context.Background(), ep1); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("another name: %v, want a certificate error", err)
	}
	anon := rest.AnonymousClientConfig(cfg)
	if _, err := (RESTMetrics{Config: anon}).Metrics(context.Background(), ep1); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("without credentials: %v, want 403", err)
	}
}
