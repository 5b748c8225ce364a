package drill_test

import (
	"fmt"
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

// recurring is a DrillPolicy with one recurring freeze window.
func recurring(fields string) string {
	return "apiVersion: drillbot.io/v1alpha1\nkind: DrillPolicy\nmetadata: {name: p}\nspec:\n  freezeWindows:\n    - name: w\n" + fields
}

// TestRecurringFreezeNeedsAnAnchoredScheduleAndAZone:
// @every has no anchor (it would never freeze), and a schedule with no zone
// would freeze at a different time in each process (the daemon in UTC, plan
// on a laptop).
func TestRecurringFreezeNeedsAnAnchoredScheduleAndAZone(t *testing.T) {
	for _, tc := range []struct {
		name, fields string
		want         []string
	}{
		{"@every", "      schedule: \"@every 168h\"\n      timeZone: UTC\n      duration: 12h\n", []string{"spec.freezeWindows[0].schedule", "@every"}},
		{"@every with CRON_TZ", "      schedule: \"CRON_TZ=UTC @every 1h\"\n      duration: 30m\n", []string{"spec.freezeWindows[0].schedule", "@every"}},
		{"no zone", "      schedule: \"0 12 * * 5\"\n      duration: 12h\n", []string{"spec.freezeWindows[0].timeZone", "Required"}},
		{"unknown zone", "      schedule: \"0 12 * * 5\"\n      timeZone: Europe/Nowhere\n      duration: 12h\n", []string{"spec.freezeWindows[0].timeZone", "Europe/Nowhere"}},
		{"two zones", "      schedule: \"CRON_TZ=UTC 0 12 * * 5\"\n      timeZone: Europe/Berlin\n      duration: 12h\n", []string{"spec.freezeWindows[0].timeZone", "CRON_TZ"}},
		{"zone on a fixed window", "      start: \"2026-12-20T00:00:00Z\"\n      end: \"2027-01-04T00:00:00Z\"\n      timeZone: UTC\n", []string{"spec.freezeWindows[0].timeZone", "recurring"}},
		{"never fires", "      schedule: \"0 0 30 2 *\"\n      timeZone: UTC\n      duration: 1h\n", []string{"spec.freezeWindows[0].schedule", "never"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := drill.ParsePolicy("policy.yaml", []byte(recurring(tc.fields)))
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

// TestRecurringFreezeAcrossDST: a recurring window's start
// and end are wall-clock times in its zone, whatever the evaluating
// process' time.Local: a weekend freeze ends Monday 08:00 local time on
// both DST weekends (62h of wall clock is 63h of elapsed time in autumn,
// 61h in spring); a start in the spring-forward gap starts at the first
// instant after the gap; a start in the repeated autumn hour starts at its
// first occurrence.
func TestRecurringFreezeAcrossDST(t *testing.T) {
	type at struct {
		now   string // RFC 3339
		until string // "" = not frozen
	}
	for _, tc := range []struct {
		name, schedule, zone, duration string
		checks                         []at
	}{
		{"Berlin weekend, autumn", "0 18 * * 5", "Europe/Berlin", "62h", []at{
			{"2026-10-23T15:59:59Z", ""},                     // Fri 17:59:59 CEST
			{"2026-10-23T16:00:00Z", "2026-10-26T07:00:00Z"}, // Fri 18:00 CEST .. Mon 08:00 CET
			{"2026-10-26T06:30:00Z", "2026-10-26T07:00:00Z"}, // Mon 07:30 CET: still frozen
			{"2026-10-26T07:00:00Z", ""},                     // Mon 08:00 CET: over
		}},
		{"Berlin weekend, spring", "0 18 * * 5", "Europe/Berlin", "62h", []at{
			{"2026-03-27T17:00:00Z", "2026-03-30T06:00:00Z"}, // Fri 18:00 CET .. Mon 08:00 CEST
			{"2026-03-30T05:59:59Z", "2026-03-30T06:00:00Z"},
			{"2026-03-30T06:30:00Z", ""}, // Mon 08:30 CEST: over
		}},
		{"Berlin start in the spring-forward gap", "30 2 * * 0", "Europe/Berlin", "1h", []at{
			{"2026-03-29T00:59:59Z", ""},                     // 01:59:59 CET
			{"2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z"}, // 03:00 CEST, the first instant after the gap .. 03:30 CEST
			{"2026-03-29T01:30:00Z", ""},
			{"2026-03-22T01:30:00Z", "2026-03-22T02:30:00Z"}, // the Sunday before: 02:30 CET .. 03:30 CET
		}},
		{"Berlin start in the repeated autumn hour", "30 2 * * 0", "Europe/Berlin", "1h", []at{
			{"2026-10-25T00:29:59Z", ""},
			{"2026-10-25T00:30:00Z", "2026-10-25T02:30:00Z"}, // the first 02:30 (CEST) .. 03:30 CET
			{"2026-10-25T01:45:00Z", "2026-10-25T02:30:00Z"}, // the second 02:45 (CET): the same freeze
			{"2026-10-25T02:30:00Z", ""},
		}},
		{"New York day, autumn", "0 20 * * 6", "America/New_York", "24h", []at{
			{"2026-11-01T00:00:00Z", "2026-11-02T01:00:00Z"}, // Sat 20:00 EDT .. Sun 20:00 EST (25h)
			{"2026-11-02T00:30:00Z", "2026-11-02T01:00:00Z"}, // Sun 19:30 EST
			{"2026-11-02T01:00:00Z", ""},
		}},
		{"New York day, spring", "0 20 * * 6", "America/New_York", "24h", []at{
			{"2026-03-08T01:00:00Z", "2026-03-09T00:00:00Z"}, // Sat 20:00 EST .. Sun 20:00 EDT (23h)
			{"2026-03-09T00:30:00Z", ""},                     // Sun 20:30 EDT
		}},
		{"New York start in the spring-forward gap", "30 2 8 3 *", "America/New_York", "2h", []at{
			{"2026-03-08T06:59:59Z", ""},                     // 01:59:59 EST
			{"2026-03-08T07:00:00Z", "2026-03-08T08:30:00Z"}, // 03:00 EDT .. 04:30 EDT
		}},
		{"New York end in the repeated autumn hour", "30 0 1 11 *", "America/New_York", "1h", []at{
			{"2026-11-01T04:30:00Z", "2026-11-01T05:30:00Z"}, // 00:30 EDT .. the first 01:30 (EDT)
			{"2026-11-01T05:30:00Z", ""},                     // the first 01:30: over
			{"2026-11-01T06:15:00Z", ""},                     // the second 01:15 (EST): not again
		}},
	} {
		for _, notation := range []string{"timeZone", "CRON_TZ"} {
			fields := fmt.Sprintf("      schedule: %q\n      timeZone: %s\n      duration: %s\n", tc.schedule, tc.zone, tc.duration)
			if notation == "CRON_TZ" {
				fields = fmt.Sprintf("      schedule: \"CRON_TZ=%s %s\"\n      duration: %s\n", tc.zone, tc.schedule, tc.duration)
			}
			for _, local := range []string{"UTC", "Asia/Tokyo", "America/Los_Angeles", "Europe/Berlin"} {
				t.Run(tc.name+"/"+notation+"/Local="+local, func(t *testing.T) {
					withLocal(t, local)
					p, err := drill.ParsePolicy("policy.yaml", []byte(recurring(fields)))
					if err != nil {
						t.Fatal(err)
					}
					for _, c := range tc.checks {
						now, err := time.Parse(time.RFC3339, c.now)
						if err != nil {
							t.Fatal(err)
						}
						_, until, frozen := p.Frozen(now)
						got := ""
						if frozen {
							got = until.UTC().Format(time.RFC3339)
						}
						if got != c.until {
							t.Errorf("at %s (%s): frozen until %q, want %q", c.now, now.In(mustZone(t, tc.zone)).Format("Mon 15:04 MST"), got, c.until)
						}
					}
				})
			}
		}
	}
}

// withLocal sets time.Local for the test (tests using it must not be
// parallel).
func withLocal(t *testing.T, name string) {
	t.Helper()
	old := time.Local
	time.Local = mustZone(t, name)
	t.Cleanup(func() { time.Local = old })
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
