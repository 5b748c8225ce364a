package report_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/report"
)

var now = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func run(drill, name string, daysAgo int, v v1alpha1.Verdict, rto string) v1alpha1.DrillRun {
	fin := metav1.NewMicroTime(now.AddDate(0, 0, -daysAgo))
	return v1alpha1.DrillRun{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.DrillRunSpec{Drill: drill, Scenario: "namespace-restore"},
		Status: v1alpha1.DrillRunStatus{Phase: v1alpha1.PhaseCompleted, Verdict: v, RTO: rto, RTOTarget: "30m", RPOTarget: "1h",
			FinishedAt: &fin, Reason: "r|" + name}}
}

func TestBuild(t *testing.T) {
	running := run("shop", "shop-running", 0, "", "")
	running.Status.Phase = v1alpha1.PhaseRecovering
	runs := []v1alpha1.DrillRun{
		run("shop", "shop-3", 2, v1alpha1.VerdictPass, "12s"),
		run("shop", "shop-2", 32, v1alpha1.VerdictFail, "40s"),
		run("shop", "shop-1", 62, v1alpha1.VerdictPass, "30s"),
		running, // not finished: not in the report
		run("billing", "billing-1", 3, v1alpha1.VerdictFail, "10s"),
		run("old", "old-1", 45, v1alpha1.VerdictPass, "10s"),
	}
	rep := report.Build(runs, report.Options{Now: now, LastN: 2,
		Drills:      []report.DrillInfo{{Name: "never", Scenario: "pod-kill", RTOTarget: "5m"}},
		BackupTimes: map[string]time.Time{"shop": now.Add(-90 * time.Minute)}})

	if rep.TotalDrills != 4 || rep.CompliantDrills != 1 || rep.Compliance != 25 {
		t.Errorf("compliance %d/%d = %v%%, want 1/4 = 25%%", rep.CompliantDrills, rep.TotalDrills, rep.Compliance)
	}
	got := map[string]report.DrillReport{}
	for _, d := range rep.Drills {
		got[d.Name] = d
	}
	cases := []struct{ drill, status, trend string }{
		{"shop", "last run passed", "better (RTO 40s -> 12s)"},
		{"billing", "last run FAIL", "n/a"},
		{"old", "expired: last run passed 45 days ago (window 30 days)", "n/a"},
		{"never", "never run", "n/a"},
	}
	for _, c := range cases {
		d := got[c.drill]
		if d.Status != c.status || d.Trend != c.trend {
			t.Errorf("%s: status %q trend %q, want %q %q", c.drill, d.Status, d.Trend, c.status, c.trend)
		}
	}
	if shop := got["shop"]; len(shop.Runs) != 2 || shop.Runs[0].Name != "shop-3" || shop.LastBackupAge != "1h30m0s" {
		t.Errorf("shop: %+v", shop)
	}
}

func TestWriteFormats(t *testing.T) {
	r := run("shop", "shop-1", 1, v1alpha1.VerdictPass, "12s")
	r.Status.Detections = []v1alpha1.Detection{{Alert: "KubeNamespaceDown", Within: "2m0s", Detection: "4s", FiredAt: r.Status.FinishedAt}}
	rep := report.Build([]v1alpha1.DrillRun{r}, report.Options{Now: now})
	var md, js, tb bytes.Buffer
	for f, w := range map[string]*bytes.Buffer{"markdown": &md, "json": &js, "table": &tb} {
		if err := report.Write(w, rep, f); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"**Compliance (last 30 days): 100%**", "| shop | namespace-restore | ✅ last run passed |", "| 2026-11-23 12:00 | PASS | 12s | - | KubeNamespaceDown 4s / target 2m0s | `shop-1` | r\\|shop-1 |"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	var back report.Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Compliance != 100 || back.Drills[0].Runs[0].RTO != "12s" {
		t.Errorf("json round trip: %v %+v", err, back)
	}
	if !strings.Contains(tb.String(), "Compliance (last 30 days): 100% (1 of 1 drills)") {
		t.Errorf("table:\n%s", tb.String())
	}
	if err := report.Write(&tb, rep, "pdf"); err == nil {
		t.Error("unknown format accepted")
	}
}

// TestRevertFailedRunIsReported: a run whose revert failed has a verdict
// but is not Completed; the report shows it and says its fault may still
// be active, even when a newer run passed.
func TestRevertFailedRunIsReported(t *testing.T) {
	open := run("falco", "falco-1", 3, v1alpha1.VerdictFail, "")
	open.Status.Phase = v1alpha1.PhaseRevertFailed
	rep := report.Build([]v1alpha1.DrillRun{open, run("falco", "falco-2", 1, v1alpha1.VerdictPass, "10s")}, report.Options{Now: now})
	d := rep.Drills[0]
	if d.Compliant || !strings.Contains(d.Status, "FAULT MAY STILL BE ACTIVE") || !strings.Contains(d.Status, "falco-1") {
		t.Errorf("status %q compliant %v", d.Status, d.Compliant)
	}
	if len(d.Runs) != 2 || !d.Runs[1].FaultActive {
		t.Errorf("runs %+v", d.Runs)
	}
	var md bytes.Buffer
	if err := report.Write(&md, rep, "markdown"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "FAULT MAY STILL BE ACTIVE") {
		t.Errorf("markdown does not say it:\n%s", md.String())
	}
}

// TestUnarchivedRunsAndSourceAreSaid: a run whose evidence is not in the
// archive yet is named in every format with its last error; the report
// says where its runs come from.
func TestUnarchivedRunsAndSourceAreSaid(t *testing.T) {
	failed := run("shop", "shop-2", 1, v1alpha1.VerdictPass, "12s")
	failed.Status.Archive = &v1alpha1.ArchiveStatus{Attempts: 3, LastError: "dial tcp: connection refused"}
	archived := run("shop", "shop-1", 2, v1alpha1.VerdictPass, "12s")
	archived.Status.Archive = &v1alpha1.ArchiveStatus{Attempts: 1, Digest: "sha256:ab", Seq: 1}
	rep := report.Build([]v1alpha1.DrillRun{failed, archived}, report.Options{Now: now, Source: "the archive s3://b/p (2 run records verified)"})
	want := "NOT ARCHIVED: shop-2 (3 attempts, retried): dial tcp: connection refused"
	if d := rep.Drills[0]; len(d.Unarchived) != 1 || d.Unarchived[0] != want {
		t.Fatalf("unarchived %q", d.Unarchived)
	}
	for _, format := range []string{"table", "markdown", "html"} {
		var b bytes.Buffer
		if err := report.Write(&b, rep, format); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), want) || strings.Contains(b.String(), "shop-1 (") {
			t.Errorf("%s lacks %q or names an archived run", format, want)
		}
		if format != "table" && !strings.Contains(b.String(), "from the archive s3://b/p (2 run records verified)") {
			t.Errorf("%s does not say where its runs come from", format)
		}
	}
	if rep := report.Build(nil, report.Options{Now: now}); rep.Source != "the DrillRun records in the cluster" {
		t.Errorf("default source %q", rep.Source)
	}
}
