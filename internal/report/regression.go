package report

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
)

// A drill's RTO (or RPO) is regressing when the p95 of its newest runs is
// more than regressionPercent above the median of all its earlier runs.
// The earlier runs are every run given to Build (a year-long archive, not
// only the last runs shown nor the compliance window), so the baseline is
// the drill's own history.
const (
	// regressionRecent is how many of the newest measuring runs make the
	// recent figure: their p95 (nearest rank, so with 6 runs their slowest).
	regressionRecent = 6
	// regressionMinEarlier is the fewest earlier measuring runs whose median
	// is a baseline; with fewer there is no finding.
	regressionMinEarlier = 3
	// regressionPercent is how far above the earlier median, in percent,
	// the recent p95 must be: strictly above, so exactly 40% is no finding.
	regressionPercent = 40
)

// regressions are the drill's RTO and RPO regression findings, from its
// finished runs in any order. A check's RTO is only how long the check
// took, so for checks only the RPO is judged.
func regressions(runs []v1alpha1.DrillRun, check bool) []string {
	sorted := slices.Clone(runs)
	slices.SortStableFunc(sorted, func(a, b v1alpha1.DrillRun) int { // newest first
		return cmp.Or(b.Status.FinishedAt.Compare(a.Status.FinishedAt.Time), cmp.Compare(a.Name, b.Name))
	})
	var out []string
	if !check {
		if f, ok := regression("RTO", measures(sorted, func(st *v1alpha1.DrillRunStatus) string { return st.RTO })); ok {
			out = append(out, f)
		}
	}
	if f, ok := regression("RPO", measures(sorted, func(st *v1alpha1.DrillRunStatus) string { return st.RPO })); ok {
		out = append(out, f)
	}
	return out
}

// measures are the runs' figures, in the runs' order. A held run (not
// started or stopped by a stop condition: INCONCLUSIVE with a stop) never
// counts; nor does a run whose figure is empty, unparsable or negative.
func measures(runs []v1alpha1.DrillRun, figure func(*v1alpha1.DrillRunStatus) string) []time.Duration {
	var out []time.Duration
	for i := range runs {
		st := &runs[i].Status
		if held(st) {
			continue
		}
		if d, err := time.ParseDuration(figure(st)); err == nil && d >= 0 {
			out = append(out, d)
		}
	}
	return out
}

// held says whether the run was held: its verdict is INCONCLUSIVE because
// a stop condition kept it from starting or stopped it.
func held(st *v1alpha1.DrillRunStatus) bool {
	return st.Verdict == v1alpha1.VerdictInconclusive && st.Stop != nil
}

// regression judges one figure's series, newest first: the p95 of the
// newest regressionRecent against the median of all the earlier ones.
func regression(what string, newestFirst []time.Duration) (string, bool) {
	if len(newestFirst) < regressionRecent+regressionMinEarlier {
		return "", false
	}
	recent, earlier := newestFirst[:regressionRecent], newestFirst[regressionRecent:]
	p, _ := p95(recent)
	m := median(earlier)
	// In whole milliseconds (both are rounded to them), so the comparison
	// is exact and cannot overflow for any realistic duration.
	pm, mm := p.Milliseconds(), m.Milliseconds()
	if mm <= 0 || 100*pm <= (100+regressionPercent)*mm {
		return "", false
	}
	pct := (200*(pm-mm) + mm) / (2 * mm) // 100*(p-m)/m, rounded half up
	return fmt.Sprintf("%s regressing: p95 of the last %d runs %s is %d%% above the earlier median %s (%d runs)",
		what, regressionRecent, p, pct, m, len(earlier)), true
}

// median is the middle value (the mean of the two middle ones for an even
// count), rounded to the millisecond; ds is not empty.
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	m := s[n/2]
	if n%2 == 0 {
		m = s[n/2-1] + (s[n/2]-s[n/2-1])/2
	}
	return m.Round(time.Millisecond)
}
