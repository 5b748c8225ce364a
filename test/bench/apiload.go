package bench

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
)

// APILoad is what one scenario kind's run costs the API server: the
// requests of user (drillbot, alone) over runs runs, by verb, from the API
// server's audit log.
type APILoad struct {
	Kind     string         `json:"kind"`
	Runs     int            `json:"runs"`
	Verdicts []string       `json:"verdicts"`
	ByVerb   map[string]int `json:"byVerb"`
	Total    int            `json:"total"`
	Wall     time.Duration  `json:"wall"`
}

// MeasureAPILoad runs run runs times, one after another, and counts the
// requests user sent meanwhile. The caller makes the clients before, so
// their setup is not counted.
func MeasureAPILoad(ctx context.Context, kind string, runs int, auditLog, user string, run func(context.Context) (*v1alpha1.DrillRun, error)) (APILoad, error) {
	l := APILoad{Kind: kind, Runs: runs, ByVerb: map[string]int{}}
	from := time.Now()
	for range runs {
		r, err := run(ctx)
		if err != nil {
			return l, fmt.Errorf("%s: %w", kind, err)
		}
		l.Verdicts = append(l.Verdicts, string(r.Status.Verdict))
	}
	to := time.Now()
	l.Wall = to.Sub(from)
	time.Sleep(500 * time.Millisecond) // the audit backend writes before answering; a moment more
	events, err := ReadAudit(auditLog, user, from, to)
	if err != nil {
		return l, err
	}
	for _, e := range events {
		l.ByVerb[e.Verb]++
	}
	l.Total = len(events)
	return l, nil
}

// Row is the kind's requests per run, by verb (most first).
func (l APILoad) Row() Row {
	verbs := make([]string, 0, len(l.ByVerb))
	for v := range l.ByVerb {
		verbs = append(verbs, v)
	}
	sort.Slice(verbs, func(i, j int) bool {
		if l.ByVerb[verbs[i]] != l.ByVerb[verbs[j]] {
			return l.ByVerb[verbs[i]] > l.ByVerb[verbs[j]]
		}
		return verbs[i] < verbs[j]
	})
	var parts []string
	for _, v := range verbs {
		parts = append(parts, fmt.Sprintf("%s %.1f", v, float64(l.ByVerb[v])/float64(l.Runs)))
	}
	verdicts := slices.Compact(slices.Sorted(slices.Values(l.Verdicts)))
	perRun := float64(l.Total) / float64(l.Runs)
	return Row{
		Figure:   fmt.Sprintf("API requests per run: %s (%d runs, %s)", l.Kind, l.Runs, strings.Join(verdicts, "/")),
		Drillbot: fmt.Sprintf("%.1f (%s)", perRun, strings.Join(parts, ", ")),
		Value:    perRun, Unit: "req/run",
	}
}
