package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestDrillFormatCurrent fails when docs/drill-format.md is not what the
// generator writes from the Go types now: run make docs and commit it.
func TestDrillFormatCurrent(t *testing.T) {
	want, err := Generate("../../internal/api/v1alpha1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../docs/drill-format.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("docs/drill-format.md is stale: run make docs (go run ./hack/docgen > docs/drill-format.md) and commit it\n%s", firstDiff(string(got), string(want)))
	}
}

// TestGenerateCoversEveryField checks the reference names every field of
// the spec with its doc comment, so a field added to DrillSpec shows up.
func TestGenerateCoversEveryField(t *testing.T) {
	out, err := Generate("../../internal/api/v1alpha1")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| `spec.scenario` | string | Scenario is the scenario kind",
		"| `spec.params` | object (the scenario kind's own) |",
		"| `spec.alerts.expect[].within` | duration | Within is",
		"| `spec.failedRunsHistoryLimit` | integer | SuccessfulRunsHistoryLimit and FailedRunsHistoryLimit",
		"CRON_TZ=&lt;IANA zone&gt;",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the reference lacks %q", want)
		}
	}
}

// firstDiff names the first line where got and want differ.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d:\n", i+1) + "  committed: " + gl + "\n  generated: " + wl
		}
	}
	return ""
}
