// Package report builds the DR status report from recorded DrillRuns: per
// drill the last runs with verdict and RTO/RPO against target, the RTO trend,
// RTO and RPO regressions over every run given (regression.go), the age of
// the last successful backup for Velero drills, and overall compliance.
// Markdown output is meant to be pasted as audit evidence.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
)

// Report is the whole report.
type Report struct {
	GeneratedAt time.Time `json:"generatedAt"`
	// Source is where the runs come from: the cluster, or an archive.
	Source     string `json:"source"`
	WindowDays int    `json:"windowDays"`
	ComplianceShare
	Drills []DrillReport `json:"drills"`
	// Posture is the hardening plan's results table, from the newest run of
	// each check and restore drill.
	Posture []Posture `json:"posture,omitempty"`
	// RTOTable is the runbook's RTO/RPO table from measurements.
	RTOTable []RTORow `json:"rtoTable,omitempty"`
}

// ComplianceShare is the share of drills, in percent, whose newest run
// within the window passed.
type ComplianceShare struct {
	Compliance      float64 `json:"compliancePercent"`
	CompliantDrills int     `json:"compliantDrills"`
	TotalDrills     int     `json:"totalDrills"`
}

// count adds one drill.
func (c *ComplianceShare) count(compliant bool) {
	c.TotalDrills++
	if compliant {
		c.CompliantDrills++
	}
	c.Compliance = 100 * float64(c.CompliantDrills) / float64(c.TotalDrills)
}

// DrillReport is one drill's history.
type DrillReport struct {
	Name      string `json:"name"`
	Scenario  string `json:"scenario"`
	RTOTarget string `json:"rtoTarget,omitempty"`
	RPOTarget string `json:"rpoTarget,omitempty"`
	Compliant bool   `json:"compliant"`
	// Status explains Compliant in words.
	Status string `json:"status"`
	// Trend compares the RTO of the two newest runs that measured one.
	Trend string `json:"trend"`
	// LastBackupAge is the age of the newest Completed backup, for Velero drills.
	LastBackupAge string `json:"lastBackupAge,omitempty"`
	// OpenFaults names the drill's runs whose revert failed: their faults
	// may still be active.
	OpenFaults []string `json:"openFaults,omitempty"`
	// Regressions are the RTO and RPO regression findings, from all the
	// drill's runs given to Build: the p95 of the newest runs against the
	// median of the earlier ones (see regressionPercent).
	Regressions []string `json:"regressions,omitempty"`
	// Unarchived names the drill's finished runs whose evidence is not in
	// the archive yet, with the last write's error (drillbot serve
	// --archive retries it).
	Unarchived []string `json:"unarchived,omitempty"`
	Runs       []RunRow `json:"runs"`
}

// RunRow is one run.
type RunRow struct {
	Name     string           `json:"name"`
	Finished time.Time        `json:"finished"`
	Verdict  v1alpha1.Verdict `json:"verdict"`
	RTO      string           `json:"rto,omitempty"`
	RPO      string           `json:"rpo,omitempty"`
	// Detection is each expected alert's time to detect (or its problem).
	Detection []string `json:"detection,omitempty"`
	Reason    string   `json:"reason,omitempty"`
	// FaultActive: the run's revert failed and has not succeeded since.
	FaultActive bool `json:"faultActive,omitempty"`
}

// Options shape the report.
type Options struct {
	Now        time.Time
	WindowDays int // default 30
	LastN      int // runs per drill, default 5
	// Drills are the drills to report on (the catalog); drills that only
	// appear in runs are added. A catalog drill without runs is not compliant.
	Drills []DrillInfo
	// Source says where the runs come from (default: the DrillRun records
	// in the cluster).
	Source string
	// BackupTimes are the newest Completed backup times per drill name.
	BackupTimes map[string]time.Time
}

// DrillInfo names a catalog drill and its targets.
type DrillInfo struct{ Name, Scenario, RTOTarget, RPOTarget string }

