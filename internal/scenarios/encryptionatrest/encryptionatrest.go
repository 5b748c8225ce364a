// Package encryptionatrest is the encryption-at-rest check: it proves that
// a Secret written now is encrypted by the API server before it reaches
// etcd. drillbot writes a canary Secret in its own namespace (its only
// write) and reads the evidence: etcd's raw value of the canary's key
// (params.etcd, through etcd's JSON gateway), which must start with
// k8s:enc:<provider>:, and the storage-transformation counters of every
// API server around the write, each read at its own endpoint (the
// kubernetes Service's EndpointSlices list them; one /metrics through the
// Service may be any of them). The canary is deleted after.
//
// What its PASS rests on, by the rules of evidence (EVIDENCE.md):
//  1. one canary written, and its key read back from etcd; no key read is
//     no PASS.
//  2. the key's mod_revision is the canary write's resourceVersion (an
//     older or later value, or another etcd's, is INCONCLUSIVE); counters
//     are differences on the same API servers before and after the write
//     (a server that came, went or restarted makes them INCONCLUSIVE).
//  3. the stored bytes: only etcd's value can PASS. The counters count
//     every writer's Secrets, not the canary's bytes: encrypting counts
//     alone are INCONCLUSIVE; they can FAIL (below).
//  5. an unreadable endpoint, EndpointSlice list or etcd leaves its
//     evidence out: INCONCLUSIVE unless the other proves or fails it.
//  6. counters only per API server endpoint of this cluster, never through
//     the Service; etcd's key under this cluster's --etcd-prefix, tied by
//     revision (a plaintext value must hold the canary's random data).
//  8. a FAIL from counters needs every listed API server read: one that
//     stored a Secret with a non-encrypting transformer during the run
//     (the first provider is the one that writes: it writes every Secret
//     in plaintext), or none counting a transformation at all; counters
//     without a resource label (older API servers) are not used.
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
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

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
	// Etcd, when set, reads the canary's raw key from etcd: the only
	// evidence that can PASS.
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
	Kube kubernetes.Interface
	// REST is drillbot's client config: each API server endpoint's own
	// /metrics is read with its credentials (and its TLS server name).
	REST *rest.Config
	// Metrics, when set, reads each endpoint's /metrics instead (tests).
	Metrics EndpointMetrics
	Logger  *slog.Logger
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
	metrics := k.Deps.Metrics
	if metrics == nil && k.Deps.REST != nil {
		metrics = RESTMetrics{Config: k.Deps.REST}
	}
	return &canaryCheck{kube: k.Deps.Kube, metrics: metrics, params: p, run: runName, log: log.With("scenario", Name, "run", runName)}, nil
}

type canaryCheck struct {
	check.NoFault
	kube    kubernetes.Interface
	metrics EndpointMetrics
	params  Params
	run     string
	log     *slog.Logger

	ev Evidence // found by Recover
}

// Preflight implements engine.Scenario.
func (c *canaryCheck) Preflight(ctx context.Context) error {
	if _, err := c.kube.CoreV1().Namespaces().Get(ctx, c.params.CanaryNamespace, metav1.GetOptions{}); err != nil {
		return fmt.Errorf("canary namespace %s: %w", c.params.CanaryNamespace, err)
	}
	return nil
}

