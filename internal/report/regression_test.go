package report_test

import (
	"bytes"
	"cmp"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/report"
)

// regressionNow is the report's clock: fixed, about a year after the
// oldest run of the longest series.
var regressionNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// pt is one run of a series: the RTO and RPO it recorded, and whether it
// was held (INCONCLUSIVE with a stop).
type pt struct {
	rto, rpo string
	held     bool
}

func rtos(vals ...string) []pt {
	out := make([]pt, len(vals))
	for i, v := range vals {
		out[i].rto = v
	}
	return out
}

func rpos(vals ...string) []pt {
	out := make([]pt, len(vals))
	for i, v := range vals {
		out[i].rpo = v
	}
	return out
}

func times(n int, p pt) []pt {
	out := make([]pt, n)
	for i := range out {
		out[i] = p
	}
	return out
}

func heldRTO(vals ...string) []pt {
	out := rtos(vals...)
	for i := range out {
		out[i].held = true
	}
	return out
}

// series are the drill's runs, oldest first, one every 20 days up to 20
// days ago: a long series spans most of a year, far more than the report's
// default 5 runs shown and 30-day window, so a finding from it can only
// come from every run given to Build.
func series(drill, scenario string, pts []pt) []v1alpha1.DrillRun {
	var runs []v1alpha1.DrillRun
	for i, p := range pts {
		fin := metav1.NewMicroTime(regressionNow.AddDate(0, 0, -20*(len(pts)-i)))
		r := v1alpha1.DrillRun{ObjectMeta: metav1.ObjectMeta{Name: drill + "-" + fin.UTC().Format("20060102")},
			Spec: v1alpha1.DrillRunSpec{Drill: drill, Scenario: scenario},
			Status: v1alpha1.DrillRunStatus{Phase: v1alpha1.PhaseCompleted, Verdict: v1alpha1.VerdictPass,
				RTO: p.rto, RPO: p.rpo, RTOTarget: "30m", RPOTarget: "1h", FinishedAt: &fin}}
		if p.held {
			// Adversarial: a held run that still carries a figure.
			r.Status.Verdict = v1alpha1.VerdictInconclusive
			r.Status.Stop = &v1alpha1.Stop{Kind: v1alpha1.StopAlert, Name: "KubeNodeNotReady", At: &fin}
		}
		runs = append(runs, r)
	}
	return runs
}

