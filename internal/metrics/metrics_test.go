package metrics_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/metrics"
)

// Feed feeds m a drill definition, a schedule and one finished run, the way
// drillbot serve does; the dashboard test uses it too.
func Feed(m *metrics.Metrics) {
	d := drill.Definition{Name: "namespace-restore", Spec: v1alpha1.DrillSpec{Scenario: "namespace-restore",
		Objectives: v1alpha1.Objectives{RTO: "30m", RPO: "1h"}}}
	d.FromSpec()
	m.Drill(d)
	m.NextRun(d, time.Unix(1796094000, 0))
	t0 := time.Unix(1795000000, 0)
	mt := func(s float64) metav1.MicroTime {
		return metav1.NewMicroTime(t0.Add(time.Duration(s * float64(time.Second))))
	}
	fin, fired := mt(12), mt(4.25)
	recStep := mt(11.6)
	run := &v1alpha1.DrillRun{Spec: v1alpha1.DrillRunSpec{Drill: "namespace-restore", Scenario: "namespace-restore"},
		Status: v1alpha1.DrillRunStatus{Phase: v1alpha1.PhaseCompleted, Verdict: v1alpha1.VerdictPass, RTO: "11.543s", RPO: "9.006s",
			FinishedAt: &fin,
			Steps:      []v1alpha1.Step{{Phase: v1alpha1.PhaseRecovering, StartedAt: mt(0.1), FinishedAt: &recStep}},
			Journal:    []v1alpha1.JournalEntry{{ID: "1", State: v1alpha1.JournalReverted}},
			Detections: []v1alpha1.Detection{{Alert: "KubeNamespaceDown", Within: "2m0s", FiredAt: &fired, Detection: "4.25s"},
				{Alert: "ShopSLOBurn", Within: "1m0s", Problem: "not firing within 1m0s of the disaster"}}}}
	m.Observe(context.Background(), engine.Event{Type: engine.EventFinished, Run: run})
	m.NotificationFailed("slack")
}

