package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/kube"
	"github.com/drillbot-io/drillbot/internal/report"
	"github.com/drillbot-io/drillbot/internal/scenarios"
)

func newReportCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		cf     clusterFlags
		tf     trustFlags
		fleet  fleetFlags
		drills []string
		last   int
		days   int
		output string
	)
	cmd := &cobra.Command{
		Use:   "report",
		Short: "DR status report from recorded runs: table, json, markdown or html",
		Long: `The DR status report from the DrillRuns recorded in the cluster: per drill the
last runs with verdict and RTO/RPO against target, the RTO trend, the age of the
last successful backup, open faults, and compliance over the window; the
posture (the hardening plan's results as the newest checks measured them) and
the runbook's RTO/RPO table from measurements (p95 of the last runs against
each target, with what to change where one is missed). -o html is one
self-contained page with an RTO-against-target chart per drill.

With --archive (and --public-key), the report is built from the archive's
signed records (a year of runs, not only what the cluster still holds); a
record that does not verify is left out and named, and the exit code is 1.

With --cluster-context or --cluster-kubeconfig (repeatable), the fleet report:
per cluster and drill the newest run, a pass older than --days counted as
expired, and the fleet's compliance. A cluster that cannot be read is named
and its drills count for nothing: the report is printed and the exit code is 1.`,
		Example: `  drillbot report --drills drills/ -o markdown > dr-status.md
  drillbot report --drills drills/ -o html > dr-status.html

  # Three clusters of one kubeconfig, and one of another
  drillbot report --cluster-context prod --cluster-context staging --cluster-kubeconfig ~/.kube/dr-region`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(cmd, output, "table", "json", "markdown", "html"); err != nil {
				return err
			}
			if fleet.any() && output == "html" {
				return usageError{cmd, errors.New("-o html is the single cluster's report; the fleet report is table, json or markdown")}
			}
			if tf.url != "" {
				if fleet.any() {
					return usageError{cmd, errors.New("--archive is one archive's report: it names its clusters itself; not with --cluster-context")}
				}
				defs, err := catalog(drills)
				if err != nil {
					fmt.Fprintf(stderr, "%v\n", err)
					return code(exitError)
				}
				return code(archiveReport(cmd.Context(), tf, report.DrillInfos(defs), last, days, output, stdout, stderr))
			}
			if fleet.any() {
				return code(fleetReport(cmd.Context(), cf, fleet, drills, last, days, output, stdout, stderr))
			}
			return code(statusReport(cmd.Context(), cf, drills, last, days, output, stdout, stderr))
		},
	}
	cf.register(cmd.Flags())
	fleet.register(cmd.Flags())
	tf.register(cmd.Flags())
	cmd.Flags().StringArrayVar(&drills, "drills", nil, "the drill catalog (file or directory, repeatable): its drills are reported even when they never ran")
	cmd.Flags().IntVar(&last, "last", 5, "runs shown per drill")
	cmd.Flags().IntVar(&days, "days", 30, "compliance window in days")
	outputFlag(cmd, &output, "table", "json", "markdown", "html")
	return cmd
}

// catalog loads the --drills catalog, if any.
func catalog(drills []string) ([]drill.Definition, error) {
	if len(drills) == 0 {
		return nil, nil
	}
	return drill.LoadPaths(drills, scenarios.Registry(scenarios.Deps{}))
}

func statusReport(ctx context.Context, cf clusterFlags, drills []string, last, days int, output string, stdout, stderr io.Writer) int {
	defs, err := catalog(drills)
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return exitError
	}
	cfg, err := kube.RESTConfig(cf.kubeconfig, cf.context)
	if err != nil {
		fmt.Fprintf(stderr, "drillbot report: %v\n", err)
		return exitError
	}
	rep, err := report.Collect(ctx, cfg, cf.namespace, defs, report.Options{Now: time.Now(), WindowDays: days, LastN: last})
	if err == nil {
		err = report.Write(stdout, rep, output)
	}
	if err != nil {
		fmt.Fprintf(stderr, "drillbot report: %v\n", err)
		return exitError
	}
	return 0
}
