package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/kube"
	"github.com/drillbot-io/drillbot/internal/report"
	"github.com/drillbot-io/drillbot/internal/scenarios"
	"github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
)

func reportCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cf     clusterFlags
		drills multiFlag
		last   int
		days   int
		output string
	)
	cf.register(fs)
	fs.Var(&drills, "drills", "the drill catalog (file or directory, repeatable): its drills are reported even when they never ran")
	fs.IntVar(&last, "last", 5, "runs shown per drill")
	fs.IntVar(&days, "days", 30, "compliance window in days")
	fs.StringVar(&output, "output", "table", "table, json or markdown")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if output != "table" && output != "json" && output != "markdown" {
		fmt.Fprintf(stderr, "drillbot report: unknown --output %q (table, json, markdown)\n", output)
		return exitUsage
	}
	var defs []drill.Definition
	if len(drills) > 0 {
		var err error
		if defs, err = drill.LoadPaths(drills, scenarios.Registry(scenarios.Deps{})); err != nil {
			fmt.Fprintf(stderr, "%v\n", err)
			return exitError
		}
	}
	rep, err := buildReport(ctx, cf, defs, report.Options{Now: time.Now(), WindowDays: days, LastN: last})
	if err == nil {
		err = report.Write(stdout, rep, output)
	}
	if err != nil {
		fmt.Fprintf(stderr, "drillbot report: %v\n", err)
		return exitError
	}
	return 0
}

func buildReport(ctx context.Context, cf clusterFlags, defs []drill.Definition, o report.Options) (report.Report, error) {
	cfg, err := kube.RESTConfig(cf.kubeconfig, cf.context)
	if err != nil {
		return report.Report{}, err
	}
	c, err := kube.NewClients(cfg)
	if err != nil {
		return report.Report{}, err
	}
	runs, err := (&engine.KubeStore{Client: c.Dynamic, Namespace: cf.namespace}).List(ctx, "")
	if err != nil {
		return report.Report{}, err
	}
	// The drills to report on: the catalog, else what the runs snapshotted.
	specs := map[string]drill.Definition{}
	for _, d := range defs {
		specs[d.Name] = d
		o.Drills = append(o.Drills, report.DrillInfo{Name: d.Name, Scenario: d.Spec.Scenario,
			RTOTarget: string(d.Spec.Objectives.RTO), RPOTarget: string(d.Spec.Objectives.RPO)})
	}
	for _, r := range runs {
		if _, ok := specs[r.Spec.Drill]; !ok && len(defs) == 0 {
			specs[r.Spec.Drill] = drill.Definition{Name: r.Spec.Drill, Spec: r.Spec.Snapshot}
		}
	}
	o.BackupTimes = map[string]time.Time{}
	for name, d := range specs {
		if d.Spec.Scenario != namespacerestore.Name {
			continue
		}
		t, ok, err := namespacerestore.LastCompletedBackup(ctx, c.Dynamic, d.Spec)
		if err != nil {
			return report.Report{}, fmt.Errorf("drill %s: %w", name, err)
		}
		if ok {
			o.BackupTimes[name] = t
		}
	}
	return report.Build(runs, o), nil
}
