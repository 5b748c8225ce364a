// Package encryptionatrest is the encryption-at-rest check: it proves that
// a Secret written now is encrypted by the API server before it reaches
// etcd. drillbot writes a canary Secret in its own namespace (its only
// write) and reads the evidence: the API server's storage-transformation
// counters around the write (no etcd access needed: managed clusters), and,
// when etcd is reachable (an option), the canary's raw key, whose value
// must start with k8s:enc:<provider>:. The canary is deleted after.
package encryptionatrest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/scenarios/check"
)

// Name is the scenario kind.
const Name = "encryption-at-rest"

// CanaryName is the Secret drillbot writes.
const CanaryName = "drillbot-encryption-canary"

// Params are the drill's spec.params.
type Params struct {
	// CanaryNamespace is where the canary Secret is written: drillbot's own
	// namespace (default drillbot-system).
	CanaryNamespace string `json:"canaryNamespace,omitempty"`
	// Etcd, when set, reads the canary's raw key from etcd too.
	Etcd *Etcd `json:"etcd,omitempty"`
}

// Etcd is how to read etcd (its v3 JSON gateway, /v3/kv/range).
type Etcd struct {
	Endpoints []string `json:"endpoints"`
	// Prefix is the API server's --etcd-prefix (default /registry).
	Prefix string `json:"prefix,omitempty"`
	// CAFile, CertFile, KeyFile: TLS to etcd (files mounted into the pod).
	CAFile   string `json:"caFile,omitempty"`
	CertFile string `json:"certFile,omitempty"`
	KeyFile  string `json:"keyFile,omitempty"`
}

func (p *Params) defaults() {
	if p.CanaryNamespace == "" {
		p.CanaryNamespace = "drillbot-system"
	}
	if p.Etcd != nil && p.Etcd.Prefix == "" {
		p.Etcd.Prefix = "/registry"
	}
}

// Deps are what the check needs.
type Deps struct {
	Kube   kubernetes.Interface
	Logger *slog.Logger
}

// Kind is the encryption-at-rest kind: a check.
type Kind struct {
	check.Kind
	Deps Deps
}

var _ engine.Kind = Kind{}

// ValidateParams implements engine.Kind.
func (Kind) ValidateParams(spec v1alpha1.DrillSpec, path *field.Path) field.ErrorList {
	var p Params
	errs := drill.DecodeParams(spec.Params, &p, path)
	if len(errs) > 0 || p.Etcd == nil {
		return errs
	}
	e := path.Child("etcd")
	if len(p.Etcd.Endpoints) == 0 {
		errs = append(errs, field.Required(e.Child("endpoints"), "etcd's client URLs, e.g. https://10.0.0.10:2379"))
	}
	if (p.Etcd.CertFile == "") != (p.Etcd.KeyFile == "") {
		errs = append(errs, field.Invalid(e, "certFile/keyFile", "set both or neither"))
	}
	return errs
}

// New implements engine.Kind.
func (k Kind) New(def drill.Definition, runName string) (engine.Scenario, error) {
	var p Params
	if err := drill.Params(def.Spec, &p); err != nil {
		return nil, err
	}
	p.defaults()
	log := k.Deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &canaryCheck{kube: k.Deps.Kube, params: p, run: runName, log: log.With("scenario", Name, "run", runName)}, nil
}

type canaryCheck struct {
	check.NoFault
	kube   kubernetes.Interface
	params Params
	run    string
	log    *slog.Logger

	// found by Recover
	delta      map[string]float64 // transformer prefix -> to_storage OK ops for secrets during the writes
	metricsErr error
	raw        []byte // the canary's value in etcd
	etcdErr    error
}

// Preflight implements engine.Scenario.
func (c *canaryCheck) Preflight(ctx context.Context) error {
	if _, err := c.kube.CoreV1().Namespaces().Get(ctx, c.params.CanaryNamespace, metav1.GetOptions{}); err != nil {
		return fmt.Errorf("canary namespace %s: %w", c.params.CanaryNamespace, err)
	}
	return nil
}

