// Package metrics exports drillbot's Prometheus metrics. Labels are bounded:
// drill, scenario, verdict, phase, sink; never run IDs.
package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
)

var verdicts = []v1alpha1.Verdict{v1alpha1.VerdictPass, v1alpha1.VerdictFail, v1alpha1.VerdictInconclusive}

// stops are the (kind, when) pairs a run can be stopped by: held before it
// starts by any, stopped during it by an alert or unreadable alerts.
var stops = []struct {
	kind v1alpha1.StopKind
	when string
}{
	{v1alpha1.StopFreezeWindow, "before"}, {v1alpha1.StopAlert, "before"}, {v1alpha1.StopAlertsUnreadable, "before"},
	{v1alpha1.StopExpectedFiring, "before"}, {v1alpha1.StopTargetBusy, "before"}, {v1alpha1.StopAlert, "during"}, {v1alpha1.StopAlertsUnreadable, "during"},
}

// Metrics are drillbot's collectors. It is an engine.Observer.
type Metrics struct {
	runs          *prometheus.CounterVec
	rto           *prometheus.HistogramVec
	lastRTO       *prometheus.GaugeVec
	lastRPO       *prometheus.GaugeVec
	rtoTarget     *prometheus.GaugeVec
	rpoTarget     *prometheus.GaugeVec
	lastRun       *prometheus.GaugeVec
	lastVerdict   *prometheus.GaugeVec
	phase         *prometheus.GaugeVec
	nextRun       *prometheus.GaugeVec
	active        *prometheus.GaugeVec
	faultExpiry   *prometheus.GaugeVec
	lastSuccess   *prometheus.GaugeVec
	notifyFailure *prometheus.CounterVec
	detection     *prometheus.GaugeVec
	missed        *prometheus.CounterVec
	stopped       *prometheus.CounterVec
	postureOK     *prometheus.GaugeVec
	postureTotal  *prometheus.GaugeVec
	archiveWrites *prometheus.CounterVec
	archiveLag    prometheus.Gauge
}

// New registers drillbot's metrics with reg.
func New(reg prometheus.Registerer) *Metrics {
	dl := []string{"drill", "scenario"}
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, append(append([]string{}, dl...), labels...))
	}
	m := &Metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "drillbot_runs_total",
			Help: "Finished drill runs by verdict."}, append(dl, "verdict")),
		rto: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "drillbot_rto_seconds",
			Help:    "Measured RTO of runs that recovered.",
			Buckets: []float64{5, 15, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200}}, dl),
		lastRTO:     gauge("drillbot_last_rto_seconds", "RTO measured by the drill's last run that recovered."),
		lastRPO:     gauge("drillbot_last_rpo_seconds", "RPO measured by the drill's last run that measured it."),
		rtoTarget:   gauge("drillbot_rto_target_seconds", "The drill's RTO target."),
		rpoTarget:   gauge("drillbot_rpo_target_seconds", "The drill's RPO target."),
		lastRun:     gauge("drillbot_last_run_timestamp_seconds", "When the drill's last run finished, as Unix time."),
		lastVerdict: gauge("drillbot_last_run_verdict", "1 for the verdict of the drill's last run, 0 for the others.", "verdict"),
		phase:       gauge("drillbot_phase_duration_seconds", "Duration of each phase of the drill's last run.", "phase"),
		nextRun:     gauge("drillbot_next_run_timestamp_seconds", "When the drill is next scheduled, as Unix time."),
		active:      gauge("drillbot_active_faults", "Faults injected and not yet reverted (0 outside drills)."),
		faultExpiry: gauge("drillbot_fault_expiry_timestamp_seconds", "When the drill's earliest unreverted fault must be reverted by, as Unix time (0 when none is active)."),
		lastSuccess: gauge("drillbot_last_success_timestamp_seconds", "When the drill's last PASS finished, as Unix time."),
		notifyFailure: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "drillbot_notification_failures_total",
			Help: "Notifications given up on after their retries."}, []string{"sink"}),
		detection: gauge("drillbot_detection_seconds", "Time from the disaster to each expected alert firing, in the drill's last run (absent when it did not fire in time).", "alert"),
		missed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "drillbot_detections_missed_total",
			Help: "Expected alerts that did not fire in time (or were silenced, or did not resolve)."}, append(append([]string{}, dl...), "alert")),
		postureOK:    gauge("drillbot_posture_compliant", "What the check's last run counted as keeping its promise (namespaces covered, images signed...)."),
		postureTotal: gauge("drillbot_posture_checked", "What the check's last run counted in all: namespaces, images... (the compliant share is drillbot_posture_compliant / drillbot_posture_checked)."),
		stopped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "drillbot_runs_stopped_total",
			Help: "Runs not started (when=before) or stopped (when=during) by a freeze window, a stop condition, a busy target, or unreadable alerts."}, append(append([]string{}, dl...), "kind", "when")),
		archiveWrites: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "drillbot_archive_writes_total",
			Help: "Writes of runs' evidence records to the archive, by result (ok, error; a failed write is retried)."}, []string{"result"}),
		archiveLag: prometheus.NewGauge(prometheus.GaugeOpts{Name: "drillbot_archive_pending_runs",
			Help: "Finished runs whose evidence is not in the archive yet (0 when every run is archived; kept from pruning until then)."}),
	}
	m.archiveWrites.WithLabelValues("ok")
	m.archiveWrites.WithLabelValues("error")
	reg.MustRegister(m.runs, m.rto, m.lastRTO, m.lastRPO, m.rtoTarget, m.rpoTarget, m.lastRun, m.lastVerdict,
		m.phase, m.nextRun, m.active, m.faultExpiry, m.lastSuccess, m.notifyFailure, m.detection, m.missed, m.stopped,
		m.postureOK, m.postureTotal, m.archiveWrites, m.archiveLag)
	return m
}

