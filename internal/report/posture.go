package report

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
)

// Posture is one of the hardening plan's results, as the newest run of a
// check (or a restore drill) measured it.
type Posture struct {
	// Result is the plan's promise in its words.
	Result string `json:"result"`
	Drill  string `json:"drill"`
	// Verdict is the newest run's ("" when never run); Expired when that
	// run is older than the window.
	Verdict v1alpha1.Verdict `json:"verdict,omitempty"`
	Expired bool             `json:"expired,omitempty"`
	// Measured is what the run found (its share, provider, RPO...).
	Measured string    `json:"measured"`
	Finished time.Time `json:"finished,omitzero"`
}

// promises are the plan's results per scenario kind, and the finding that
// measures each (its prefix).
var promises = map[string]struct{ result, finding string }{
	"backup-coverage":    {"Backups of the selected namespaces within their RPO", "backup coverage:"},
	"pod-security-audit": {"Pod Security enforced, no violating pods", "Pod Security compliance:"},
	"encryption-at-rest": {"Secrets encrypted at rest in etcd", ""},
	"signed-images":      {"Signed images running", "signed images:"},
	"namespace-restore":  {"Namespace restore (RTO/RPO tested)", ""},
	"failover-restore":   {"Regional failover restore (RTO/RPO tested)", ""},
}

// isCheck says whether a scenario kind is a check, whose RTO is only how
// long it took.
func isCheck(scenario string) bool {
	_, posture := promises[scenario]
	return posture && scenario != "namespace-restore" && scenario != "failover-restore"
}

// RTORow is a row of the runbook's RTO/RPO table, regenerated from the
// last runs: target against measured p95, and what to do when missed.
type RTORow struct {
	Drill     string `json:"drill"`
	Scenario  string `json:"scenario"`
	RTOTarget string `json:"rtoTarget,omitempty"`
	RTOP95    string `json:"rtoP95,omitempty"`
	RPOTarget string `json:"rpoTarget,omitempty"`
	RPOP95    string `json:"rpoP95,omitempty"`
	// Runs is how many runs measured the RTO.
	Runs int `json:"runs"`
	// Suggestion says what to change where a target is not met.
	Suggestion string `json:"suggestion,omitempty"`
}

// posture builds the plan's results table from the newest run of each
// drill of a posture kind.
func posture(newest map[string]v1alpha1.DrillRun, drills []DrillReport, since time.Time) []Posture {
	var out []Posture
	for _, d := range drills {
		p, ok := promises[d.Scenario]
		if !ok {
			continue
		}
		row := Posture{Result: p.result, Drill: d.Name, Measured: "never run"}
		if r, ok := newest[d.Name]; ok {
			row.Verdict, row.Finished = r.Status.Verdict, r.Status.FinishedAt.Time
			row.Expired = row.Finished.Before(since)
			row.Measured = measured(r, p.finding)
		}
		out = append(out, row)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Result < out[j].Result })
	return out
}

// measured is the run's own account: the finding that measures the
// promise, the provider found, the restore's RTO/RPO, or why it failed.
func measured(r v1alpha1.DrillRun, finding string) string {
	st := r.Status
	if finding != "" {
		if i := slices.IndexFunc(st.Findings, func(f string) bool { return strings.HasPrefix(f, finding) }); i >= 0 {
			return strings.TrimSpace(strings.TrimPrefix(st.Findings[i], finding))
		}
	}
	if r.Spec.Scenario == "encryption-at-rest" && st.Verdict == v1alpha1.VerdictPass {
		for _, f := range st.Findings {
			if strings.Contains(f, "encrypted") {
				return f
			}
		}
	}
	if st.Verdict != v1alpha1.VerdictPass {
		return st.Reason
	}
	var parts []string
	if st.RTO != "" && r.Spec.Scenario != "backup-coverage" {
		parts = append(parts, "RTO "+st.RTO)
	}
	if st.RPO != "" {
		parts = append(parts, "RPO "+st.RPO)
	}
	return strings.Join(parts, ", ")
}

