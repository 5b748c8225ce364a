package notify

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
)

// Summary is what every sink says about a run, in plain fields.
type Summary struct {
	Title    string
	Emoji    string
	Color    string
	Verdict  string
	Reason   string
	Drill    string
	Scenario string
	Target   string
	RTO      string // "11.5s / target 30m"
	RPO      string
	// Detection is each expected alert's time to detect, or its problem.
	Detection []string
	// Stop says why the run did not start or was stopped.
	Stop      string
	Breakdown []string
	Phases    []string
	Findings  []string
	Describe  string // the kubectl command that tells the whole story
	// OpenFault: the run's revert failed, its fault may still be active.
	// Every rendering says so first, and never cuts it.
	OpenFault bool
}

// Summarize turns a run into a Summary.
func Summarize(run *v1alpha1.DrillRun, kind Kind) Summary {
	st := run.Status
	s := Summary{
		Drill: run.Spec.Drill, Scenario: run.Spec.Scenario, Target: orNone(run.Spec.Snapshot.Target.Namespace),
		Verdict: string(st.Verdict), Reason: st.Reason, Findings: st.Findings,
		RTO:      vsTarget(st.RTO, st.RTOTarget),
		RPO:      vsTarget(st.RPO, st.RPOTarget),
		Describe: fmt.Sprintf("kubectl -n %s describe drillrun %s", run.Namespace, run.Name),
	}
	for _, b := range st.Breakdown {
		s.Breakdown = append(s.Breakdown, b.Name+" "+b.Duration)
	}
	s.Detection = v1alpha1.DetectionLines(st.Detections)
	if st.Stop != nil {
		s.Stop = string(st.Stop.Kind) + " " + st.Stop.Name
		if st.Stop.Before {
			s.Stop = "not started: " + s.Stop
		}
	}
	for _, p := range st.Steps {
		if p.FinishedAt != nil {
			s.Phases = append(s.Phases, fmt.Sprintf("%s %s", p.Phase, p.FinishedAt.Sub(p.StartedAt.Time).Round(time.Millisecond)))
		}
	}
	if kind == KindStarted {
		s.Emoji, s.Color, s.Verdict = ":hourglass_flowing_sand:", "#439fe0", "STARTED"
		s.Title = fmt.Sprintf("%s Drill %s started", s.Emoji, s.Drill)
		return s
	}
	if kind == KindReverted {
		s.Emoji, s.Color = ":recycle:", "#2eb67d"
		s.Title = fmt.Sprintf("%s Fault of drill %s reverted after its revert had failed (attempt %d); the run's verdict stays %s",
			s.Emoji, s.Drill, st.RevertAttempts, st.Verdict)
		return s
	}
	if kind == KindArchiveFailed {
		s.Emoji, s.Color = ":card_file_box:", "#ecb22e"
		why := "unknown error"
		if st.Archive != nil && st.Archive.LastError != "" {
			why = st.Archive.LastError
		}
		s.Title = fmt.Sprintf("%s Evidence of drill %s (%s) not archived: %s; drillbot retries, and keeps the run until it is archived",
			s.Emoji, s.Drill, st.Verdict, why)
		return s
	}
	switch st.Verdict {
	case v1alpha1.VerdictPass:
		s.Emoji, s.Color = ":white_check_mark:", "#2eb67d"
	case v1alpha1.VerdictInconclusive:
		s.Emoji, s.Color = ":warning:", "#ecb22e"
	default:
		s.Emoji, s.Color = ":rotating_light:", "#e01e5a"
	}
	s.Title = fmt.Sprintf("%s %s: drill %s", s.Emoji, s.Verdict, s.Drill)
	if st.Phase == v1alpha1.PhaseRevertFailed {
		// First, before the drill's name: a cut title keeps it.
		s.OpenFault = true
		s.Title = fmt.Sprintf("%s %s (revert failed; drillbot retries it): %s: drill %s", s.Emoji, openFaultText, s.Verdict, s.Drill)
	}
	return s
}

func vsTarget(measured, target string) string {
	if measured == "" {
		measured = "not measured"
	}
	if target == "" {
		return measured
	}
	return measured + " / target " + target
}

// Log is the sink used when no Slack is configured: it writes the report to
// the log, so the same facts reach someone.
type Log struct{ Logger *slog.Logger }

// Name implements Sink.
func (Log) Name() string { return "log" }

// Notify implements Sink.
func (l Log) Notify(ctx context.Context, run *v1alpha1.DrillRun, kind Kind) (bool, error) {
	s := Summarize(run, kind)
	level := slog.LevelInfo
	if kind == KindFinished && run.Status.Verdict != v1alpha1.VerdictPass {
		level = slog.LevelWarn
	}
	if run.Status.Phase == v1alpha1.PhaseRevertFailed {
		level = slog.LevelError
	}
	l.Logger.Log(ctx, level, "drill "+string(kind), "drill", s.Drill, "scenario", s.Scenario, "target", s.Target,
		"verdict", s.Verdict, "reason", s.Reason, "rto", s.RTO, "rpo", s.RPO, "detection", strings.Join(s.Detection, ", "), "stop", s.Stop,
		"breakdown", strings.Join(s.Breakdown, ", "), "phases", strings.Join(s.Phases, ", "), "findings", strings.Join(s.Findings, "; "), "run", run.Name)
	return false, nil
}

// orNone names the target of a check, which has none.
func orNone(ns string) string {
	if ns == "" {
		return "none (a check)"
	}
	return ns
}
