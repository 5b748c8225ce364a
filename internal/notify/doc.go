// Package notify will hold drillbot's notification sinks (Slack, log). Until
// then, finished runs are reported by the CLI and recorded as DrillRuns.
package notify
