package report

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
)

// Cluster is one cluster's report, or why there is none.
type Cluster struct {
	Name string `json:"name"`
	// Error says why the cluster could not be read: its drills are then
	// unknown, and the fleet is not compliant.
	Error  string  `json:"error,omitempty"`
	Report *Report `json:"report,omitempty"`
}

// Fleet is the DR report across clusters.
type Fleet struct {
	GeneratedAt time.Time `json:"generatedAt"`
	// WindowDays is the freshness: a pass older than this has expired.
	WindowDays int `json:"windowDays"`
	// The share is over every reachable cluster's drills.
	ComplianceShare
	// Unreachable names the clusters that could not be read: their drills
	// count for nothing, so a fleet with one is never fully compliant.
	Unreachable []string   `json:"unreachable,omitempty"`
	Rows        []FleetRow `json:"rows"`
	Clusters    []Cluster  `json:"clusters"`
}

// FleetRow is one drill in one cluster: its newest run.
type FleetRow struct {
	Cluster   string           `json:"cluster"`
	Drill     string           `json:"drill"`
	Scenario  string           `json:"scenario"`
	Verdict   v1alpha1.Verdict `json:"verdict,omitempty"`
	Finished  *time.Time       `json:"finished,omitempty"`
	Compliant bool             `json:"compliant"`
	Status    string           `json:"status"`
}

// BuildFleet joins per-cluster reports (built with the same window) into
// the fleet's.
func BuildFleet(clusters []Cluster, now time.Time, windowDays int) Fleet {
	f := Fleet{GeneratedAt: now, WindowDays: windowDays, Clusters: clusters}
	sort.SliceStable(f.Clusters, func(i, j int) bool { return f.Clusters[i].Name < f.Clusters[j].Name })
	for _, c := range f.Clusters {
		if c.Report == nil {
			f.Unreachable = append(f.Unreachable, c.Name)
			f.Rows = append(f.Rows, FleetRow{Cluster: c.Name, Status: "UNREACHABLE: " + c.Error})
			continue
		}
		for _, d := range c.Report.Drills {
			row := FleetRow{Cluster: c.Name, Drill: d.Name, Scenario: d.Scenario, Compliant: d.Compliant, Status: d.Status}
			if len(d.Runs) > 0 {
				fin := d.Runs[0].Finished
				row.Verdict, row.Finished = d.Runs[0].Verdict, &fin
			}
			f.Rows = append(f.Rows, row)
			f.count(d.Compliant)
		}
	}
	return f
}

// WriteFleet renders the fleet report as table, json or markdown.
func WriteFleet(w io.Writer, f Fleet, format string) error {
	return write(w, f, format, func() error { return fleetMarkdown(w, f) }, func() error { return fleetTable(w, f) })
}

func (f Fleet) headline() string {
	s := fmt.Sprintf("Fleet compliance (last %d days): %.0f%% (%d of %d drills in %d clusters)",
		f.WindowDays, f.Compliance, f.CompliantDrills, f.TotalDrills, len(f.Clusters)-len(f.Unreachable))
	if len(f.Unreachable) > 0 {
		s += fmt.Sprintf("; NOT READ: %s (their drills are unknown)", strings.Join(f.Unreachable, ", "))
	}
	return s
}

func finished(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

func fleetTable(w io.Writer, f Fleet) error {
	fmt.Fprintf(w, "DR drill fleet report, %s. %s\n\n", f.GeneratedAt.UTC().Format(time.RFC3339), f.headline())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tDRILL\tSCENARIO\tNEWEST\tFINISHED\tSTATUS")
	for _, r := range f.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Cluster, dash(r.Drill), dash(r.Scenario), dash(string(r.Verdict)), finished(r.Finished), r.Status)
	}
	return tw.Flush()
}

func fleetMarkdown(w io.Writer, f Fleet) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Disaster-recovery drill fleet report\n\nGenerated %s by drillbot from the DrillRun records in each cluster.\n\n**%s**\n\n",
		f.GeneratedAt.UTC().Format(time.RFC3339), f.headline())
	b.WriteString("| Cluster | Drill | Scenario | Newest run | Finished (UTC) | Status |\n|---|---|---|---|---|---|\n")
	for _, r := range f.Rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s %s |\n", r.Cluster, dash(r.Drill), dash(r.Scenario), dash(string(r.Verdict)),
			finished(r.Finished), mark(r.Compliant), strings.ReplaceAll(r.Status, "|", "\\|"))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
