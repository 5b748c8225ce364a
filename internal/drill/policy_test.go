package drill_test

import (
	"strings"
	"testing"
	"time"

	"github.com/drillbot-io/drillbot/internal/drill"
)

const policy = `apiVersion: drillbot.io/v1alpha1
kind: DrillPolicy
metadata: {name: production}
spec:
  stopWhen:
    - '{severity="critical"}'
  freezeWindows:
    - name: year-end
      start: "2026-12-20T00:00:00Z"
      end: "2027-01-04T00:00:00Z"
    - name: friday-releases
      schedule: "CRON_TZ=UTC 0 12 * * 5"
      duration: 12h
`

func TestPolicyFreezeWindows(t *testing.T) {
	p, err := drill.ParsePolicy("policy.yaml", []byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.StopWhen) != 1 || p.StopWhen[0].String() != `{severity="critical"}` {
		t.Errorf("stopWhen %v", p.StopWhen)
	}
	for _, tc := range []struct {
		at    string
		name  string
		until string
	}{
		{"2026-12-19T23:59:59Z", "", ""},
		{"2026-12-20T00:00:00Z", "year-end", "2027-01-04T00:00:00Z"},
		{"2027-01-04T00:00:00Z", "", ""},                                    // end is exclusive
		{"2026-12-04T11:59:59Z", "", ""},                                    // a Friday, before noon
		{"2026-12-04T12:00:00Z", "friday-releases", "2026-12-05T00:00:00Z"}, // noon
		{"2026-12-04T23:59:59Z", "friday-releases", "2026-12-05T00:00:00Z"}, // still
		{"2026-12-05T00:00:00Z", "", ""},                                    // Saturday midnight: over
		{"2027-01-01T13:00:00Z", "year-end", "2027-01-04T00:00:00Z"},        // both: the first listed
	} {
		at, _ := time.Parse(time.RFC3339, tc.at)
		name, until, frozen := p.Frozen(at)
		if name != tc.name || frozen != (tc.name != "") || (frozen && until.UTC().Format(time.RFC3339) != tc.until) {
			t.Errorf("at %s: %q until %s (%v), want %q until %s", tc.at, name, until.UTC().Format(time.RFC3339), frozen, tc.name, tc.until)
		}
	}
}

func TestPolicyRejectsBadInputNamingTheField(t *testing.T) {
	for _, tc := range []struct {
		name, old, new string
		want           []string
	}{
		{"wrong kind", "kind: DrillPolicy", "kind: Drill", []string{"kind", "DrillPolicy"}},
		{"unknown field", "  stopWhen:", "  pauseWhen: []\n  stopWhen:", []string{"spec.pauseWhen", "unknown field"}},
		{"bad matchers", `'{severity="critical"}'`, `'{severity=critical'`, []string{"spec.stopWhen[0]", "not Alertmanager matchers"}},
		{"end before start", `end: "2027-01-04T00:00:00Z"`, `end: "2026-12-01T00:00:00Z"`, []string{"spec.freezeWindows[0].end", "after start"}},
		{"bad time", `start: "2026-12-20T00:00:00Z"`, `start: "Dec 20"`, []string{"spec.freezeWindows[0].start", "RFC 3339"}},
		{"both kinds", `      end: "2027-01-04T00:00:00Z"`, "      end: \"2027-01-04T00:00:00Z\"\n      duration: 1h", []string{"spec.freezeWindows[0]", "not both"}},
		{"no duration", "      duration: 12h\n", "", []string{"spec.freezeWindows[1].duration", "Required"}},
		{"a freeze that never ends", "duration: 12h", "duration: 800h", []string{"spec.freezeWindows[1].duration", "at most"}},
		{"bad cron", `"CRON_TZ=UTC 0 12 * * 5"`, `"0 12 * *"`, []string{"spec.freezeWindows[1].schedule"}},
		{"unnamed", "    - name: year-end\n      start", "    - start", []string{"spec.freezeWindows[0].name", "Required"}},
		{"duplicate name", "name: friday-releases", "name: year-end", []string{"spec.freezeWindows[1].name", "Duplicate"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(policy, tc.old) {
				t.Fatalf("fixture lacks %q", tc.old)
			}
			_, err := drill.ParsePolicy("policy.yaml", []byte(strings.Replace(policy, tc.old, tc.new, 1)))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range append(tc.want, "policy.yaml") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}
