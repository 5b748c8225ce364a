// Package test holds drillbot's test and development machinery: the local
// cluster, the real stack, the integration test harness and the
// benchmarks. None of it ships: TestNothingThatShipsImportsTheMachinery
// keeps it so.
package test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// TestNothingThatShipsImportsTheMachinery: the binary and every product
// package (their non-test code) depend on nothing under test/, so the tree
// says what ships.
func TestNothingThatShipsImportsTheMachinery(t *testing.T) {
	const module = "github.com/drillbot-io/drillbot/"
	out, err := exec.Command("go", "list", "-deps", "-json=ImportPath,Deps", module+"cmd/...", module+"internal/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for dec.More() {
		var p struct {
			ImportPath string
			Deps       []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(p.ImportPath, module+"cmd/") && !strings.HasPrefix(p.ImportPath, module+"internal/") {
			continue
		}
		seen++
		for _, d := range p.Deps {
			if strings.HasPrefix(d, module+"test/") {
				t.Errorf("%s (what ships) depends on %s (test machinery)", p.ImportPath, d)
			}
		}
	}
	if seen == 0 {
		t.Fatal("go list named no product package: nothing was checked")
	}
}