func TestRegressions(t *testing.T) {
	cases := []struct {
		name     string
		scenario string // default namespace-restore
		pts      []pt   // oldest first
		want     []string
	}{{
		name: "regressing RTO",
		pts: slices.Concat(
			rtos("1m10s", "1m30s", "1m15s", "1m25s", "1m20s", "1m20s", "1m12s", "1m28s", "1m18s", "1m22s", "1m5s", "1m35s"),
			rtos("1m20s", "2m10s", "1m30s", "1m40s", "1m50s", "2m0s")),
		want: []string{"RTO regressing: p95 of the last 6 runs 2m10s is 63% above the earlier median 1m20s (12 runs)"},
	}, {
		name: "even count of earlier runs: median is the mean of the middle two",
		pts:  slices.Concat(rtos("2m0s", "1m0s", "1m30s", "1m10s"), rtos("1m20s", "1m20s", "2m10s", "1m20s", "1m20s", "1m20s")),
		want: []string{"RTO regressing: p95 of the last 6 runs 2m10s is 63% above the earlier median 1m20s (4 runs)"},
	}, {
		name: "flat",
		pts:  times(18, pt{rto: "1m20s", rpo: "30m0s"}),
	}, {
		name: "exactly 40% above is no finding",
		pts:  slices.Concat(times(3, pt{rto: "1m40s"}), times(6, pt{rto: "2m20s"})),
	}, {
		name: "just above 40%",
		pts:  slices.Concat(times(3, pt{rto: "1m40s"}), times(5, pt{rto: "2m20s"}), rtos("2m20.001s")),
		want: []string{"RTO regressing: p95 of the last 6 runs 2m20.001s is 40% above the earlier median 1m40s (3 runs)"},
	}, {
		name: "fewest runs that can regress: 6 newest and 3 earlier",
		pts:  slices.Concat(times(3, pt{rto: "1m0s"}), times(6, pt{rto: "2m0s"})),
		want: []string{"RTO regressing: p95 of the last 6 runs 2m0s is 100% above the earlier median 1m0s (3 runs)"},
	}, {
		name: "too few earlier runs",
		pts:  slices.Concat(times(2, pt{rto: "1m0s"}), times(6, pt{rto: "10m0s"})),
	}, {
		name: "too few runs in all",
		pts:  slices.Concat(times(3, pt{rto: "1m0s"}), times(5, pt{rto: "10m0s"})),
	}, {
		name: "held newest runs never count",
		pts:  slices.Concat(times(9, pt{rto: "1m0s"}), heldRTO("10m0s", "10m0s", "10m0s", "10m0s", "10m0s", "10m0s")),
	}, {
		name: "held earlier runs never count toward the baseline",
		pts:  slices.Concat(times(2, pt{rto: "1m0s"}), heldRTO("1m0s", "1m0s", "1m0s"), times(6, pt{rto: "2m0s"})),
	}, {
		name: "held runs among the newest are skipped, not in the window",
		pts: slices.Concat(times(3, pt{rto: "1m0s"}), times(3, pt{rto: "2m0s"}), heldRTO("30s", "30s"),
			times(3, pt{rto: "2m0s"})),
		want: []string{"RTO regressing: p95 of the last 6 runs 2m0s is 100% above the earlier median 1m0s (3 runs)"},
	}, {
		name: "empty and unparsable RTOs do not count",
		pts:  slices.Concat(times(3, pt{rto: "1m0s"}), times(6, pt{rto: "2m0s"}), rtos("", "n/a", "-5s")),
		want: []string{"RTO regressing: p95 of the last 6 runs 2m0s is 100% above the earlier median 1m0s (3 runs)"},
	}, {
		name: "newest fast, earlier slow",
		pts:  slices.Concat(times(12, pt{rto: "3m0s", rpo: "50m0s"}), times(6, pt{rto: "1m0s", rpo: "10m0s"})),
	}, {
		name: "regressing RPO",
		pts:  slices.Concat(rpos("30m0s", "25m0s", "35m0s", "30m0s", "20m0s"), rpos("30m0s", "30m0s", "50m0s", "30m0s", "30m0s", "30m0s")),
		want: []string{"RPO regressing: p95 of the last 6 runs 50m0s is 67% above the earlier median 30m0s (5 runs)"},
	}, {
		name: "flat RPO, regressing RTO",
		pts:  slices.Concat(times(4, pt{rto: "1m0s", rpo: "30m0s"}), times(6, pt{rto: "3m0s", rpo: "30m0s"})),
		want: []string{"RTO regressing: p95 of the last 6 runs 3m0s is 200% above the earlier median 1m0s (4 runs)"},
	}, {
		name: "RTO and RPO both",
		pts:  slices.Concat(times(4, pt{rto: "1m0s", rpo: "10m0s"}), times(6, pt{rto: "2m0s", rpo: "15m0s"})),
		want: []string{
			"RTO regressing: p95 of the last 6 runs 2m0s is 100% above the earlier median 1m0s (4 runs)",
			"RPO regressing: p95 of the last 6 runs 15m0s is 50% above the earlier median 10m0s (4 runs)",
		},
	}, {
		name:     "a check's RTO is only its duration: RPO only",
		scenario: "backup-coverage",
		pts:      slices.Concat(times(4, pt{rto: "1s", rpo: "10m0s"}), times(6, pt{rto: "5s", rpo: "15m0s"})),
		want:     []string{"RPO regressing: p95 of the last 6 runs 15m0s is 50% above the earlier median 10m0s (4 runs)"},
	}}
	// Every case reports with a control drill that regresses: its finding
	// shows the feature is on (so a case that wants none still fails
	// without it), and that drills' runs are not mixed.
	control := series("control", "namespace-restore", slices.Concat(times(3, pt{rto: "1m0s"}), times(6, pt{rto: "2m0s"})))
	wantControl := []string{"RTO regressing: p95 of the last 6 runs 2m0s is 100% above the earlier median 1m0s (3 runs)"}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			scenario := cmp.Or(c.scenario, "namespace-restore")
			runs := slices.Concat(series("shop", scenario, c.pts), control)
			slices.Reverse(runs) // Build orders by finish time, not by input
			rep := report.Build(runs, report.Options{Now: regressionNow})
			got := map[string][]string{}
			for _, d := range rep.Drills {
				got[d.Name] = d.Regressions
			}
			if len(rep.Drills) != 2 || !slices.Equal(got["control"], wantControl) {
				t.Fatalf("control drill: %q, want %q (drills %d)", got["control"], wantControl, len(rep.Drills))
			}
			if !slices.Equal(got["shop"], c.want) {
				t.Errorf("regressions\n got %q\nwant %q", got["shop"], c.want)
			}
		})
	}
}

// TestRegressionsInEveryFormat: the finding is a line under the drill in
// the table, markdown and HTML reports, and a field in JSON.
func TestRegressionsInEveryFormat(t *testing.T) {
	const want = "RTO regressing: p95 of the last 6 runs 2m0s is 100% above the earlier median 1m0s (3 runs)"
	runs := series("shop", "namespace-restore", slices.Concat(times(3, pt{rto: "1m0s"}), times(6, pt{rto: "2m0s"})))
	rep := report.Build(runs, report.Options{Now: regressionNow})
	out := map[string]string{}
	for _, f := range []string{"table", "markdown", "html", "json"} {
		var b bytes.Buffer
		if err := report.Write(&b, rep, f); err != nil {
			t.Fatal(err)
		}
		out[f] = b.String()
	}
	for f, line := range map[string]string{
		"table":    "\nshop:\n  " + want + "\n  FINISHED",
		"markdown": "\n## shop\n\n**" + want + "**\n\n| Finished (UTC)",
		"html":     "<h3>shop</h3>\n<p class=\"other\">" + want + "</p>\n",
	} {
		if !strings.Contains(out[f], line) {
			t.Errorf("%s lacks %q:\n%s", f, line, out[f])
		}
	}
	var back report.Report
	if err := json.Unmarshal([]byte(out["json"]), &back); err != nil || len(back.Drills) != 1 || !slices.Equal(back.Drills[0].Regressions, []string{want}) {
		t.Errorf("json round trip: %v %+v", err, back)
	}

	// A drill without a finding has no line and no JSON field.
	flat := report.Build(series("shop", "namespace-restore", times(9, pt{rto: "1m0s"})), report.Options{Now: regressionNow})
	for _, f := range []string{"table", "markdown", "html", "json"} {
		var b bytes.Buffer
		if err := report.Write(&b, flat, f); err != nil {
			t.Fatal(err)
		}
		if s := b.String(); strings.Contains(s, "regressing") || strings.Contains(s, "regressions") {
			t.Errorf("%s of a flat series mentions a regression:\n%s", f, s)
		}
	}
}
