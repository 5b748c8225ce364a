package report_test

import (
	"bytes"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/report"
)

func checkRun(drill, scenario, name string, daysAgo int, v v1alpha1.Verdict, findings ...string) v1alpha1.DrillRun {
	fin := metav1.NewMicroTime(now.AddDate(0, 0, -daysAgo))
	return v1alpha1.DrillRun{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.DrillRunSpec{Drill: drill, Scenario: scenario},
		Status: v1alpha1.DrillRunStatus{Phase: v1alpha1.PhaseCompleted, Verdict: v, RTO: "20ms", RTOTarget: "1m", FinishedAt: &fin,
			Findings: findings, Reason: "reason of " + name}}
}

func TestPostureAndRTOTable(t *testing.T) {
	restore := func(name string, daysAgo int, rto, rpo string) v1alpha1.DrillRun {
		r := run("namespace-restore", name, daysAgo, v1alpha1.VerdictPass, rto)
		r.Status.RPO = rpo
		return r
	}
	runs := []v1alpha1.DrillRun{
		checkRun("pod-security-audit", "pod-security-audit", "psa-2", 1, v1alpha1.VerdictFail, "Pod Security compliance: 1 of 3 namespaces (restricted enforced, pods at restricted)"),
		checkRun("pod-security-audit", "pod-security-audit", "psa-1", 2, v1alpha1.VerdictPass, "Pod Security compliance: 3 of 3 namespaces"),
		checkRun("signed-images", "signed-images", "si-1", 40, v1alpha1.VerdictPass, "signed images: 4 of 4 running in 2 namespaces"),
		checkRun("encryption-at-rest", "encryption-at-rest", "enc-1", 1, v1alpha1.VerdictPass, "the API server encrypted the canary's write with k8s:enc:aescbc:v1:"),
		checkRun("backup-coverage", "backup-coverage", "cov-1", 1, v1alpha1.VerdictFail),
		// The runbook's table: RTO p95 of 20, 25, 40 minutes against 30m.
		restore("nr-3", 1, "20m0s", "30m0s"), restore("nr-2", 8, "25m0s", "50m0s"), restore("nr-1", 15, "40m0s", "70m0s"),
	}
	rep := report.Build(runs, report.Options{Now: now, Drills: []report.DrillInfo{{Name: "never-checked", Scenario: "signed-images"}}})
	got := map[string]report.Posture{}
	for _, p := range rep.Posture {
		got[p.Drill] = p
	}
	for drill, want := range map[string]struct {
		verdict  v1alpha1.Verdict
		expired  bool
		measured string
	}{
		"pod-security-audit": {v1alpha1.VerdictFail, false, "1 of 3 namespaces (restricted enforced, pods at restricted)"},
		"signed-images":      {v1alpha1.VerdictPass, true, "4 of 4 running in 2 namespaces"},
		"encryption-at-rest": {v1alpha1.VerdictPass, false, "the API server encrypted the canary's write with k8s:enc:aescbc:v1:"},
		"backup-coverage":    {v1alpha1.VerdictFail, false, "reason of cov-1"},
		"namespace-restore":  {v1alpha1.VerdictPass, false, "RTO 20m0s, RPO 30m0s"},
		"never-checked":      {"", false, "never run"},
	} {
		p := got[drill]
		if p.Verdict != want.verdict || p.Expired != want.expired || p.Measured != want.measured {
			t.Errorf("%s: %+v, want %+v", drill, p, want)
		}
	}
	if len(rep.RTOTable) != 1 {
		t.Fatalf("RTO table %+v, want the restore drill only (checks' RTO is their duration)", rep.RTOTable)
	}
	row := rep.RTOTable[0]
	if row.RTOP95 != "40m0s" || row.RPOP95 != "1h10m0s" || row.Runs != 3 ||
		!strings.Contains(row.Suggestion, "RTO p95 40m0s is over the 30m target: speed up recovery, or set the runbook's RTO to at least 40m0s") ||
		!strings.Contains(row.Suggestion, "RPO p95 1h10m0s is over the 1h target") {
		t.Errorf("RTO row %+v", row)
	}
	var md, tab bytes.Buffer
	if err := report.Write(&md, rep, "markdown"); err != nil {
		t.Fatal(err)
	}
	if err := report.Write(&tab, rep, "table"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Posture (the hardening plan's results, measured)", "| Signed images running | signed-images | PASS (expired) | 4 of 4 running in 2 namespaces |",
		"## RTO/RPO: targets against measurements", "| namespace-restore | 30m | 40m0s | 1h | 1h10m0s | 3 |"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	if !strings.Contains(tab.String(), "POSTURE") || !strings.Contains(tab.String(), "RTO 40m0s (target 30m)") {
		t.Errorf("table:\n%s", tab.String())
	}
}
