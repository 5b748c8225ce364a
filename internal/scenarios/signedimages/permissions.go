package signedimages

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

// reads: lists only (registries are read anonymously, outside the API
// server).
var reads, calls = check.PodReads("the images each selected namespace's pods run (the kubelet's image IDs)")

// Permissions implements engine.Permissioner.
func (Kind) Permissions(drill.Definition) []engine.Grant { return slices.Clone(reads) }

// Calls implements engine.Planner.
func (Kind) Calls(drill.Definition) []engine.Call { return slices.Clone(calls) }