// rtoTable is the runbook's RTO/RPO table from the last runs of each
// drill that measured an RTO (checks, whose RTO is the check's duration,
// are left out).
func rtoTable(runs map[string][]v1alpha1.DrillRun, drills []DrillReport) []RTORow {
	var out []RTORow
	for _, d := range drills {
		if isCheck(d.Scenario) {
			continue
		}
		row := RTORow{Drill: d.Name, Scenario: d.Scenario, RTOTarget: d.RTOTarget, RPOTarget: d.RPOTarget}
		var rtos, rpos []time.Duration
		for _, r := range runs[d.Name] {
			if v, err := time.ParseDuration(r.Status.RTO); err == nil {
				rtos = append(rtos, v)
			}
			if v, err := time.ParseDuration(r.Status.RPO); err == nil {
				rpos = append(rpos, v)
			}
		}
		row.Runs = len(rtos)
		var advice []string
		if p, ok := p95(rtos); ok {
			row.RTOP95 = p.String()
			if t, err := time.ParseDuration(d.RTOTarget); err == nil && p > t {
				advice = append(advice, fmt.Sprintf("RTO p95 %s is over the %s target: speed up recovery, or set the runbook's RTO to at least %s", p, d.RTOTarget, roundUp(p)))
			}
		}
		if p, ok := p95(rpos); ok {
			row.RPOP95 = p.String()
			if t, err := time.ParseDuration(d.RPOTarget); err == nil && p > t {
				advice = append(advice, fmt.Sprintf("RPO p95 %s is over the %s target: back up more often, or set the runbook's RPO to at least %s", p, d.RPOTarget, roundUp(p)))
			}
		}
		if row.Runs == 0 {
			advice = append(advice, "not measured yet: run the drill")
		}
		row.Suggestion = strings.Join(advice, "; ")
		out = append(out, row)
	}
	return out
}

// p95 is the nearest-rank 95th percentile.
func p95(ds []time.Duration) (time.Duration, bool) {
	if len(ds) == 0 {
		return 0, false
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (95*len(s) + 99) / 100 // ceil(0.95 n)
	return s[max(i, 1)-1].Round(time.Millisecond), true
}

// roundUp rounds a suggested target up to a whole minute (or second).
func roundUp(d time.Duration) time.Duration {
	unit := time.Minute
	if d < time.Minute {
		unit = time.Second
	}
	return (d + unit - 1).Truncate(unit)
}

func postureMarkdown(b *strings.Builder, rep Report) {
	if len(rep.Posture) > 0 {
		b.WriteString("\n## Posture (the hardening plan's results, measured)\n\n| Result | Drill | Verdict | Measured | When (UTC) |\n|---|---|---|---|---|\n")
		for _, p := range rep.Posture {
			fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", p.Result, p.Drill, postureVerdict(p), strings.ReplaceAll(p.Measured, "|", "\\|"), when(p.Finished))
		}
	}
	if len(rep.RTOTable) > 0 {
		b.WriteString("\n## RTO/RPO: targets against measurements (p95 of the last runs)\n\n| Drill | RTO target | RTO p95 | RPO target | RPO p95 | Runs | To do |\n|---|---|---|---|---|---|---|\n")
		for _, r := range rep.RTOTable {
			fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %d | %s |\n", r.Drill, dash(r.RTOTarget), dash(r.RTOP95), dash(r.RPOTarget), dash(r.RPOP95), r.Runs, dash(r.Suggestion))
		}
	}
}

func postureTable(w *strings.Builder, rep Report) {
	if len(rep.Posture) > 0 {
		w.WriteString("\nPOSTURE\n")
		for _, p := range rep.Posture {
			fmt.Fprintf(w, "  %-55s %-22s %-14s %s\n", p.Result, p.Drill, postureVerdict(p), p.Measured)
		}
	}
	if len(rep.RTOTable) > 0 {
		w.WriteString("\nRTO/RPO (p95 of the last runs)\n")
		for _, r := range rep.RTOTable {
			fmt.Fprintf(w, "  %-22s RTO %s (target %s), RPO %s (target %s), %d runs. %s\n", r.Drill, dash(r.RTOP95), dash(r.RTOTarget),
				dash(r.RPOP95), dash(r.RPOTarget), r.Runs, r.Suggestion)
		}
	}
}

func postureVerdict(p Posture) string {
	switch {
	case p.Verdict == "":
		return "never run"
	case p.Expired:
		return string(p.Verdict) + " (expired)"
	}
	return string(p.Verdict)
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04")
}
