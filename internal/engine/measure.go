package engine

import (
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
)

// Breakdown splits the RTO into the spans that end at each milestone. The
// last span ends at recovery, so the spans add up to the RTO exactly.
func Breakdown(disaster, recovered time.Time, ms []v1alpha1.Milestone) []v1alpha1.Span {
	if len(ms) == 0 {
		return []v1alpha1.Span{{Name: "recovered", Duration: FormatDuration(recovered.Sub(disaster))}}
	}
	spans := make([]v1alpha1.Span, 0, len(ms))
	prev := disaster
	for i, m := range ms {
		end := m.At.Time
		if i == len(ms)-1 {
			end = recovered
		}
		spans = append(spans, v1alpha1.Span{Name: m.Name, Duration: FormatDuration(end.Sub(prev))})
		prev = end
	}
	return spans
}

// RPO is the data-loss window: from the newest write found in the recovered
// data to the disaster. Recovered data stamped after the disaster cannot
// have come from before it: it was written during the drill (over the
// restored data) or the clocks disagree. Either way the window is not
// measured: ok is false and why says so (never an RPO of 0).
func RPO(disaster, data time.Time) (rpo time.Duration, ok bool, why string) {
	d := disaster.Sub(data)
	if d < 0 {
		return 0, false, fmt.Sprintf("RPO not measurable: the recovered data is stamped %s after the disaster, so it was written after the disaster (over the restored data) or the writers' clocks disagree",
			FormatDuration(-d))
	}
	return d, true, ""
}

// Decide turns what a run found into its verdict and reason. FAIL wins over
// INCONCLUSIVE, which wins over PASS. Objectives are checked only when
// measured: a recovery that never happened already failed.
func Decide(o outcome, rtoTarget, rpoTarget time.Duration) (v1alpha1.Verdict, string) {
	failures := append(append([]string(nil), o.failures...), o.detectFailures...)
	var met []string
	if o.rto != nil {
		if rtoTarget > 0 && *o.rto > rtoTarget {
			failures = append(failures, fmt.Sprintf("RTO %s exceeds target %s", FormatDuration(*o.rto), rtoTarget))
		} else {
			met = append(met, fmt.Sprintf("RTO %s within %s", FormatDuration(*o.rto), rtoTarget))
		}
	}
	inconclusive := o.inconclusive
	if rpoTarget > 0 && o.rto != nil && len(o.failures) == 0 {
		switch {
		case o.rpo == nil:
			if inconclusive == "" {
				inconclusive = "RPO target set but no recovered data timestamp to measure it from"
			}
		case *o.rpo > rpoTarget:
			failures = append(failures, fmt.Sprintf("RPO %s exceeds target %s", FormatDuration(*o.rpo), rpoTarget))
		default:
			met = append(met, fmt.Sprintf("RPO %s within %s", FormatDuration(*o.rpo), rpoTarget))
		}
	}
	met = append(met, o.detectMet...)
	switch {
	case len(failures) > 0:
		return v1alpha1.VerdictFail, strings.Join(failures, "; ")
	case inconclusive != "":
		return v1alpha1.VerdictInconclusive, inconclusive
	default:
		return v1alpha1.VerdictPass, strings.Join(met, ", ")
	}
}

// FormatDuration prints a measured duration at millisecond precision.
func FormatDuration(d time.Duration) string {
	return d.Round(time.Millisecond).String()
}

func isConflict(err error) bool { return apierrors.IsConflict(err) }
