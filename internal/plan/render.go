package plan

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Write renders p as "table", "json" or "markdown".
func Write(w io.Writer, p *Plan, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(p)
	case "markdown":
		return markdown(w, p)
	case "table", "":
		return table(w, p)
	}
	return fmt.Errorf("unknown output %q (table, json or markdown)", format)
}

// target is the resource as kubectl would name it: "namespaces/drill-demo",
// "restores.velero.io in velero", "pods (all namespaces)".
func target(c CallCheck) string { return resource(c) + where(c) }

// resource is the resource and name: "restores.velero.io",
// "drillruns.drillbot.io/status", "namespaces/drill-demo".
func resource(c CallCheck) string {
	res, sub, hasSub := strings.Cut(c.Resource, "/")
	r := res
	if res == "*" {
		r = "every namespaced kind"
	} else if c.Group != "" {
		r += "." + c.Group
	}
	if c.Name != "" {
		r += "/" + c.Name
	}
	if hasSub {
		r += "/" + sub
	}
	return r
}

// where is the namespace part of target.
func where(c CallCheck) string {
	res, _, _ := strings.Cut(c.Resource, "/")
	switch {
	case clusterScoped(res):
		return ""
	case c.Namespace == "":
		return " (all namespaces)"
	}
	return " in " + c.Namespace
}

// row is one line of the table: calls that differ only in their resource
// (an inventory's lists) share one.
type row struct {
	phase, verb, target, access, why string
}

// rowResources is how many resources one row names at most.
const rowResources = 4

func rows(calls []CallCheck) []row {
	var (
		out    []row
		last   CallCheck
		merged int
	)
	for i, c := range ByPhase(calls) {
		why := c.Why
		if !c.Allowed && !c.Optional {
			why += reason(c)
		}
		r := row{phase: string(c.Phase), verb: verb(c), target: target(c), access: answer(c), why: why}
		same := i > 0 && c.Name == "" && last.Name == "" && c.Phase == last.Phase && verb(c) == verb(last) && where(c) == where(last) &&
			c.Why == last.Why && answer(c) == answer(last) && c.Reason == last.Reason
		if prev := len(out) - 1; same && merged < rowResources {
			out[prev].target = strings.TrimSuffix(out[prev].target, where(c)) + ", " + resource(c) + where(c)
			merged++
		} else {
			out = append(out, r)
			merged = 1
		}
		last = c
	}
	// A list and its watch (an informer, a wait) share a row.
	var joined []row
	for _, r := range out {
		if n := len(joined) - 1; n >= 0 && joined[n].phase == r.phase && joined[n].target == r.target && joined[n].access == r.access &&
			strings.TrimPrefix(joined[n].why, "wait until ") == strings.TrimPrefix(r.why, "wait until ") {
			joined[n].verb += ", " + r.verb
			continue
		}
		joined = append(joined, r)
	}
	return joined
}

// clusterScoped are the cluster-scoped resources drills touch.
func clusterScoped(resource string) bool {
	switch resource {
	case "namespaces", "customresourcedefinitions", "validatingwebhookconfigurations", "mutatingwebhookconfigurations", "clusterpolicies":
		return true
	}
	return false
}

func verb(c CallCheck) string {
	if c.DryRun {
		return c.Verb + " (dry run)"
	}
	return c.Verb
}

func answer(c CallCheck) string {
	switch {
	case c.Group == "*" || c.Resource == "*":
		return "optional"
	case c.Allowed:
		return "allowed"
	case c.Optional:
		return "denied (optional)"
	}
	return "DENIED"
}

func table(w io.Writer, p *Plan) error {
	fmt.Fprintf(w, "Drill      %s (scenario %s, target namespace %s)\n", p.Drill, p.Scenario, p.Target)
	fmt.Fprintf(w, "As         %s\n", p.Subject.User)
	fmt.Fprintf(w, "Verdict    %s\n", p.Verdict)
	fmt.Fprintf(w, "Preflight  %s\n", p.Preflight)
	if len(p.Hits) > 0 {
		fmt.Fprintln(w, "\nThe fault would hit, now:")
		for _, h := range p.Hits {
			fmt.Fprintf(w, "  %s\n", h)
		}
	}
	fmt.Fprintf(w, "\nCalls (%d, %d denied):\n", len(p.Calls), p.Denied)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  PHASE\tVERB\tRESOURCE\tACCESS\tWHY")
	for _, r := range rows(p.Calls) {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", r.phase, r.verb, r.target, r.access, r.why)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, c := range p.Calls {
		if !c.Allowed && !c.Optional {
			fmt.Fprintf(w, "\nDENIED: %s %s for %s%s\n", verb(c), target(c), p.Subject.User, reason(c))
		}
	}
	return nil
}

func reason(c CallCheck) string {
	if c.Reason == "" {
		return ""
	}
	return ": " + c.Reason
}

func markdown(w io.Writer, p *Plan) error {
	fmt.Fprintf(w, "## Plan: %s\n\n", p.Drill)
	fmt.Fprintf(w, "| | |\n|---|---|\n| Scenario | %s |\n| Target namespace | %s |\n| As | `%s` |\n| Verdict | **%s** |\n| Preflight | %s |\n",
		p.Scenario, p.Target, p.Subject.User, p.Verdict, md(p.Preflight))
	if len(p.Hits) > 0 {
		fmt.Fprint(w, "\n### The fault would hit, now\n\n")
		for _, h := range p.Hits {
			fmt.Fprintf(w, "- %s\n", md(h))
		}
	}
	fmt.Fprintf(w, "\n### Calls (%d, %d denied)\n\n| Phase | Verb | Resource | Access | Why |\n|---|---|---|---|---|\n", len(p.Calls), p.Denied)
	for _, r := range rows(p.Calls) {
		fmt.Fprintf(w, "| %s | %s | `%s` | %s | %s |\n", r.phase, r.verb, r.target, r.access, md(r.why))
	}
	return nil
}

func md(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
