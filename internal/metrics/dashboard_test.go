package metrics_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/drillbot-io/drillbot/internal/metrics"
)

// DashboardPath is the Grafana dashboard the chart ships.
const DashboardPath = "../../deploy/helm/drillbot/dashboards/drillbot.json"

func TestDashboardQueriesUseExportedMetrics(t *testing.T) {
	dash, err := metrics.ReadDashboard(DashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	Feed(metrics.New(reg))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, f := range families {
		exported[f.GetName()] = true
		if f.GetType() == dto.MetricType_HISTOGRAM {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				exported[f.GetName()+s] = true
			}
		}
	}
	name := regexp.MustCompile(`\bdrillbot_[a-z_]+`)
	var exprs []string
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if q, ok := v.Query.(string); ok {
			exprs = append(exprs, q)
		}
	}
	used := map[string]bool{}
	for _, e := range exprs {
		for _, m := range name.FindAllString(e, -1) {
			used[m] = true
			if !exported[m] {
				t.Errorf("dashboard queries %s, which drillbot does not export (in %q)", m, e)
			}
		}
	}
	for _, must := range []string{"drillbot_last_rto_seconds", "drillbot_rto_target_seconds", "drillbot_last_rpo_seconds",
		"drillbot_rpo_target_seconds", "drillbot_runs_total", "drillbot_phase_duration_seconds", "drillbot_active_faults"} {
		if !used[must] {
			t.Errorf("dashboard does not show %s", must)
		}
	}
	raw, err := os.ReadFile(DashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), "${datasource}") {
		t.Error("dashboard hard-codes its datasource")
	}
}
