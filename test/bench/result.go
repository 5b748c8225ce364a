// Package bench measures drillbot itself on the local cluster: how precisely
// it sees a recovery (against fixed-interval polling, the way kubectl-wait
// loops and chaos tools' probes do), what it costs while idle, how its
// namespace inventory scales, and how much of a measured RTO is drillbot's
// own latency. `make bench` runs it (hack/bench) and writes the table as
// JSON so results can be compared between commits.
package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Row is one line of the results table.
type Row struct {
	Figure string `json:"figure"`
	// Drillbot and Peer are the measured values; Peer is empty where no
	// peer method applies.
	Drillbot string `json:"drillbot"`
	Peer     string `json:"peer,omitempty"`
	// PeerMethod says what the peer column measured.
	PeerMethod string `json:"peerMethod,omitempty"`
	// Ratio is peer / drillbot (how many times better drillbot is), 0 when
	// there is no peer.
	Ratio  float64 `json:"ratio,omitempty"`
	Target string  `json:"target,omitempty"`
	// Met is nil where the row has no target.
	Met *bool `json:"met,omitempty"`
	// Value is the row's main number in its unit, for comparing runs.
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

// Results are one benchmark run.
type Results struct {
	Commit   string    `json:"commit"`
	Started  time.Time `json:"started"`
	Machine  string    `json:"machine"`
	Rows     []Row     `json:"rows"`
	Duration string    `json:"duration"`
	// Details hold per-section raw data (samples, per-size figures).
	Details map[string]any `json:"details,omitempty"`
}

// Met returns a pointer to ok, for Row.Met.
func Met(ok bool) *bool { return &ok }

// cells are a row's table cells; no is how a missed target reads.
func (row Row) cells(no string) []string {
	ratio, met := "", ""
	if row.Ratio > 0 {
		ratio = fmt.Sprintf("%.1fx", row.Ratio)
	}
	if row.Met != nil {
		met = map[bool]string{true: "yes", false: no}[*row.Met]
	}
	return []string{row.Figure, row.Drillbot, row.PeerMethod, row.Peer, ratio, row.Target, met}
}

var header = []string{"Figure", "drillbot", "Peer method", "Peer", "Ratio", "Target", "Met?"}

// WriteTable prints the rows as an aligned table.
func (r *Results) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.ToUpper(strings.Join(header, "\t")))
	for _, row := range r.Rows {
		fmt.Fprintln(tw, strings.Join(row.cells("NO"), "\t"))
	}
	return tw.Flush()
}

// WriteMarkdown prints the rows as a Markdown table (for the README).
func (r *Results) WriteMarkdown(w io.Writer) {
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(header, " | "), strings.Repeat("---|", len(header)))
	for _, row := range r.Rows {
		cells := row.cells("**no**")
		for i, c := range cells {
			cells[i] = strings.ReplaceAll(c, "|", `\|`)
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
}

// WriteJSON writes the results, indented.
func (r *Results) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Summary is the distribution of a sample.
type Summary struct {
	N      int           `json:"n"`
	Median time.Duration `json:"median"`
	P95    time.Duration `json:"p95"`
	Max    time.Duration `json:"max"`
	Min    time.Duration `json:"min"`
}

// Summarize computes the summary of ds (nearest-rank percentiles).
func Summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return Summary{N: len(s), Min: s[0], Median: Percentile(s, 50), P95: Percentile(s, 95), Max: s[len(s)-1]}
}

// Percentile is the nearest-rank p-th percentile of sorted.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = max(1, min(rank, len(sorted)))
	return sorted[rank-1]
}

// ms formats d in milliseconds with one decimal.
func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

// Ratio is a/b, 0 when b is 0.
func Ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