// ArchivePending sets how many finished runs are not archived yet.
func (m *Metrics) ArchivePending(n int) { m.archiveLag.Set(float64(n)) }

// Drill publishes a drill's targets.
func (m *Metrics) Drill(d drill.Definition) {
	m.rtoTarget.WithLabelValues(d.Name, d.Spec.Scenario).Set(d.RTO.Seconds())
	if d.RPO > 0 {
		m.rpoTarget.WithLabelValues(d.Name, d.Spec.Scenario).Set(d.RPO.Seconds())
	}
	m.active.WithLabelValues(d.Name, d.Spec.Scenario).Set(0)
	m.faultExpiry.WithLabelValues(d.Name, d.Spec.Scenario).Set(0)
	// Counters and the histogram start at 0, so the first run is an
	// increase (a series born at 1 has none: increase() and rate() would
	// miss it).
	m.rto.WithLabelValues(d.Name, d.Spec.Scenario)
	for _, v := range verdicts {
		m.runs.WithLabelValues(d.Name, d.Spec.Scenario, string(v))
	}
	for _, x := range d.Alerts.Expect {
		m.missed.WithLabelValues(d.Name, d.Spec.Scenario, x.String())
	}
	for _, st := range stops {
		m.stopped.WithLabelValues(d.Name, d.Spec.Scenario, string(st.kind), st.when)
	}
}

// earliestExpiry is the earliest deadline of the run's unreverted faults, 0
// when none is active.
func earliestExpiry(r *v1alpha1.DrillRun) float64 {
	var out float64
	for _, j := range r.Status.Journal {
		if j.State == v1alpha1.JournalReverted || j.ExpiresAt == nil {
			continue
		}
		if t := float64(j.ExpiresAt.UnixMicro()) / 1e6; out == 0 || t < out {
			out = t
		}
	}
	return out
}

// Faults sets the active-fault gauges from a run's journal: a daemon calls
// it for every event of a run, and at start for every run not Completed, so
// a fault whose revert failed stays visible across restarts.
func (m *Metrics) Faults(r *v1alpha1.DrillRun) {
	l := []string{r.Spec.Drill, r.Spec.Scenario}
	m.active.WithLabelValues(l...).Set(float64(r.Status.OpenFaults()))
	m.faultExpiry.WithLabelValues(l...).Set(earliestExpiry(r))
}

// SeedSuccess sets the last-success gauge from a PASS run.
func (m *Metrics) SeedSuccess(r *v1alpha1.DrillRun) {
	if r.Status.Verdict == v1alpha1.VerdictPass && r.Status.FinishedAt != nil {
		m.lastSuccess.WithLabelValues(r.Spec.Drill, r.Spec.Scenario).Set(float64(r.Status.FinishedAt.UnixMicro()) / 1e6)
	}
}

