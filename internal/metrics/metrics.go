// Package metrics exports drillbot's Prometheus metrics. Labels are bounded:
// drill, scenario, verdict, phase; never run IDs.
package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
)

// Metrics are drillbot's collectors. It is an engine.Observer.
type Metrics struct {
	runs      *prometheus.CounterVec
	lastRTO   *prometheus.GaugeVec
	lastRPO   *prometheus.GaugeVec
	rtoTarget *prometheus.GaugeVec
	rpoTarget *prometheus.GaugeVec
	lastRun   *prometheus.GaugeVec
	lastPass  *prometheus.GaugeVec
	nextRun   *prometheus.GaugeVec
	active    *prometheus.GaugeVec
}

// New registers drillbot's metrics with reg.
func New(reg prometheus.Registerer) *Metrics {
	dl := []string{"drill", "scenario"}
	m := &Metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "drillbot_runs_total",
			Help: "Finished drill runs by verdict."}, append(dl, "verdict")),
		lastRTO: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "drillbot_last_rto_seconds",
			Help: "RTO measured by the drill's last run that recovered."}, dl),
		lastRPO: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "drillbot_last_rpo_seconds",
			Help: "RPO measured by the drill's last run that measured it."}, dl),
		rtoTarget: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "drillbot_rto_target_seconds",
			Help: "The drill's RTO target."}, dl),
		rpoTarget: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "drillbot_rpo_target_seconds",
			Help: "The drill's RPO target."}, dl),
		lastRun: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "drillbot_last_run_timestamp_seconds",
			Help: "When the drill's last run finished, as Unix time."}, dl),
		lastPass: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "drillbot_last_run_passed",
			Help: "1 when the drill's last run passed, 0 otherwise."}, dl),
		nextRun: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "drillbot_next_run_timestamp_seconds",
			Help: "When the drill is next scheduled, as Unix time."}, dl),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "drillbot_active_faults",
			Help: "Faults injected and not yet reverted (0 outside drills)."}, dl),
	}
	reg.MustRegister(m.runs, m.lastRTO, m.lastRPO, m.rtoTarget, m.rpoTarget, m.lastRun, m.lastPass, m.nextRun, m.active)
	return m
}

// Drill publishes a drill's targets.
func (m *Metrics) Drill(d drill.Definition) {
	m.rtoTarget.WithLabelValues(d.Name, d.Spec.Scenario).Set(d.RTO.Seconds())
	if d.RPO > 0 {
		m.rpoTarget.WithLabelValues(d.Name, d.Spec.Scenario).Set(d.RPO.Seconds())
	}
	m.active.WithLabelValues(d.Name, d.Spec.Scenario).Set(0)
}

// NextRun publishes a drill's next scheduled time.
func (m *Metrics) NextRun(d drill.Definition, next time.Time) {
	m.nextRun.WithLabelValues(d.Name, d.Spec.Scenario).Set(float64(next.Unix()))
}

// Observe implements engine.Observer.
func (m *Metrics) Observe(_ context.Context, ev engine.Event) {
	r := ev.Run
	l := []string{r.Spec.Drill, r.Spec.Scenario}
	active := 0
	for _, j := range r.Status.Journal {
		if j.State != v1alpha1.JournalReverted {
			active++
		}
	}
	m.active.WithLabelValues(l...).Set(float64(active))
	if ev.Type != engine.EventFinished {
		return
	}
	m.runs.WithLabelValues(r.Spec.Drill, r.Spec.Scenario, string(r.Status.Verdict)).Inc()
	if d, err := time.ParseDuration(r.Status.RTO); err == nil {
		m.lastRTO.WithLabelValues(l...).Set(d.Seconds())
	}
	if d, err := time.ParseDuration(r.Status.RPO); err == nil {
		m.lastRPO.WithLabelValues(l...).Set(d.Seconds())
	}
	if r.Status.FinishedAt != nil {
		m.lastRun.WithLabelValues(l...).Set(float64(r.Status.FinishedAt.Unix()))
	}
	pass := 0.0
	if r.Status.Verdict == v1alpha1.VerdictPass {
		pass = 1
	}
	m.lastPass.WithLabelValues(l...).Set(pass)
}