func TestMetricsLintAndValues(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	Feed(m)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	want := `
# HELP drillbot_last_rto_seconds RTO measured by the drill's last run that recovered.
# TYPE drillbot_last_rto_seconds gauge
drillbot_last_rto_seconds{drill="namespace-restore",scenario="namespace-restore"} 11.543
# HELP drillbot_last_rpo_seconds RPO measured by the drill's last run that measured it.
# TYPE drillbot_last_rpo_seconds gauge
drillbot_last_rpo_seconds{drill="namespace-restore",scenario="namespace-restore"} 9.006
# HELP drillbot_rto_target_seconds The drill's RTO target.
# TYPE drillbot_rto_target_seconds gauge
drillbot_rto_target_seconds{drill="namespace-restore",scenario="namespace-restore"} 1800
# HELP drillbot_runs_total Finished drill runs by verdict.
# TYPE drillbot_runs_total counter
drillbot_runs_total{drill="namespace-restore",scenario="namespace-restore",verdict="FAIL"} 0
drillbot_runs_total{drill="namespace-restore",scenario="namespace-restore",verdict="INCONCLUSIVE"} 0
drillbot_runs_total{drill="namespace-restore",scenario="namespace-restore",verdict="PASS"} 1
# HELP drillbot_last_run_verdict 1 for the verdict of the drill's last run, 0 for the others.
# TYPE drillbot_last_run_verdict gauge
drillbot_last_run_verdict{drill="namespace-restore",scenario="namespace-restore",verdict="FAIL"} 0
drillbot_last_run_verdict{drill="namespace-restore",scenario="namespace-restore",verdict="INCONCLUSIVE"} 0
drillbot_last_run_verdict{drill="namespace-restore",scenario="namespace-restore",verdict="PASS"} 1
# HELP drillbot_phase_duration_seconds Duration of each phase of the drill's last run.
# TYPE drillbot_phase_duration_seconds gauge
drillbot_phase_duration_seconds{drill="namespace-restore",phase="Recovering",scenario="namespace-restore"} 11.5
# HELP drillbot_active_faults Faults injected and not yet reverted (0 outside drills).
# TYPE drillbot_active_faults gauge
drillbot_active_faults{drill="namespace-restore",scenario="namespace-restore"} 0
# HELP drillbot_detection_seconds Time from the disaster to each expected alert firing, in the drill's last run (absent when it did not fire in time).
# TYPE drillbot_detection_seconds gauge
drillbot_detection_seconds{alert="KubeNamespaceDown",drill="namespace-restore",scenario="namespace-restore"} 4.25
# HELP drillbot_detections_missed_total Expected alerts that did not fire in time (or were silenced, or did not resolve).
# TYPE drillbot_detections_missed_total counter
drillbot_detections_missed_total{alert="ShopSLOBurn",drill="namespace-restore",scenario="namespace-restore"} 1
# HELP drillbot_notification_failures_total Notifications given up on after their retries.
# TYPE drillbot_notification_failures_total counter
drillbot_notification_failures_total{sink="slack"} 1
`
	names := []string{"drillbot_last_rto_seconds", "drillbot_last_rpo_seconds", "drillbot_rto_target_seconds", "drillbot_runs_total",
		"drillbot_last_run_verdict", "drillbot_phase_duration_seconds", "drillbot_active_faults", "drillbot_notification_failures_total",
		"drillbot_detection_seconds", "drillbot_detections_missed_total"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(reg, "drillbot_rto_seconds"); n != 1 {
		t.Errorf("RTO histogram has %d series", n)
	}
}

// TestStoppedRuns: a run held by a freeze window counts as stopped before,
// and keeps the last measured detection; one stopped mid-run counts as
// during.
func TestStoppedRuns(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	Feed(m)
	for _, st := range []*v1alpha1.Stop{{Kind: v1alpha1.StopFreezeWindow, Name: "year-end", Before: true}, {Kind: v1alpha1.StopAlert, Name: "EtcdDown{}"}} {
		m.Observe(context.Background(), engine.Event{Type: engine.EventFinished, Run: &v1alpha1.DrillRun{
			Spec:   v1alpha1.DrillRunSpec{Drill: "namespace-restore", Scenario: "namespace-restore"},
			Status: v1alpha1.DrillRunStatus{Phase: v1alpha1.PhaseCompleted, Verdict: v1alpha1.VerdictInconclusive, Stop: st}}})
		if st.Before {
			if n := testutil.CollectAndCount(reg, "drillbot_detection_seconds"); n != 1 {
				t.Errorf("a run that never started dropped the last detection (%d series)", n)
			}
		}
	}
	want := `
# HELP drillbot_runs_stopped_total Runs not started (when=before) or stopped (when=during) by a freeze window, a stop condition, a busy target, or unreadable alerts.
# TYPE drillbot_runs_stopped_total counter
drillbot_runs_stopped_total{drill="namespace-restore",kind="Alert",scenario="namespace-restore",when="before"} 0
drillbot_runs_stopped_total{drill="namespace-restore",kind="Alert",scenario="namespace-restore",when="during"} 1
drillbot_runs_stopped_total{drill="namespace-restore",kind="AlertsUnreadable",scenario="namespace-restore",when="before"} 0
drillbot_runs_stopped_total{drill="namespace-restore",kind="AlertsUnreadable",scenario="namespace-restore",when="during"} 0
drillbot_runs_stopped_total{drill="namespace-restore",kind="ExpectedAlertFiring",scenario="namespace-restore",when="before"} 0
drillbot_runs_stopped_total{drill="namespace-restore",kind="FreezeWindow",scenario="namespace-restore",when="before"} 1
drillbot_runs_stopped_total{drill="namespace-restore",kind="TargetBusy",scenario="namespace-restore",when="before"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "drillbot_runs_stopped_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(reg, "drillbot_detection_seconds"); n != 0 {
		t.Errorf("a run stopped mid-drill detected nothing, yet %d detection series remain", n)
	}
}

// TestPostureGauges: a check's count, and a restarted daemon's seed.
func TestPostureGauges(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	run := &v1alpha1.DrillRun{Spec: v1alpha1.DrillRunSpec{Drill: "signed-images", Scenario: "signed-images"},
		Status: v1alpha1.DrillRunStatus{Verdict: v1alpha1.VerdictFail, Posture: &v1alpha1.PostureMeasure{Compliant: 3, Total: 4, Of: "images"}}}
	m.Seed(run)
	want := `
# HELP drillbot_posture_compliant What the check's last run counted as keeping its promise (namespaces covered, images signed...).
# TYPE drillbot_posture_compliant gauge
drillbot_posture_compliant{drill="signed-images",scenario="signed-images"} 3
# HELP drillbot_posture_checked What the check's last run counted in all: namespaces, images... (the compliant share is drillbot_posture_compliant / drillbot_posture_checked).
# TYPE drillbot_posture_checked gauge
drillbot_posture_checked{drill="signed-images",scenario="signed-images"} 4
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "drillbot_posture_compliant", "drillbot_posture_checked"); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

func TestArchiveWrites(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	run := &v1alpha1.DrillRun{Spec: v1alpha1.DrillRunSpec{Drill: "d", Scenario: "pod-kill"}}
	m.Observe(context.Background(), engine.Event{Type: engine.EventArchiveFailed, Run: run})
	m.Observe(context.Background(), engine.Event{Type: engine.EventArchiveFailed, Run: run})
	m.Observe(context.Background(), engine.Event{Type: engine.EventArchived, Run: run})
	m.ArchivePending(2)
	want := `# HELP drillbot_archive_writes_total Writes of runs' evidence records to the archive, by result (ok, error; a failed write is retried).
# TYPE drillbot_archive_writes_total counter
drillbot_archive_writes_total{result="error"} 2
drillbot_archive_writes_total{result="ok"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "drillbot_archive_writes_total"); err != nil {
		t.Error(err)
	}
	pending := `# HELP drillbot_archive_pending_runs Finished runs whose evidence is not in the archive yet (0 when every run is archived; kept from pruning until then).
# TYPE drillbot_archive_pending_runs gauge
drillbot_archive_pending_runs 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(pending), "drillbot_archive_pending_runs"); err != nil {
		t.Error(err)
	}
	// An archive event is not a finished run.
	if n := testutil.CollectAndCount(reg, "drillbot_runs_total"); n != 0 {
		t.Errorf("drillbot_runs_total has %d series", n)
	}
}
