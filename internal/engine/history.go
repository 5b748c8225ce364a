package engine

import (
	"context"
	"slices"
	"sort"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
)

// prune deletes the drill's oldest Completed runs beyond its history
// limits, PASS and the other verdicts counted apart (as a CronJob keeps
// its successful and failed Jobs). A run that is not Completed (it may
// hold a fault) is never deleted.
func (e *Engine) prune(ctx context.Context, def drill.Definition) {
	runs, err := e.store.List(ctx, v1alpha1.LabelDrill+"="+def.Name)
	if err != nil {
		e.log.Warn("run history not pruned", "drill", def.Name, "err", err)
		return
	}
	// With an archive (this process's, or one the recorded runs show: a
	// drillbot run beside an archiving daemon), a run the archive has not
	// taken yet is its only record: kept, and not counted against the
	// limits either.
	if e.keepUnarchived || slices.ContainsFunc(runs, func(r v1alpha1.DrillRun) bool { return r.Status.Archive != nil }) {
		runs = slices.DeleteFunc(runs, func(r v1alpha1.DrillRun) bool { return !r.Status.Archived() })
	}
	for _, name := range Prunable(runs, def.History.Successful, def.History.Failed) {
		if err := e.store.Delete(ctx, name); err != nil {
			e.log.Warn("old run not pruned", "run", name, "err", err)
			continue
		}
		e.log.Info("old run pruned (history limit)", "run", name)
	}
}

// Prunable names the Completed runs beyond the limits, oldest first.
func Prunable(runs []v1alpha1.DrillRun, keepPassed, keepFailed int) []string {
	var passed, failed []v1alpha1.DrillRun
	for _, r := range runs {
		if r.Status.Phase != v1alpha1.PhaseCompleted {
			continue
		}
		if r.Status.Verdict == v1alpha1.VerdictPass {
			passed = append(passed, r)
		} else {
			failed = append(failed, r)
		}
	}
	var out []string
	for _, g := range []struct {
		runs []v1alpha1.DrillRun
		keep int
	}{{passed, keepPassed}, {failed, keepFailed}} {
		sort.Slice(g.runs, func(i, j int) bool { return finishedBefore(&g.runs[i], &g.runs[j]) })
		for i := 0; i < len(g.runs)-g.keep; i++ {
			out = append(out, g.runs[i].Name)
		}
	}
	return out
}

func finishedBefore(a, b *v1alpha1.DrillRun) bool {
	ta, tb := a.CreationTimestamp.Time, b.CreationTimestamp.Time
	if a.Status.FinishedAt != nil {
		ta = a.Status.FinishedAt.Time
	}
	if b.Status.FinishedAt != nil {
		tb = b.Status.FinishedAt.Time
	}
	if ta.Equal(tb) {
		return a.Name < b.Name
	}
	return ta.Before(tb)
}
