package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/engine"
)

// printReport prints one finished run for people.
func printReport(w io.Writer, run *v1alpha1.DrillRun) {
	st := run.Status
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "\nDrillRun\t%s\t(kubectl -n %s describe drillrun %s)\n", run.Name, run.Namespace, run.Name)
	target := "target namespace " + run.Spec.Snapshot.Target.Namespace
	if run.Spec.Snapshot.Target.Namespace == "" {
		target = "a check (no target)"
	}
	fmt.Fprintf(tw, "Drill\t%s\tscenario %s, %s\n", run.Spec.Drill, run.Spec.Scenario, target)
	fmt.Fprintf(tw, "Verdict\t%s\t%s\n", st.Verdict, st.Reason)
	fmt.Fprintf(tw, "RTO\t%s\ttarget %s\n", orDash(st.RTO), orDash(st.RTOTarget))
	rpoNote := "target " + orDash(st.RPOTarget)
	if st.RPOSource != "" {
		rpoNote += ", from " + st.RPOSource
	}
	fmt.Fprintf(tw, "RPO\t%s\t%s\n", orDash(st.RPO), rpoNote)
	for _, d := range v1alpha1.DetectionLines(st.Detections) {
		fmt.Fprintf(tw, "Detection\t%s\n", d)
	}
	tw.Flush()
	if len(st.Breakdown) > 0 {
		fmt.Fprintln(w, "\nRTO breakdown (disaster -> recovered):")
		for _, s := range st.Breakdown {
			fmt.Fprintf(w, "  %-24s %s\n", s.Name, s.Duration)
		}
	}
	if len(st.Steps) > 0 {
		fmt.Fprintln(w, "\nPhases:")
		for _, s := range st.Steps {
			dur := "-"
			if s.FinishedAt != nil {
				dur = engine.FormatDuration(s.FinishedAt.Sub(s.StartedAt.Time))
			}
			line := fmt.Sprintf("  %-12s %10s", s.Phase, dur)
			if s.Error != "" {
				line += "  error: " + s.Error
			}
			fmt.Fprintln(w, line)
		}
	}
	if len(st.Journal) > 0 {
		fmt.Fprintln(w, "\nUndo journal:")
		for _, j := range st.Journal {
			fmt.Fprintf(w, "  %-22s %-12s %s\n", j.ID, j.State, j.Description)
		}
	}
	if len(st.Findings) > 0 {
		fmt.Fprintln(w, "\nFindings:")
		for _, f := range st.Findings {
			fmt.Fprintf(w, "  - %s\n", f)
		}
	}
	fmt.Fprintln(w, strings.Repeat("-", 72))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