// Recover implements engine.Scenario: every API server's counters, the
// canary's write, every API server's counters again, the raw key, and the
// canary deleted.
func (c *canaryCheck) Recover(ctx context.Context, m engine.Milestones) error {
	before, beforeErr := c.counters(ctx)
	secrets := c.kube.CoreV1().Secrets(c.params.CanaryNamespace)
	value := make([]byte, 16)
	if _, err := rand.Read(value); err != nil {
		return err
	}
	c.ev.Marker = hex.EncodeToString(value)
	canary := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: CanaryName, Namespace: c.params.CanaryNamespace,
		Labels: map[string]string{v1alpha1.LabelRun: c.run, "app.kubernetes.io/managed-by": "drillbot"}},
		Data: map[string][]byte{"canary": []byte(c.ev.Marker)}}
	defer func() {
		if err := secrets.Delete(context.WithoutCancel(ctx), CanaryName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			c.log.Warn("canary Secret not deleted", "err", err)
		}
	}()
	written, err := secrets.Create(ctx, canary, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		// Left by a run that died: overwrite it.
		written, err = secrets.Update(ctx, canary, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("write the canary Secret: %w", err)
	}
	c.ev.Written = written.ResourceVersion
	m.Mark("canary-written")
	if beforeErr != nil {
		c.ev.Counters.Err = beforeErr
	} else {
		after, err := c.counters(ctx)
		if err != nil {
			c.ev.Counters.Err = err
		} else {
			c.ev.Counters = diff(before, after)
		}
	}
	if c.params.Etcd != nil {
		c.ev.Etcd = true
		c.ev.Raw, c.ev.RawRevision, c.ev.EtcdErr = readKey(ctx, *c.params.Etcd, c.params.Etcd.Prefix+"/secrets/"+c.params.CanaryNamespace+"/"+CanaryName)
	}
	return nil
}