// Build builds the report from finished runs.
func Build(runs []v1alpha1.DrillRun, o Options) Report {
	if o.WindowDays == 0 {
		o.WindowDays = 30
	}
	if o.LastN == 0 {
		o.LastN = 5
	}
	byDrill := map[string]*DrillReport{}
	var order []string
	add := func(d DrillInfo) *DrillReport {
		if r, ok := byDrill[d.Name]; ok {
			return r
		}
		r := &DrillReport{Name: d.Name, Scenario: d.Scenario, RTOTarget: d.RTOTarget, RPOTarget: d.RPOTarget}
		byDrill[d.Name] = r
		order = append(order, d.Name)
		return r
	}
	for _, d := range o.Drills {
		add(d)
	}
	// Runs with a verdict: Completed, and RevertFailed (decided, but a
	// fault may still be active).
	finished := make([]v1alpha1.DrillRun, 0, len(runs))
	for _, r := range runs {
		if (r.Status.Phase == v1alpha1.PhaseCompleted || r.Status.Phase == v1alpha1.PhaseRevertFailed) && r.Status.FinishedAt != nil {
			finished = append(finished, r)
		}
	}
	sort.Slice(finished, func(i, j int) bool { return finished[i].Status.FinishedAt.After(finished[j].Status.FinishedAt.Time) })
	newest := map[string]v1alpha1.DrillRun{}
	lastRuns := map[string][]v1alpha1.DrillRun{}
	allRuns := map[string][]v1alpha1.DrillRun{} // every run, for regressions
	name := drillNames(finished)
	for _, r := range finished {
		n := name(r)
		allRuns[n] = append(allRuns[n], r)
		if _, ok := newest[n]; !ok {
			newest[n] = r
		}
		if len(lastRuns[n]) < o.LastN {
			lastRuns[n] = append(lastRuns[n], r)
		}
		d := add(DrillInfo{Name: n, Scenario: r.Spec.Scenario, RTOTarget: r.Status.RTOTarget, RPOTarget: r.Status.RPOTarget})
		if a := r.Status.Archive; a != nil && !r.Status.Archived() && a.LastError != "" {
			d.Unarchived = append(d.Unarchived, fmt.Sprintf("NOT ARCHIVED: %s (%d attempts, retried): %s", r.Name, a.Attempts, a.LastError))
		}
		open := r.Status.Phase == v1alpha1.PhaseRevertFailed
		if open {
			d.OpenFaults = append(d.OpenFaults, r.Name)
		}
		if len(d.Runs) < o.LastN {
			d.Runs = append(d.Runs, RunRow{Name: r.Name, Finished: r.Status.FinishedAt.Time, Verdict: r.Status.Verdict,
				RTO: r.Status.RTO, RPO: r.Status.RPO, Detection: v1alpha1.DetectionLines(r.Status.Detections), Reason: r.Status.Reason, FaultActive: open})
		}
	}
	rep := Report{GeneratedAt: o.Now, WindowDays: o.WindowDays, Source: o.Source}
	if rep.Source == "" {
		rep.Source = "the DrillRun records in the cluster"
	}
	since := o.Now.AddDate(0, 0, -o.WindowDays)
	sort.Strings(order)
	for _, name := range order {
		d := byDrill[name]
		switch {
		case len(d.OpenFaults) > 0:
			d.Status = "FAULT MAY STILL BE ACTIVE: revert failed in " + strings.Join(d.OpenFaults, ", ")
		case len(d.Runs) == 0:
			d.Status = "never run"
		case d.Runs[0].Finished.Before(since) && d.Runs[0].Verdict == v1alpha1.VerdictPass:
			// Evidence has an age: a pass older than the window has expired.
			d.Status = fmt.Sprintf("expired: last run passed %d days ago (window %d days)", int(o.Now.Sub(d.Runs[0].Finished).Hours()/24), o.WindowDays)
		case d.Runs[0].Finished.Before(since):
			d.Status = fmt.Sprintf("no run in the last %d days", o.WindowDays)
		case d.Runs[0].Verdict == v1alpha1.VerdictPass:
			d.Compliant, d.Status = true, "last run passed"
		default:
			d.Status = "last run " + string(d.Runs[0].Verdict)
		}
		d.Trend = trend(d.Runs)
		d.Regressions = regressions(allRuns[name], isCheck(d.Scenario))
		if t, ok := o.BackupTimes[name]; ok {
			d.LastBackupAge = o.Now.Sub(t).Round(time.Second).String()
		}
		rep.count(d.Compliant)
		rep.Drills = append(rep.Drills, *d)
	}
	rep.Posture = posture(newest, rep.Drills, since)
	rep.RTOTable = rtoTable(lastRuns, rep.Drills)
	return rep
}

// drillNames names a run's drill in the report: its drill, or, when the
// runs come from more than one cluster (an archive's, labelled
// v1alpha1.LabelCluster), "cluster/drill": two clusters' drills of one
// name are two drills, never one.
func drillNames(runs []v1alpha1.DrillRun) func(v1alpha1.DrillRun) string {
	clusters := map[string]bool{}
	for _, r := range runs {
		clusters[r.Labels[v1alpha1.LabelCluster]] = true
	}
	if len(clusters) < 2 {
		return func(r v1alpha1.DrillRun) string { return r.Spec.Drill }
	}
	return func(r v1alpha1.DrillRun) string { return r.Labels[v1alpha1.LabelCluster] + "/" + r.Spec.Drill }
}