// Recover implements engine.Scenario: counters, canary writes, counters,
// the raw key, and the canary deleted.
func (c *canaryCheck) Recover(ctx context.Context, m engine.Milestones) error {
	before, err := c.transformations(ctx)
	if err != nil {
		c.metricsErr = err
	}
	secrets := c.kube.CoreV1().Secrets(c.params.CanaryNamespace)
	value := make([]byte, 16)
	if _, err := rand.Read(value); err != nil {
		return err
	}
	canary := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: CanaryName, Namespace: c.params.CanaryNamespace,
		Labels: map[string]string{v1alpha1.LabelRun: c.run, "app.kubernetes.io/managed-by": "drillbot"}},
		Data: map[string][]byte{"canary": []byte(hex.EncodeToString(value))}}
	defer func() {
		if err := secrets.Delete(context.WithoutCancel(ctx), CanaryName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			c.log.Warn("canary Secret not deleted", "err", err)
		}
	}()
	if _, err := secrets.Create(ctx, canary, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
		// Left by a run that died: overwrite it.
		_, err = secrets.Update(ctx, canary, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("write the canary Secret: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("write the canary Secret: %w", err)
	}
	m.Mark("canary-written")
	if c.metricsErr == nil {
		after, err := c.transformations(ctx)
		if err != nil {
			c.metricsErr = err
		} else {
			c.delta = map[string]float64{}
			for prefix, n := range after {
				if d := n - before[prefix]; d > 0 {
					c.delta[prefix] = d
				}
			}
		}
	}
	if c.params.Etcd != nil {
		c.raw, c.etcdErr = readKey(ctx, *c.params.Etcd, c.params.Etcd.Prefix+"/secrets/"+c.params.CanaryNamespace+"/"+CanaryName)
	}
	return nil
}

// transformations reads the API server's to_storage transformations of
// Secrets that succeeded, per transformer prefix.
func (c *canaryCheck) transformations(ctx context.Context) (map[string]float64, error) {
	body, err := c.kube.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the API server's /metrics: %w", err)
	}
	return parseTransformations(body)
}

func parseTransformations(body []byte) (map[string]float64, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("parse the API server's /metrics: %w", err)
	}
	out := map[string]float64{}
	f, ok := families["apiserver_storage_transformation_operations_total"]
	if !ok {
		return out, nil
	}
	for _, m := range f.GetMetric() {
		l := labels(m)
		if l["resource"] == "secrets" && l["transformation_type"] == "to_storage" && l["status"] == "OK" {
			out[l["transformer_prefix"]] += m.GetCounter().GetValue()
		}
	}
	return out, nil
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, lp := range m.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}

