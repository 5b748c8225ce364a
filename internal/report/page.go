package report

import (
	"bytes"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
)

// RunPage is one run's HTML page: the report of that run alone, as the
// archive keeps it beside the run.
func RunPage(run v1alpha1.DrillRun) ([]byte, error) {
	now := run.CreationTimestamp.Time
	if run.Status.FinishedAt != nil {
		now = run.Status.FinishedAt.Time
	}
	var b bytes.Buffer
	err := HTML(&b, Build([]v1alpha1.DrillRun{run}, Options{Now: now, WindowDays: 36500, LastN: 1}))
	return b.Bytes(), err
}

// DrillInfos are the catalog's drills as the report names them.
func DrillInfos(defs []drill.Definition) []DrillInfo {
	var out []DrillInfo
	for _, d := range defs {
		out = append(out, DrillInfo{Name: d.Name, Scenario: d.Spec.Scenario,
			RTOTarget: string(d.Spec.Objectives.RTO), RPOTarget: string(d.Spec.Objectives.RPO)})
	}
	return out
}
