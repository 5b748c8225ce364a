package helm_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/drillbot-io/drillbot/internal/metrics"
)

// TestAlertsWithPromtool: the chart's alerts, rendered as a PrometheusRule,
// pass promtool's checks and its unit tests (testdata/alerts*_test.yaml),
// written for the chart's default topology: two replicas scraped, a
// failover. Every shipped alert has a test.
func TestAlertsWithPromtool(t *testing.T) {
	bin := tool(t, "DRILLBOT_PROMTOOL", "promtool")
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

// TestDashboardWithPromtool: the dashboard's panels, evaluated by promtool
// on the series of the chart's default topology (two replicas, both
// exporting every drill's targets and fault gauges, only the leader the
// results), show the truth: compliance 100% when every drill's last run
// passed (it said 50%: every target counted twice), 50% when one of two
// failed; a fault the leader holds counts once; one target line per drill.
func TestDashboardWithPromtool(t *testing.T) {
	bin := tool(t, "DRILLBOT_PROMTOOL", "promtool")
	dash, err := metrics.ReadDashboard("drillbot/dashboards/drillbot.json")
	if err != nil {
		t.Fatal(err)
	}
	expr := func(title string, i int) string {
		for _, p := range dash.Panels {
			if p.Title == title && i < len(p.Targets) {
				return strings.NewReplacer("$drill", ".*", "$cluster", ".*").Replace(p.Targets[i].Expr)
			}
		}
		t.Fatalf("no panel %q with a target %d", title, i)
		return ""
	}
	type sample struct {
		Labels string  `json:"labels"`
		Value  float64 `json:"value"`
	}
	type exprTest struct {
		Expr       string   `json:"expr"`
		EvalTime   string   `json:"eval_time"`
		ExpSamples []sample `json:"exp_samples"`
	}
	series := func(s, v string) map[string]string { return map[string]string{"series": s, "values": v} }
	var input []map[string]string
	for _, d := range []struct{ drill, scenario string }{{"namespace-restore", "namespace-restore"}, {"kill-kyverno", "pod-kill"}} {
		for _, pod := range []string{"drillbot-a", "drillbot-b"} {
			l := fmt.Sprintf(`{drill=%q,scenario=%q,pod=%q}`, d.drill, d.scenario, pod)
			faults := "0x20"
			if d.drill == "namespace-restore" && pod == "drillbot-a" {
				faults = "0x9 1x10" // from 10m the leader holds a fault
			}
			input = append(input, series("drillbot_rto_target_seconds"+l, "1800x20"), series("drillbot_active_faults"+l, faults))
		}
	}
	// The leader's results: both passed; from 10m kill-kyverno failed.
	input = append(input,
		series(`drillbot_last_run_verdict{drill="namespace-restore",scenario="namespace-restore",verdict="PASS",pod="drillbot-a"}`, "1x20"),
		series(`drillbot_last_run_verdict{drill="kill-kyverno",scenario="pod-kill",verdict="PASS",pod="drillbot-a"}`, "1x9 0x10"),
		series(`drillbot_last_run_verdict{drill="kill-kyverno",scenario="pod-kill",verdict="FAIL",pod="drillbot-a"}`, "0x9 1x10"),
	)
	compliance, faults, target := expr("Compliance: drills whose last run passed", 0), expr("Active faults (must be 0 outside drills)", 0), expr("RTO vs target", 1)
	tests := []exprTest{
		{compliance, "5m", []sample{{"{}", 100}}},
		{compliance, "15m", []sample{{"{}", 50}}},
		{faults, "5m", []sample{{"{}", 0}}},
		{faults, "15m", []sample{{"{}", 1}}},
		{target, "5m", []sample{{`{drill="kill-kyverno"}`, 1800}, {`{drill="namespace-restore"}`, 1800}}},
	}
	doc, err := yaml.Marshal(map[string]any{"rule_files": []string{}, "evaluation_interval": "1m",
		"tests": []any{map[string]any{"interval": "1m", "input_series": input, "promql_expr_test": tests}}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dashboard_test.yaml"), doc, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "test", "rules", "dashboard_test.yaml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s\n%s", err, out, doc)
	}
}