// readKey reads one key's value through etcd's v3 JSON gateway.
func readKey(ctx context.Context, e Etcd, key string) ([]byte, error) {
	hc, err := etcdHTTP(e)
	if err != nil {
		return nil, err
	}
	req, _ := json.Marshal(map[string]string{"key": base64.StdEncoding.EncodeToString([]byte(key))})
	var errs []error
	for _, ep := range e.Endpoints {
		r, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(ep, "/")+"/v3/kv/range", bytes.NewReader(req))
		if err != nil {
			return nil, err
		}
		r.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(r)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			errs = append(errs, fmt.Errorf("%s: %s %s", ep, resp.Status, strings.TrimSpace(string(body))))
			continue
		}
		var out struct {
			KVs []struct {
				Value []byte `json:"value"` // base64 in JSON, decoded by encoding/json
			} `json:"kvs"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			return nil, fmt.Errorf("etcd %s: %w", ep, err)
		}
		if len(out.KVs) == 0 {
			return nil, fmt.Errorf("etcd %s has no key %s (is the API server's --etcd-prefix %q?)", ep, key, e.Prefix)
		}
		return out.KVs[0].Value, nil
	}
	return nil, fmt.Errorf("read etcd: %w", errors.Join(errs...))
}

func etcdHTTP(e Etcd) (*http.Client, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if e.CAFile != "" {
		pem, err := os.ReadFile(e.CAFile)
		if err != nil {
			return nil, fmt.Errorf("etcd CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcd CA %s: no certificate", e.CAFile)
		}
		cfg.RootCAs = pool
	}
	if e.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(e.CertFile, e.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("etcd client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}, nil
}

// Verify implements engine.Scenario.
func (c *canaryCheck) Verify(context.Context) (engine.Verification, error) {
	v := Judge(c.delta, c.metricsErr, c.params.Etcd != nil, c.raw, c.etcdErr)
	if v.Inconclusive == "" {
		encrypted := int32(0)
		if len(v.Failures) == 0 {
			encrypted = 1
		}
		v.Posture = &v1alpha1.PostureMeasure{Compliant: encrypted, Total: 1, Of: "canary Secret writes encrypted"}
	}
	return v, nil
}

// encPrefix is the prefix of every value the API server encrypted.
const encPrefix = "k8s:enc:"

// Judge decides from the evidence. etcd's raw value, when read, is the
// proof; otherwise the API server's counters: a to_storage transformation
// with an encrypting prefix during the canary's write.
func Judge(delta map[string]float64, metricsErr error, etcd bool, raw []byte, etcdErr error) engine.Verification {
	var v engine.Verification
	var encrypting, plain []string
	for prefix := range delta {
		if strings.HasPrefix(prefix, encPrefix) {
			encrypting = append(encrypting, prefix)
		} else {
			plain = append(plain, orIdentity(prefix))
		}
	}
	switch {
	case metricsErr != nil:
		v.Findings = append(v.Findings, "API server counters not read: "+metricsErr.Error())
	case len(encrypting) > 0:
		v.Findings = append(v.Findings, "the API server encrypted the canary's write with "+strings.Join(encrypting, ", ")+" (apiserver_storage_transformation_operations_total)")
	case len(plain) > 0:
		v.Failures = append(v.Failures, "the API server wrote the canary Secret with "+strings.Join(plain, ", ")+": Secrets are not encrypted at rest")
	default:
		// No EncryptionConfiguration: the API server stores values as they
		// are and counts no transformation. (Another API server of an HA
		// control plane may have taken the write: etcd access settles it.)
		v.Failures = append(v.Failures, "the API server counted no encrypting transformation for the canary's write: Secrets are not encrypted at rest (no EncryptionConfiguration), or another API server took the write (give params.etcd to read the key itself)")
	}
	if !etcd {
		if metricsErr != nil {
			v.Inconclusive = "neither the API server's counters nor etcd could be read"
		}
		return v
	}
	switch {
	case etcdErr != nil:
		v.Findings = append(v.Findings, "etcd not read: "+etcdErr.Error())
		if metricsErr != nil {
			v.Inconclusive = "neither the API server's counters nor etcd could be read"
		}
	case bytes.HasPrefix(raw, []byte(encPrefix)):
		provider := strings.SplitN(string(raw[len(encPrefix):min(len(raw), 64)]), ":", 2)[0]
		v.Findings = append(v.Findings, fmt.Sprintf("etcd holds the canary encrypted (%s%s:...)", encPrefix, provider))
		v.Failures = nil // the raw key is the proof; counters may be another API server's
	default:
		v.Failures = append([]string{fmt.Sprintf("etcd holds the canary Secret in plaintext (its value starts %q, not %q)", printable(raw), encPrefix)}, dropCounterFailure(v.Failures)...)
	}
	return v
}

func dropCounterFailure(fs []string) []string {
	var out []string
	for _, f := range fs {
		if !strings.Contains(f, "counted no encrypting transformation") {
			out = append(out, f)
		}
	}
	return out
}

func orIdentity(prefix string) string {
	if prefix == "" || prefix == "identity" {
		return "the identity provider (no encryption)"
	}
	return prefix
}

func printable(b []byte) string {
	if len(b) > 8 {
		b = b[:8]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '.'
		}
		return r
	}, string(b))
}
