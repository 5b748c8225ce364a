package encryptionatrest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// EndpointMetrics reads one API server's own /metrics at endpoint
// (host:port), not the kubernetes Service's, which may be any of them.
type EndpointMetrics interface {
	Metrics(ctx context.Context, endpoint string) ([]byte, error)
}

// metricsTimeout bounds one endpoint's /metrics read (an endpoint drillbot
// cannot reach would otherwise hold the phase to its deadline).
const metricsTimeout = 10 * time.Second

// maxMetrics bounds the /metrics body read.
const maxMetrics = 64 << 20

// RESTMetrics reads an endpoint's /metrics with drillbot's own client
// config: its credentials, and the TLS server name of the host it is
// configured with, so the endpoint must prove the same identity.
type RESTMetrics struct{ Config *rest.Config }

// Metrics implements EndpointMetrics.
func (r RESTMetrics) Metrics(ctx context.Context, endpoint string) ([]byte, error) {
	cfg := rest.CopyConfig(r.Config)
	if cfg.TLSClientConfig.ServerName == "" {
		host := cfg.Host
		if !strings.Contains(host, "://") {
			host = "https://" + host
		}
		u, err := url.Parse(host)
		if err != nil {
			return nil, fmt.Errorf("drillbot's API server address %q: %w", cfg.Host, err)
		}
		cfg.TLSClientConfig.ServerName = u.Hostname()
	}
	cfg.Host = "https://" + endpoint
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("client for API server %s: %w", endpoint, err)
	}
	ctx, cancel := context.WithTimeout(ctx, metricsTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.Host+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("API server %s /metrics: %w", endpoint, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMetrics))
	if err != nil {
		return nil, fmt.Errorf("API server %s /metrics: %w", endpoint, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("API server %s /metrics: %s", endpoint, resp.Status)
	}
	return body, nil
}

// Counters are the Secret transformations counted during the canary's
// write on every API server, or why they could not be.
type Counters struct {
	Servers []ServerDelta
	// Err: the API servers could not be listed, one could not be read
	// before and after, or they changed (or restarted) during the run.
	Err error
}

// ServerDelta is one API server's successful to_storage transformations of
// Secrets during the canary's write, per transformer prefix.
type ServerDelta struct {
	Endpoint string
	Delta    map[string]float64
}

func (c Counters) endpoints() []string {
	out := make([]string, 0, len(c.Servers))
	for _, s := range c.Servers {
		out = append(out, s.Endpoint)
	}
	return out
}

// snapshot is each API server's counts at one moment, by endpoint.
type snapshot map[string]map[string]float64

// counters reads the counts of every API server the kubernetes Service
// lists, each from its own /metrics.
func (c *canaryCheck) counters(ctx context.Context) (snapshot, error) {
	if c.metrics == nil {
		return nil, errors.New("no client for each API server's own /metrics")
	}
	eps, err := apiServerEndpoints(ctx, c.kube)
	if err != nil {
		return nil, err
	}
	out := snapshot{}
	for _, ep := range eps {
		body, err := c.metrics.Metrics(ctx, ep)
		if err != nil {
			return nil, fmt.Errorf("read API server %s's own /metrics: %w", ep, err)
		}
		counts, err := parseTransformations(body)
		if err != nil {
			return nil, fmt.Errorf("API server %s: %w", ep, err)
		}
		out[ep] = counts
	}
	return out, nil
}

// apiServerEndpoints lists every API server: the endpoints of the default
// namespace's kubernetes Service, which each API server keeps itself in.
func apiServerEndpoints(ctx context.Context, kube kubernetes.Interface) ([]string, error) {
	list, err := kube.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=kubernetes"})
	if err != nil {
		return nil, fmt.Errorf("list the API servers (the kubernetes Service's EndpointSlices): %w", err)
	}
	var out []string
	for _, s := range list.Items {
		port := ""
		for _, p := range s.Ports {
			if p.Port != nil && (port == "" || p.Name != nil && *p.Name == "https") {
				port = fmt.Sprint(*p.Port)
			}
		}
		if port == "" {
			continue
		}
		for _, e := range s.Endpoints {
			for _, a := range e.Addresses {
				out = append(out, net.JoinHostPort(a, port))
			}
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) == 0 {
		return nil, errors.New("the kubernetes Service's EndpointSlices list no API server")
	}
	return out, nil
}

// diff ties the counts to the window: the same API servers before and
// after, none of whose counters went back (a restart forgets counts).
func diff(before, after snapshot) Counters {
	b, a := sortedKeys(before), sortedKeys(after)
	if !slices.Equal(b, a) {
		return Counters{Err: fmt.Errorf("the API servers changed during the canary's write (before: %s; after: %s)", strings.Join(b, ", "), strings.Join(a, ", "))}
	}
	var c Counters
	for _, ep := range a {
		d := map[string]float64{}
		for prefix, n := range after[ep] {
			switch delta := n - before[ep][prefix]; {
			case delta < 0:
				return Counters{Err: fmt.Errorf("API server %s's counters went back during the canary's write (it restarted)", ep)}
			case delta > 0:
				d[prefix] = delta
			}
		}
		for prefix := range before[ep] {
			if _, ok := after[ep][prefix]; !ok {
				return Counters{Err: fmt.Errorf("API server %s's counters went back during the canary's write (it restarted)", ep)}
			}
		}
		c.Servers = append(c.Servers, ServerDelta{Endpoint: ep, Delta: d})
	}
	return c
}

// parseTransformations reads the API server's to_storage transformations
// of Secrets that succeeded, per transformer prefix.
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
		if _, ok := l["resource"]; !ok {
			return nil, errors.New("apiserver_storage_transformation_operations_total has no resource label (an older API server): Secrets' transformations cannot be told from others'")
		}
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

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
