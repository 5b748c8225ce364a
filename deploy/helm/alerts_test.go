package helm_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// promtool returns the promtool binary make test builds.
func promtool(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("DRILLBOT_PROMTOOL")
	if bin == "" {
		if os.Getenv("DRILLBOT_REQUIRE_CLUSTER") != "" {
			t.Fatal("DRILLBOT_PROMTOOL is not set (make test builds promtool)")
		}
		t.Skip("no promtool binary (run through make test)")
	}
	return bin
}

// TestAlertsWithPromtool: the chart's alerts, rendered as a PrometheusRule,
// pass promtool's checks and its unit tests (testdata/alerts*_test.yaml),
// written for the chart's default topology: two replicas scraped, a
// failover. Every shipped alert has a test.
func TestAlertsWithPromtool(t *testing.T) {
	bin := promtool(t)
	docs := render(t, "--set", "metrics.prometheusRule.enabled=true")
	if len(docs["PrometheusRule"]) != 1 {
		t.Fatalf("%d PrometheusRules", len(docs["PrometheusRule"]))
	}
	spec := docs["PrometheusRule"][0]["spec"].(map[string]any)
	rules, err := yaml.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	tests, err := filepath.Glob("testdata/alerts*_test.yaml")
	if err != nil || len(tests) == 0 {
		t.Fatalf("no promtool tests: %v", err)
	}
	var all strings.Builder
	var names []string
	for _, f := range tests {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(b)
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, filepath.Base(f))
	}
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("check", "rules", "rules.yaml")
	run(append([]string{"test", "rules"}, names...)...)
	for _, g := range spec["groups"].([]any) {
		for _, r := range g.(map[string]any)["rules"].([]any) {
			if alert, ok := r.(map[string]any)["alert"].(string); ok && !strings.Contains(all.String(), "alertname: "+alert+"\n") {
				t.Errorf("alert %s has no promtool test", alert)
			}
		}
	}
}
