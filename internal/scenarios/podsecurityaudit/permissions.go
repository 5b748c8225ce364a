package podsecurityaudit

import (
	"slices"

	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/scenarios/check"
)

var (
	_ engine.Permissioner = Kind{}
	_ engine.Planner      = Kind{}
)

// reads: lists only. A server-side dry-run of the enforce label would need
// update on every namespace.
var reads, calls = check.PodReads("each selected namespace's pods, evaluated at the audited level")

// Permissions implements engine.Permissioner.
func (Kind) Permissions(drill.Definition) []engine.Grant { return slices.Clone(reads) }

// Calls implements engine.Planner.
func (Kind) Calls(drill.Definition) []engine.Call { return slices.Clone(calls) }
