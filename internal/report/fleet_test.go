package report_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/report"
)

// TestFleet: per cluster and drill the newest run; a pass older than the
// window has expired; an unreachable cluster is named, counts for nothing
// and keeps the fleet from being compliant.
func TestFleet(t *testing.T) {
	o := report.Options{Now: now}
	prod := report.Build([]v1alpha1.DrillRun{
		run("shop", "shop-2", 2, v1alpha1.VerdictPass, "12s"),
		run("shop", "shop-1", 40, v1alpha1.VerdictFail, "40s"),
		run("kyverno", "kyverno-1", 45, v1alpha1.VerdictPass, "30s"),
	}, o)
	staging := report.Build([]v1alpha1.DrillRun{run("shop", "shop-9", 1, v1alpha1.VerdictFail, "50s")}, o)
	f := report.BuildFleet([]report.Cluster{
		{Name: "staging", Report: &staging},
		{Name: "prod", Report: &prod},
		{Name: "dr-region", Error: "dial tcp 10.0.0.1:443: i/o timeout"},
	}, now, 30)
	if f.TotalDrills != 3 || f.CompliantDrills != 1 || int(f.Compliance) != 33 {
		t.Errorf("compliance %.1f%% (%d of %d)", f.Compliance, f.CompliantDrills, f.TotalDrills)
	}
	if strings.Join(f.Unreachable, ",") != "dr-region" {
		t.Errorf("unreachable %v", f.Unreachable)
	}
	var got []string
	for _, r := range f.Rows {
		got = append(got, r.Cluster+"/"+r.Drill+" "+string(r.Verdict)+" "+r.Status)
	}
	want := []string{
		"dr-region/ " + " UNREACHABLE: dial tcp 10.0.0.1:443: i/o timeout",
		"prod/kyverno PASS expired: last run passed 45 days ago (window 30 days)",
		"prod/shop PASS last run passed",
		"staging/shop FAIL last run FAIL",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var md, js, tb bytes.Buffer
	for format, w := range map[string]*bytes.Buffer{"markdown": &md, "json": &js, "table": &tb} {
		if err := report.WriteFleet(w, f, format); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"**Fleet compliance (last 30 days): 33% (1 of 3 drills in 2 clusters); NOT READ: dr-region (their drills are unknown)**",
		"| prod | kyverno | namespace-restore | PASS | 2026-10-10 12:00 |", "❌ expired: last run passed 45 days ago"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	if !strings.Contains(tb.String(), "dr-region  -") || !strings.Contains(tb.String(), "UNREACHABLE") {
		t.Errorf("table:\n%s", tb.String())
	}
	var back report.Fleet
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.CompliantDrills != 1 || len(back.Clusters) != 3 {
		t.Errorf("json round trip: %v %+v", err, back)
	}
}