// readKey reads one key's value and mod_revision through etcd's v3 JSON
// gateway.
func readKey(ctx context.Context, e Etcd, key string) ([]byte, int64, error) {
	hc, err := etcdHTTP(e)
	if err != nil {
		return nil, 0, err
	}
	req, _ := json.Marshal(map[string]string{"key": base64.StdEncoding.EncodeToString([]byte(key))})
	var errs []error
	for _, ep := range e.Endpoints {
		r, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(ep, "/")+"/v3/kv/range", bytes.NewReader(req))
		if err != nil {
			return nil, 0, err
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
				Value       []byte `json:"value"`               // base64 in JSON, decoded by encoding/json
				ModRevision int64  `json:"mod_revision,string"` // int64 as a string in JSON
			} `json:"kvs"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			return nil, 0, fmt.Errorf("etcd %s: %w", ep, err)
		}
		if len(out.KVs) == 0 {
			return nil, 0, fmt.Errorf("etcd %s has no key %s (is the API server's --etcd-prefix %q?)", ep, key, e.Prefix)
		}
		return out.KVs[0].Value, out.KVs[0].ModRevision, nil
	}
	return nil, 0, fmt.Errorf("read etcd: %w", errors.Join(errs...))
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
	v := Judge(c.ev)
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

// Evidence is what Recover found.
type Evidence struct {
	// Counters are every API server's Secret transformations during the
	// canary's write.
	Counters Counters
	// Marker is the canary's random data; Written its write's
	// resourceVersion (etcd's mod_revision of the key it wrote).
	Marker, Written string
	// Etcd: params.etcd was given; Raw is the canary key's value there,
	// RawRevision its mod_revision, EtcdErr why it was not read.
	Etcd        bool
	Raw         []byte
	RawRevision int64
	EtcdErr     error
}

// Judge decides from the evidence. Only the stored bytes can PASS: etcd's
// raw value of the key the canary's write made (its mod_revision is the
// write's resourceVersion), starting k8s:enc:. The API servers' counters,
// read on every API server the kubernetes Service lists, can FAIL (an API
// server stored a Secret with a non-encrypting transformer during the run,
// or none counted a transformation of the canary's write), never PASS:
// they count every writer's Secrets, not the canary's bytes.
func Judge(e Evidence) engine.Verification {
	var v engine.Verification
	var undecided []string
	c := e.Counters
	noTransformation := ""
	if c.Err != nil {
		v.Findings = append(v.Findings, "API server counters not tied to the canary's write: "+c.Err.Error())
		undecided = append(undecided, "the API servers' counters could not be read on each of them before and after the canary's write")
	} else {
		var total float64
		var encrypting []string
		for _, s := range c.Servers {
			var plain []string
			for _, prefix := range sortedKeys(s.Delta) {
				n := s.Delta[prefix]
				total += n
				switch {
				case strings.HasPrefix(prefix, encPrefix):
					encrypting = append(encrypting, fmt.Sprintf("%s: %g with %s", s.Endpoint, n, prefix))
				case prefix == "" || prefix == "identity":
					// The identity provider writes with an empty prefix.
					plain = append(plain, fmt.Sprintf("%g with %s", n, orIdentity(prefix)))
				default:
					// A provider's key ("key1:") is counted as a series of
					// its own beside the provider's k8s:enc: prefix
					// (k8s.io/apiserver's nested prefix transformers): not
					// a write of its own.
					total -= n
				}
			}
			if len(plain) > 0 {
				// A Secret write's transformer is the first provider of the
				// EncryptionConfiguration: this API server writes Secrets in
				// plaintext, the canary's if it took it, anyone's if not.
				v.Failures = append(v.Failures, fmt.Sprintf("API server %s stored Secrets without encryption during the run (%s, apiserver_storage_transformation_operations_total): Secrets it writes are not encrypted at rest",
					s.Endpoint, strings.Join(plain, ", ")))
			}
		}
		switch {
		case total == 0:
			noTransformation = fmt.Sprintf("none of the %d API servers the kubernetes Service lists (%s) counted a transformation of the canary's write: Secrets are not encrypted at rest (no EncryptionConfiguration covers them), or the write went to an API server the Service does not list",
				len(c.Servers), strings.Join(c.endpoints(), ", "))
			v.Failures = append(v.Failures, noTransformation)
		case len(encrypting) > 0:
			v.Findings = append(v.Findings, fmt.Sprintf("the %d API servers the kubernetes Service lists counted encrypting Secret writes during the run (%s): the canary's and any other writer's", len(c.Servers), strings.Join(encrypting, "; ")))
			undecided = append(undecided, "the API servers' counters count every writer's Secrets, not the canary's stored bytes")
		}
	}
	switch {
	case !e.Etcd:
		undecided = append(undecided, "etcd not read (params.etcd): only the canary's stored bytes prove it encrypted")
	case e.EtcdErr != nil:
		v.Findings = append(v.Findings, "etcd not read: "+e.EtcdErr.Error())
		undecided = append(undecided, "etcd not read: only the canary's stored bytes prove it encrypted")
	case bytes.HasPrefix(e.Raw, []byte(encPrefix)):
		provider := strings.SplitN(string(e.Raw[len(encPrefix):min(len(e.Raw), 64)]), ":", 2)[0]
		if rev := strconv.FormatInt(e.RawRevision, 10); e.Written == "" || rev != e.Written {
			v.Findings = append(v.Findings, fmt.Sprintf("etcd holds the canary's key encrypted (%s%s:...), but at revision %s, not the canary's write (resourceVersion %q)", encPrefix, provider, rev, e.Written))
			undecided = append(undecided, "etcd's value at the canary's key is not the canary's write (another write since, or another etcd)")
			break
		}
		v.Findings = append(v.Findings, fmt.Sprintf("etcd holds the canary encrypted (%s%s:...), at revision %s: the canary's write", encPrefix, provider, e.Written))
		undecided = nil // the stored bytes are the proof
		if noTransformation != "" {
			// Encrypted by an API server that counted nothing: one the
			// Service does not list. Its count is no evidence either way.
			v.Failures = slices.DeleteFunc(v.Failures, func(f string) bool { return f == noTransformation })
			v.Findings = append(v.Findings, "the API server that encrypted the canary is not among those the kubernetes Service lists")
		}
	case e.Marker != "" && bytes.Contains(e.Raw, []byte(e.Marker)):
		v.Failures = append([]string{fmt.Sprintf("etcd holds the canary Secret in plaintext (its value starts %q, not %q, and holds the canary's data)", printable(e.Raw), encPrefix)},
			slices.DeleteFunc(v.Failures, func(f string) bool { return f == noTransformation })...)
	default:
		v.Findings = append(v.Findings, fmt.Sprintf("etcd's value at the canary's key starts %q, not %q, but does not hold the canary's data", printable(e.Raw), encPrefix))
		undecided = append(undecided, "etcd's value at the canary's key is not the canary's write (another write since, or another etcd)")
	}
	if len(v.Failures) == 0 && len(undecided) > 0 {
		v.Inconclusive = strings.Join(undecided, "; ")
	}
	return v
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