// NextRun publishes a drill's next scheduled time.
func (m *Metrics) NextRun(d drill.Definition, next time.Time) {
	m.nextRun.WithLabelValues(d.Name, d.Spec.Scenario).Set(float64(next.Unix()))
}

// NotificationFailed counts a notification given up on.
func (m *Metrics) NotificationFailed(sink string) { m.notifyFailure.WithLabelValues(sink).Inc() }

// NotificationSink exports the sink's failure counter at 0, so "no
// failures" is a 0 on the dashboard, not an empty panel.
func (m *Metrics) NotificationSink(sink string) { m.notifyFailure.WithLabelValues(sink) }

// Observe implements engine.Observer.
func (m *Metrics) Observe(_ context.Context, ev engine.Event) {
	r := ev.Run
	l := []string{r.Spec.Drill, r.Spec.Scenario}
	switch ev.Type {
	case engine.EventArchived:
		m.archiveWrites.WithLabelValues("ok").Inc()
		return
	case engine.EventArchiveFailed:
		m.archiveWrites.WithLabelValues("error").Inc()
		return
	}
	m.Faults(r)
	if ev.Type != engine.EventFinished {
		return
	}
	m.runs.WithLabelValues(r.Spec.Drill, r.Spec.Scenario, string(r.Status.Verdict)).Inc()
	for _, d := range r.Status.Detections {
		if d.Problem != "" {
			m.missed.WithLabelValues(r.Spec.Drill, r.Spec.Scenario, d.Alert).Inc()
		}
	}
	if st := r.Status.Stop; st != nil {
		when := "during"
		if st.Before {
			when = "before"
		}
		m.stopped.WithLabelValues(r.Spec.Drill, r.Spec.Scenario, string(st.Kind), when).Inc()
	}
	if d, err := time.ParseDuration(r.Status.RTO); err == nil {
		m.rto.WithLabelValues(l...).Observe(d.Seconds())
	}
	m.Seed(r)
}

// Seed sets the last-run gauges from a finished run recorded in the cluster,
// so a restarted daemon still shows the last results. Counters and the
// histogram are left alone: they count what this process saw.
func (m *Metrics) Seed(r *v1alpha1.DrillRun) {
	l := []string{r.Spec.Drill, r.Spec.Scenario}
	if d, err := time.ParseDuration(r.Status.RTO); err == nil {
		m.lastRTO.WithLabelValues(l...).Set(d.Seconds())
	}
	if d, err := time.ParseDuration(r.Status.RPO); err == nil {
		m.lastRPO.WithLabelValues(l...).Set(d.Seconds())
	}
	if r.Status.FinishedAt != nil {
		m.lastRun.WithLabelValues(l...).Set(float64(r.Status.FinishedAt.UnixMicro()) / 1e6)
	}
	if p := r.Status.Posture; p != nil {
		m.postureOK.WithLabelValues(l...).Set(float64(p.Compliant))
		m.postureTotal.WithLabelValues(l...).Set(float64(p.Total))
	}
	m.SeedSuccess(r)
	if r.Status.Stop == nil || !r.Status.Stop.Before {
		// A run that never started detected nothing: the last detection
		// stays the last measured one.
		m.detection.DeletePartialMatch(prometheus.Labels{"drill": r.Spec.Drill, "scenario": r.Spec.Scenario})
		for _, d := range r.Status.Detections {
			if v, err := time.ParseDuration(d.Detection); err == nil && d.FiredAt != nil {
				m.detection.WithLabelValues(r.Spec.Drill, r.Spec.Scenario, d.Alert).Set(v.Seconds())
			}
		}
	}
	for _, v := range verdicts {
		val := 0.0
		if r.Status.Verdict == v {
			val = 1
		}
		m.lastVerdict.WithLabelValues(r.Spec.Drill, r.Spec.Scenario, string(v)).Set(val)
	}
	m.phase.DeletePartialMatch(prometheus.Labels{"drill": r.Spec.Drill, "scenario": r.Spec.Scenario})
	for _, s := range r.Status.Steps {
		if s.FinishedAt != nil {
			m.phase.WithLabelValues(r.Spec.Drill, r.Spec.Scenario, string(s.Phase)).Set(s.FinishedAt.Sub(s.StartedAt.Time).Seconds())
		}
	}
}
