package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/halt"
	"github.com/drillbot-io/drillbot/internal/kube"
	"github.com/drillbot-io/drillbot/internal/plan"
	"github.com/drillbot-io/drillbot/internal/scenarios"
)

// planOptions are drillbot plan's flags.
type planOptions struct {
	cf clusterFlags
	af alertFlags
	drillChoice
	as     string
	output string
}

func newPlanCmd(stdout, stderr io.Writer) *cobra.Command {
	var o planOptions
	cmd := &cobra.Command{
		Use:   "plan -f FILE [--drill NAME] [--as SERVICEACCOUNT]",
		Short: "the exact calls a drill will make, checked against the cluster: read-only",
		Long: `Says what a drill would do now, and whether it may, without doing it: per phase
the API calls the drill makes (verb, resource, namespace, name where known), what
the fault would hit now (the pods it would kill, the backup it would restore
from), the preflight verdict as it would be now, and for every call the API
server's own SubjectAccessReview answer for drillbot's service account (or
--as), so a missing permission is found before the schedule fires.

It writes nothing: preflight only reads, admission probes are dry runs, and
SubjectAccessReviews persist nothing.

It also reads, as the engine would before a run, the halt switch and the
target's lock: a run that holds the target (unfinished, or its revert failed)
makes it WOULD NOT RUN, naming the run and its phase.

Exit code: 0 the drill would run with every permission it needs; 1 it would be
refused, held, would fail preflight, or lacks a permission; 3 could not plan.`,
		Example: `  drillbot plan -f drills/namespace-restore.yaml
  drillbot plan -f drills/ --drill kill-kyverno --as drillbot-system:drillbot -o markdown
  kubectl drillbot plan -f drills/block-key-vault.yaml -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.required(cmd); err != nil {
				return err
			}
			if err := checkOutput(cmd, o.output, "table", "json", "markdown"); err != nil {
				return err
			}
			subject, err := plan.ParseSubject(o.as, o.cf.namespace)
			if err != nil {
				return usageError{cmd, err}
			}
			return code(o.run(cmd.Context(), subject, stdout, stderr))
		},
	}
	o.cf.register(cmd.Flags())
	o.af.register(cmd.Flags())
	o.drillChoice.register(cmd, "plan")
	cmd.Flags().StringVar(&o.as, "as", "drillbot", "the service account drillbot runs as: NAME (in -n), NAMESPACE:NAME or system:serviceaccount:NAMESPACE:NAME")
	outputFlag(cmd, &o.output, "table", "json", "markdown")
	return cmd
}

func (o *planOptions) run(ctx context.Context, subject plan.Subject, stdout, stderr io.Writer) int {
	def, code := o.load("plan", o.cf.protectedFlags, stderr)
	if code != 0 {
		return code
	}
	_, cp, err := clusterPolicy(ctx, o.cf)
	if err == nil {
		o.cf.alerts, err = o.af.load(ctx, []drill.Definition{def}, cp, true)
	}
	if err != nil {
		fmt.Fprintf(stderr, "drillbot plan: %v\n", err)
		return exitError
	}
	p, err := o.build(ctx, def, subject, stderr)
	if err == nil {
		err = plan.Write(stdout, p, o.output)
	}
	if err != nil {
		fmt.Fprintf(stderr, "drillbot plan: %v\n", err)
		return exitError
	}
	if !p.OK() {
		return exitFail
	}
	return 0
}

// build connects read-only (no CRD or namespace is created, unlike the
// commands that run drills) and plans def.
func (o *planOptions) build(ctx context.Context, def drill.Definition, subject plan.Subject, stderr io.Writer) (*plan.Plan, error) {
	cfg, err := kube.RESTConfig(o.cf.kubeconfig, o.cf.context)
	if err != nil {
		return nil, err
	}
	return buildPlan(ctx, cfg, o.cf, def, subject, stderr)
}

// buildPlan plans def through cfg. The scenario's own progress logs are
// not the plan: below warn they are dropped unless --log-level says debug.
func buildPlan(ctx context.Context, cfg *rest.Config, cf clusterFlags, def drill.Definition, subject plan.Subject, stderr io.Writer) (*plan.Plan, error) {
	if cf.logLevel == "" || cf.logLevel == "info" {
		cf.logLevel = "warn"
	}
	c, err := kube.NewClients(cfg)
	if err != nil {
		return nil, err
	}
	stop := startProgress(stderr, "planning "+def.Name+": preflight (read-only)")
	defer stop()
	return plan.Build(ctx, plan.Config{
		Kinds: scenarios.Registry(scenarios.Deps{Clients: c, Clock: clock.RealClock{}, Logger: cf.logger(stderr),
			Protected: []string{cf.namespace, cf.veleroNamespace}}),
		Namespace: cf.namespace,
		Reviewer:  plan.SAR{Kube: c.Kube},
		Halt:      halt.Switch{Kube: c.Kube, Namespace: cf.namespace},
		Start:     &engine.StartConditions{Alerts: cf.alerts.source, StopWhen: cf.alerts.stopWhen, Freeze: cf.alerts.freeze, Scope: cf.alerts.scope},
		Leases:    c.Kube.CoordinationV1(),
		Runs:      &engine.KubeStore{Client: c.Dynamic, Namespace: cf.namespace},
	}, def, subject)
}