// trend compares the RTO of the two newest runs that measured one.
func trend(runs []RunRow) string {
	var rtos []time.Duration
	for _, r := range runs {
		if d, err := time.ParseDuration(r.RTO); err == nil {
			rtos = append(rtos, d)
		}
		if len(rtos) == 2 {
			break
		}
	}
	if len(rtos) < 2 {
		return "n/a"
	}
	newest, previous := rtos[0], rtos[1]
	switch delta := newest - previous; {
	case delta > previous/10:
		return "worse (RTO " + previous.String() + " -> " + newest.String() + ")"
	case -delta > previous/10:
		return "better (RTO " + previous.String() + " -> " + newest.String() + ")"
	default:
		return "steady"
	}
}

// Write renders the report as table, json, markdown or html.
func Write(w io.Writer, rep Report, format string) error {
	if format == "html" {
		return HTML(w, rep)
	}
	return write(w, rep, format, func() error { return markdown(w, rep) }, func() error { return table(w, rep) })
}

// write renders v as indented JSON, or with its markdown or table writer.
func write(w io.Writer, v any, format string, markdown, table func() error) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "markdown":
		return markdown()
	case "table", "":
		return table()
	}
	return fmt.Errorf("unknown report format %q (table, json, markdown)", format)
}

func table(w io.Writer, rep Report) error {
	fmt.Fprintf(w, "DR drill report, %s. Compliance (last %d days): %.0f%% (%d of %d drills)\n\n",
		rep.GeneratedAt.UTC().Format(time.RFC3339), rep.WindowDays, rep.Compliance, rep.CompliantDrills, rep.TotalDrills)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DRILL\tSCENARIO\tSTATUS\tRTO TARGET\tRPO TARGET\tTREND\tLAST BACKUP AGE")
	for _, d := range rep.Drills {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Name, d.Scenario, d.Status, dash(d.RTOTarget), dash(d.RPOTarget), d.Trend, dash(d.LastBackupAge))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var pb strings.Builder
	postureTable(&pb, rep)
	if _, err := io.WriteString(w, pb.String()); err != nil {
		return err
	}
	for _, d := range rep.Drills {
		if len(d.Runs) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s:\n", d.Name)
		for _, g := range append(d.Unarchived, d.Regressions...) {
			fmt.Fprintf(w, "  %s\n", g)
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  FINISHED\tVERDICT\tRTO\tRPO\tDETECTION\tRUN\tREASON")
		for _, r := range d.Runs {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Finished.UTC().Format("2006-01-02 15:04"), r.Verdict, dash(r.RTO), dash(r.RPO),
				dash(strings.Join(r.Detection, "; ")), r.Name, r.Reason)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func markdown(w io.Writer, rep Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Disaster-recovery drill report\n\nGenerated %s by drillbot from %s.\n\n",
		rep.GeneratedAt.UTC().Format(time.RFC3339), rep.Source)
	fmt.Fprintf(&b, "**Compliance (last %d days): %.0f%%** (%d of %d drills: newest run in the window passed)\n\n",
		rep.WindowDays, rep.Compliance, rep.CompliantDrills, rep.TotalDrills)
	b.WriteString("| Drill | Scenario | Status | RTO target | RPO target | Trend | Last backup age |\n|---|---|---|---|---|---|---|\n")
	for _, d := range rep.Drills {
		fmt.Fprintf(&b, "| %s | %s | %s %s | %s | %s | %s | %s |\n", d.Name, d.Scenario, mark(d.Compliant), d.Status,
			dash(d.RTOTarget), dash(d.RPOTarget), d.Trend, dash(d.LastBackupAge))
	}
	postureMarkdown(&b, rep)
	for _, d := range rep.Drills {
		if len(d.Runs) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n## %s\n\n", d.Name)
		for _, g := range append(d.Unarchived, d.Regressions...) {
			fmt.Fprintf(&b, "**%s**\n\n", g)
		}
		b.WriteString("| Finished (UTC) | Verdict | RTO | RPO | Detection | DrillRun | Reason |\n|---|---|---|---|---|---|---|\n")
		for _, r := range d.Runs {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | `%s` | %s |\n", r.Finished.UTC().Format("2006-01-02 15:04"), r.Verdict,
				dash(r.RTO), dash(r.RPO), strings.ReplaceAll(dash(strings.Join(r.Detection, "; ")), "|", "\\|"), r.Name, strings.ReplaceAll(r.Reason, "|", "\\|"))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func mark(ok bool) string {
	if ok {
		return "✅"
	}
	return "❌"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
