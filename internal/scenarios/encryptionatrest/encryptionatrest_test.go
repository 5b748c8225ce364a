package encryptionatrest

import (
	"errors"
	"strings"
	"testing"
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
}

func TestJudge(t *testing.T) {
	enc := map[string]float64{"k8s:enc:aescbc:v1:key1:": 1}
	cases := []struct {
		name                  string
		delta                 map[string]float64
		metricsErr            error
		etcd                  bool
		raw                   []byte
		etcdErr               error
		fail, finding, inconc string
	}{
		{name: "counters show encryption", delta: enc, finding: "encrypted the canary's write with k8s:enc:aescbc:v1:key1:"},
		{name: "no transformation counted", delta: map[string]float64{}, fail: "Secrets are not encrypted at rest (no EncryptionConfiguration), or another API server"},
		{name: "identity first", delta: map[string]float64{"identity": 1}, fail: "the identity provider (no encryption)"},
		{name: "counters unreadable, no etcd", metricsErr: errors.New("forbidden"), inconc: "neither"},
		{name: "etcd proves it", delta: map[string]float64{}, etcd: true, raw: []byte("k8s:enc:secretbox:v1:key1:\x00\x01"), finding: "etcd holds the canary encrypted (k8s:enc:secretbox:...)"},
		{name: "etcd shows plaintext", delta: map[string]float64{}, etcd: true, raw: []byte("k8s\x00\n\x0c\n\x02v1"), fail: `etcd holds the canary Secret in plaintext (its value starts "k8s...`},
		{name: "etcd unreadable, counters decide", delta: enc, etcd: true, etcdErr: errors.New("connection refused"), finding: "etcd not read: connection refused"},
		{name: "nothing readable", metricsErr: errors.New("forbidden"), etcd: true, etcdErr: errors.New("refused"), inconc: "neither"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := Judge(tc.delta, tc.metricsErr, tc.etcd, tc.raw, tc.etcdErr)
			fails, finds := strings.Join(v.Failures, "\n"), strings.Join(v.Findings, "\n")
			if tc.fail == "" && fails != "" {
				t.Errorf("failures %q", fails)
			}
			if tc.fail != "" && !strings.Contains(fails, tc.fail) {
				t.Errorf("failures %q, want %q", fails, tc.fail)
			}
			if tc.finding != "" && !strings.Contains(finds, tc.finding) {
				t.Errorf("findings %q, want %q", finds, tc.finding)
			}
			if !strings.Contains(v.Inconclusive, tc.inconc) || (tc.inconc == "" && v.Inconclusive != "") {
				t.Errorf("inconclusive %q, want %q", v.Inconclusive, tc.inconc)
			}
		})
	}
}
