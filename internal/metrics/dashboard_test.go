package metrics_test

import (
	"context"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/engine"
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
	m := metrics.New(reg)
	Feed(m)
	// A run held by a freeze window: the stop counter's series.
	m.Observe(context.Background(), engine.Event{Type: engine.EventFinished, Run: &v1alpha1.DrillRun{
		Spec:   v1alpha1.DrillRunSpec{Drill: "held", Scenario: "pod-kill"},
		Status: v1alpha1.DrillRunStatus{Verdict: v1alpha1.VerdictInconclusive, Stop: &v1alpha1.Stop{Kind: v1alpha1.StopFreezeWindow, Before: true}}}})
	// A check's run: the posture gauges' series.
	m.Observe(context.Background(), engine.Event{Type: engine.EventFinished, Run: &v1alpha1.DrillRun{
		Spec:   v1alpha1.DrillRunSpec{Drill: "pod-security-audit", Scenario: "pod-security-audit"},
		Status: v1alpha1.DrillRunStatus{Verdict: v1alpha1.VerdictFail, Posture: &v1alpha1.PostureMeasure{Compliant: 2, Total: 3, Of: "namespaces"}}}})
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

// TestDashboardDecodesStrictlyAsGrafana: the shipped dashboard decodes
// into Grafana's own dashboard types (the Grafana Foundation SDK, panel
// options by panel type) with unknown or mistyped fields refused.
func TestDashboardDecodesStrictlyAsGrafana(t *testing.T) {
	raw, err := os.ReadFile(DashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	plugins.RegisterDefaultPlugins()
	var d dashboard.Dashboard
	if err := strict(d.UnmarshalJSONStrict(raw)); err != nil {
		t.Fatalf("the dashboard is not Grafana's schema: %v (%#v)", err, err)
	}
	if len(d.Panels) < 12 {
		t.Errorf("%d panels decoded", len(d.Panels))
	}
	// And the check can fail: a misspelt field is refused.
	bad := strings.Replace(string(raw), `"gridPos"`, `"gridPosition"`, 1)
	var d2 dashboard.Dashboard
	if err := strict(d2.UnmarshalJSONStrict([]byte(bad))); err == nil {
		t.Error("a misspelt panel field was accepted")
	}
}

// strict is the SDK's error, where an empty cog.BuildErrors (which
// UnmarshalJSONStrict v0.0.22 returns, typed, on success) is none.
func strict(err error) error {
	var be cog.BuildErrors
	if errors.As(err, &be) && len(be) == 0 {
		return nil
	}
	return err
}
