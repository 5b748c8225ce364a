package localcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"sigs.k8s.io/yaml"
)

// Monitoring is the local cluster's Prometheus and Alertmanager, started on
// demand (StartMonitoring): Prometheus scrapes what a test names (file
// discovery, one file per job) and the cluster's pods annotated
// prometheus.io/scrape=true (Kubernetes discovery through the API server),
// evaluates the rule files it is given every second and sends its alerts to
// the Alertmanager.
type Monitoring struct {
	PrometheusURL, AlertmanagerURL string
	c                              *Cluster
}

// StartMonitoring starts Alertmanager and Prometheus; they stop with the
// cluster.
func (c *Cluster) StartMonitoring(ctx context.Context) (*Monitoring, error) {
	if c.cfg.Bins.Prometheus == "" {
		return nil, fmt.Errorf("prometheus binary not set (DRILLBOT_PROMETHEUS; make monitoring)")
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	amURL, err := c.startAlertmanager(ctx, ports[1])
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"targets", "rules", "data"} {
		if err := os.MkdirAll(c.path("prometheus", d), 0o755); err != nil {
			return nil, err
		}
	}
	cfg, err := yaml.Marshal(c.prometheusConfig(amURL[len("http://"):]))
	if err != nil {
		return nil, err
	}
	cfgFile := c.path("prometheus", "prometheus.yml")
	if err := os.WriteFile(cfgFile, cfg, 0o644); err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	if err := c.start("prometheus", c.cfg.Bins.Prometheus, nil, "--config.file="+cfgFile,
		"--storage.tsdb.path="+c.path("prometheus", "data"), "--web.listen-address="+addr, "--web.enable-lifecycle",
		// Alerts go out at once and are re-sent every 2s, so a resolved or
		// new alert reaches Alertmanager within a few seconds.
		"--rules.alert.resend-delay=2s", "--log.level=warn"); err != nil {
		return nil, err
	}
	m := &Monitoring{PrometheusURL: "http://" + addr, AlertmanagerURL: amURL, c: c}
	return m, c.waitHTTP(ctx, "prometheus", m.PrometheusURL+"/-/ready", 60*time.Second)
}

// prometheusConfig scrapes and evaluates every second.
func (c *Cluster) prometheusConfig(amAddr string) map[string]any {
	return map[string]any{
		"global": map[string]any{"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
		"alerting": map[string]any{"alertmanagers": []any{map[string]any{
			"api_version": "v2", "static_configs": []any{map[string]any{"targets": []string{amAddr}}}}}},
		"rule_files": []string{c.path("prometheus", "rules", "*.yaml")},
		"scrape_configs": []any{
			map[string]any{"job_name": "file", "file_sd_configs": []any{map[string]any{
				"files": []string{c.path("prometheus", "targets", "*.json")}, "refresh_interval": "1s"}}},
			map[string]any{"job_name": "kubernetes-pods",
				"kubernetes_sd_configs": []any{map[string]any{"role": "pod", "kubeconfig_file": c.Kubeconfig}},
				"relabel_configs": []any{
					map[string]any{"source_labels": []string{"__meta_kubernetes_pod_annotation_prometheus_io_scrape"}, "regex": "true", "action": "keep"},
					map[string]any{"source_labels": []string{"__meta_kubernetes_pod_ready"}, "regex": "true", "action": "keep"},
					map[string]any{"source_labels": []string{"__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port"},
						"regex": `([^:]+)(?::\d+)?;(\d+)`, "replacement": "$1:$2", "target_label": "__address__"},
					map[string]any{"source_labels": []string{"__meta_kubernetes_pod_annotation_prometheus_io_job"}, "target_label": "job"},
					map[string]any{"source_labels": []string{"__meta_kubernetes_namespace"}, "target_label": "namespace"},
					map[string]any{"source_labels": []string{"__meta_kubernetes_pod_name"}, "target_label": "pod"},
				}},
		},
	}
}

// SetTargets makes Prometheus scrape targets (host:port) as job, with
// labels; no targets removes the job's.
func (m *Monitoring) SetTargets(job string, targets []string, labels map[string]string) error {
	l := map[string]string{"job": job}
	for k, v := range labels {
		l[k] = v
	}
	group := []map[string]any{{"targets": targets, "labels": l}}
	data, err := json.Marshal(group)
	if err != nil {
		return err
	}
	return writeAtomic(m.c.path("prometheus", "targets", job+".json"), data)
}

// SetRules installs a rule file (Prometheus' format) as name and reloads
// Prometheus; nil data removes it.
func (m *Monitoring) SetRules(ctx context.Context, name string, data []byte) error {
	file := m.c.path("prometheus", "rules", name+".yaml")
	if data == nil {
		if err := os.Remove(file); err != nil && !os.IsNotExist(err) {
			return err
		}
	} else if err := writeAtomic(file, data); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.PrometheusURL+"/-/reload", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("reload prometheus: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reload prometheus: %s (see %s)", resp.Status, m.c.path("logs", "prometheus.log"))
	}
	return nil
}

// writeAtomic writes through a temporary file and a rename, so Prometheus'
// file watcher never reads half a file.
func writeAtomic(file string, data []byte) error {
	tmp := filepath.Join(filepath.Dir(file), "."+filepath.Base(file)+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}
