package main

import (
	"testing"

	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/scenarios"
)

// TestAPILoadDrillsLoad: the API load figure's drills pass the real loader.
func TestAPILoadDrillsLoad(t *testing.T) {
	docs := apiLoadDrills("velero")
	if len(docs) != 5 {
		t.Errorf("%d kinds", len(docs))
	}
	for kind, doc := range docs {
		defs, err := drill.Parse("api-load.yaml", []byte(doc), scenarios.Registry(scenarios.Deps{}))
		if err != nil || defs[0].Spec.Scenario != kind {
			t.Errorf("%s: %v\n%s", kind, err, doc)
		}
	}
}

func TestOnlyName(t *testing.T) {
	if got := onlyName(map[string]bool{"fleet": true, "footprint": true}); got != "footprint+fleet" {
		t.Errorf("%s", got)
	}
}
