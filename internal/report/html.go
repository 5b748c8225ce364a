package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

//go:embed report.html.tmpl
var htmlTemplate string

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"dash": dash,
	"when": when,
	"utc":  func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"pct":  func(f float64) string { return fmt.Sprintf("%.0f%%", f) },
	"pv":   postureVerdict,
	"verdictClass": func(v string) string {
		switch {
		case strings.HasPrefix(v, "PASS"):
			return "pass"
		case strings.HasPrefix(v, "FAIL"):
			return "fail"
		}
		return "other"
	},
	"chart": chart,
}).Parse(htmlTemplate))

// HTML renders the report as one self-contained page: no scripts, no
// external resources; an RTO-against-target chart per drill as inline SVG.
func HTML(w io.Writer, rep Report) error { return page.Execute(w, rep) }

// Chart is one drill's RTO trend, drawn as inline SVG.
type Chart struct {
	Width, Height int
	// Points is the polyline of measured RTOs, oldest first.
	Points string
	Dots   []Dot
	// TargetY is the target's line (0: no target).
	TargetY float64
	Target  string
	Max     string
	Empty   bool
}

// Dot is one run on the chart.
type Dot struct {
	X, Y  float64
	Title string
	Over  bool
}

// chart scales the drill's runs that measured an RTO (oldest left) and its
// target into a 480x140 plot.
func chart(d DrillReport) Chart {
	const w, h, pad = 480, 140, 20
	c := Chart{Width: w, Height: h}
	target, _ := time.ParseDuration(d.RTOTarget)
	type pt struct {
		rto  time.Duration
		name string
		at   time.Time
	}
	var pts []pt
	for _, r := range d.Runs {
		if v, err := time.ParseDuration(r.RTO); err == nil {
			pts = append(pts, pt{v, r.Name, r.Finished})
		}
	}
	if len(pts) == 0 || isCheck(d.Scenario) { // a check's RTO is its duration
		c.Empty = true
		return c
	}
	slices.Reverse(pts) // oldest first
	top := target
	for _, p := range pts {
		top = max(top, p.rto)
	}
	top = time.Duration(float64(top) * 1.1)
	y := func(v time.Duration) float64 {
		return math.Round((float64(h-pad)-float64(v)/float64(top)*float64(h-2*pad))*10) / 10
	}
	step := float64(w-2*pad) / float64(max(len(pts)-1, 1))
	var line []string
	for i, p := range pts {
		x := math.Round((float64(pad)+float64(i)*step)*10) / 10
		if len(pts) == 1 {
			x = float64(w) / 2
		}
		yy := y(p.rto)
		line = append(line, fmt.Sprintf("%.1f,%.1f", x, yy))
		c.Dots = append(c.Dots, Dot{X: x, Y: yy, Over: target > 0 && p.rto > target,
			Title: fmt.Sprintf("%s: RTO %s (%s)", p.name, p.rto, p.at.UTC().Format("2006-01-02 15:04"))})
	}
	c.Points = strings.Join(line, " ")
	if target > 0 {
		c.TargetY, c.Target = y(target), d.RTOTarget
	}
	c.Max = top.Round(time.Millisecond).String()
	return c
}
