package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/app"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/kube"
	"github.com/drillbot-io/drillbot/internal/scenarios"
	"github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
	"github.com/drillbot-io/drillbot/internal/version"
)

func newVersionCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{Use: "version", Short: "print the version", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintf(stdout, "drillbot %s\n", version.Version)
			return nil
		}}
}

func newValidateCmd(stdout, stderr io.Writer) *cobra.Command {
	var pf protectedFlags
	cmd := &cobra.Command{
		Use:   "validate [PATH ...]",
		Short: "check drill files; exit non-zero on any error",
		Long: `Checks drill files (or directories of them; default drills/) strictly: unknown
and duplicate fields, durations, schedules that never fire or fire too often,
protected targets, each scenario kind's params. Every problem names its file
and field. Exit code 1 on any problem.`,
		Example: `  drillbot validate drills/
  drillbot validate -n drillbot-system --velero-namespace velero my-drills/`,
		RunE: func(_ *cobra.Command, args []string) error { return code(validate(args, pf, stdout, stderr)) },
	}
	pf.register(cmd.Flags())
	return cmd
}

func validate(paths []string, pf protectedFlags, stdout, stderr io.Writer) int {
	if len(paths) == 0 {
		paths = []string{"drills"}
	}
	defs, err := drill.LoadPaths(paths, scenarios.Registry(scenarios.Deps{}), pf.protect())
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return exitFail
	}
	for _, d := range defs {
		sched := d.Spec.Schedule
		if sched == "" {
			sched = "(on demand)"
		}
		fmt.Fprintf(stdout, "ok  %-28s %-20s %-28s %s\n", d.Name, d.Spec.Scenario, sched, d.Source)
	}
	fmt.Fprintf(stdout, "%d drills valid\n", len(defs))
	return 0
}

// newApp connects with the command's cluster flags and wires drillbot.
func newApp(ctx context.Context, cf clusterFlags, log *slog.Logger, notifyStart bool, failed func(string), observers ...engine.Observer) (*app.App, error) {
	cfg, err := kube.RESTConfig(cf.kubeconfig, cf.context)
	if err != nil {
		return nil, err
	}
	return app.New(ctx, cfg, app.Options{Namespace: cf.namespace, VeleroNamespace: cf.veleroNamespace, Logger: log, NotifyStart: notifyStart,
		NotificationFailed: failed, Observers: observers, Heartbeat: cf.heartbeat, RevertBackoff: cf.revertBackoff, Failpoint: failpointFromEnv(),
		Alerts: cf.alerts.source, StopWhen: cf.alerts.stopWhen, Freeze: cf.alerts.freeze, AlertPoll: cf.alerts.poll, AlertScope: cf.alerts.scope,
		KeepUnarchived: cf.keepUnarchived})
}

// runOptions are drillbot run's flags.
type runOptions struct {
	cf clusterFlags
	af alertFlags
	drillChoice
	wait   bool
	output string
}

// drillChoice is the one drill a command acts on: -f FILE (repeatable) and
// --drill NAME when the files hold several (run, plan).
type drillChoice struct {
	files []string
	name  string
}

func (d *drillChoice) register(cmd *cobra.Command, verb string) {
	drillFiles(cmd, &d.files, "drill file or directory (repeatable)")
	cmd.Flags().StringVar(&d.name, "drill", "", "drill to "+verb+" when the files hold several")
}

// required refuses a command line without -f.
func (d *drillChoice) required(cmd *cobra.Command) error {
	if len(d.files) == 0 {
		return usageError{cmd, errors.New("-f FILE is required")}
	}
	return nil
}

// load validates every file (one bad file and nothing runs) and picks the
// drill; on failure it has said why and returns the exit code.
func (d *drillChoice) load(cmd string, pf protectedFlags, stderr io.Writer) (drill.Definition, int) {
	defs, err := drill.LoadPaths(d.files, scenarios.Registry(scenarios.Deps{}), pf.protect())
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return drill.Definition{}, exitError
	}
	def, err := pick(defs, d.name)
	if err != nil {
		fmt.Fprintf(stderr, "drillbot %s: %v\n", cmd, err)
		return drill.Definition{}, exitUsage
	}
	return def, 0
}

func newRunCmd(stdout, stderr io.Writer) *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run -f FILE [--drill NAME] [--wait]",
		Short: "run one drill now and print its report",
		Long: `Runs one drill now, to its end (revert included), records it as a DrillRun and
prints its report. Exit code: 0 PASS, 1 FAIL, 2 INCONCLUSIVE, 3 could not run.`,
		Example: `  # The catalog's namespace restore, with live progress
  drillbot run -f drills/namespace-restore.yaml --wait

  # One drill of a directory, the report as JSON
  drillbot run -f drills/ --drill kill-kyverno -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.required(cmd); err != nil {
				return err
			}
			if err := checkOutput(cmd, o.output, "table", "json"); err != nil {
				return err
			}
			return code(o.run(cmd.Context(), stdout, stderr))
		},
	}
	o.cf.register(cmd.Flags())
	o.af.register(cmd.Flags())
	o.drillChoice.register(cmd, "run")
	cmd.Flags().BoolVar(&o.wait, "wait", false, "print live progress while the drill runs (the run always goes to its end, revert included)")
	outputFlag(cmd, &o.output, "table", "json")
	return cmd
}

func (o *runOptions) run(ctx context.Context, stdout, stderr io.Writer) int {
	cf, wait, output := o.cf, o.wait, o.output
	def, code := o.load("run", cf.protectedFlags, stderr)
	if code != 0 {
		return code
	}
	_, cp, err := clusterPolicy(ctx, cf)
	if err == nil {
		cf.alerts, err = o.af.load(ctx, []drill.Definition{def}, cp, true)
	}
	if err != nil {
		fmt.Fprintf(stderr, "drillbot run: %v\n", err)
		return exitError
	}
	log := cf.logger(stderr)
	var observers []engine.Observer
	if wait {
		p := newProgress(stdout)
		defer p.stop()
		observers = append(observers, p)
	}
	s, err := newApp(ctx, cf, log, false, nil, observers...)
	if err != nil {
		fmt.Fprintf(stderr, "drillbot run: %v\n", err)
		return exitError
	}
	defer func() {
		// Notifications get a bounded time to go out; the run is already recorded.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		s.Close(cctx)
	}()
	// Who starts it is what the API server says the credentials are,
	// never what a flag says; a run whose starter cannot be named does
	// not start.
	who, err := selfSubject(ctx, s.Clients.Kube)
	if err != nil {
		fmt.Fprintf(stderr, "drillbot run: %v\n", err)
		return exitError
	}
	run, err := s.Engine.Run(ctx, def, "cli", engine.StartedBy(who))
	if err != nil {
		fmt.Fprintf(stderr, "drillbot run: %v\n", err)
		return exitError
	}
	if output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(run)
	} else {
		printReport(stdout, run)
	}
	switch run.Status.Verdict {
	case v1alpha1.VerdictPass:
		return exitPass
	case v1alpha1.VerdictInconclusive:
		return exitInconclusive
	default:
		return exitFail
	}
}

func pick(defs []drill.Definition, name string) (drill.Definition, error) {
	if name == "" {
		if len(defs) == 1 {
			return defs[0], nil
		}
		names := make([]string, 0, len(defs))
		for _, d := range defs {
			names = append(names, d.Name)
		}
		return drill.Definition{}, fmt.Errorf("the files hold %d drills (%s): name one with --drill", len(defs), strings.Join(names, ", "))
	}
	for _, d := range defs {
		if d.Name == name {
			return d, nil
		}
	}
	return drill.Definition{}, fmt.Errorf("no drill named %q", name)
}

func newMarkerCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		cf     clusterFlags
		target string
	)
	cmd := &cobra.Command{
		Use:     "marker --target NAMESPACE",
		Short:   "stamp the RPO marker ConfigMap in a namespace once",
		Long:    "Stamps the RPO marker (ConfigMap drillbot-rpo-marker) in an opted-in namespace: a backup taken after it carries its time, which the restore drill reads back as the RPO.",
		Example: "  drillbot marker --target drill-demo",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if target == "" {
				return usageError{cmd, errors.New("--target is required")}
			}
			return code(marker(cmd.Context(), cf, target, stdout, stderr))
		},
	}
	cf.register(cmd.Flags())
	cmd.Flags().StringVar(&target, "target", "", "namespace whose RPO marker to stamp (must be opted in)")
	return cmd
}

func marker(ctx context.Context, cf clusterFlags, target string, stdout, stderr io.Writer) int {
	cfg, err := kube.RESTConfig(cf.kubeconfig, cf.context)
	if err == nil {
		var c *kube.Clients
		if c, err = kube.NewClients(cfg); err == nil {
			if err = namespacerestore.CheckOptIn(ctx, c.Kube, target, nil); err == nil {
				now := time.Now()
				if err = namespacerestore.TouchMarker(ctx, c.Kube, target, now); err == nil {
					fmt.Fprintf(stdout, "marker %s/%s = %s\n", target, namespacerestore.MarkerName, now.UTC().Format(time.RFC3339Nano))
					return 0
				}
			}
		}
	}
	fmt.Fprintf(stderr, "drillbot marker: %v\n", err)
	return exitError
}

func newInstallCRDsCmd(stdout, stderr io.Writer) *cobra.Command {
	var cf clusterFlags
	cmd := &cobra.Command{
		Use:     "install-crds",
		Short:   "install the DrillRun CustomResourceDefinition",
		Example: "  drillbot install-crds --kubeconfig ~/.kube/config",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return code(installCRDs(cmd.Context(), cf, stdout, stderr))
		},
	}
	cf.register(cmd.Flags())
	return cmd
}

func installCRDs(ctx context.Context, cf clusterFlags, stdout, stderr io.Writer) int {
	if err := ensureCRD(ctx, cf); err != nil {
		fmt.Fprintf(stderr, "drillbot install-crds: %v\n", err)
		return exitError
	}
	fmt.Fprintln(stdout, "customresourcedefinition drillruns.drillbot.io established")
	return 0
}

// ensureCRD creates the DrillRun CRD unless it exists, and refuses one
// older than this drillbot (kube.EnsureCRD).
func ensureCRD(ctx context.Context, cf clusterFlags) error {
	cfg, err := kube.RESTConfig(cf.kubeconfig, cf.context)
	if err != nil {
		return err
	}
	return kube.EnsureCRD(ctx, cfg, v1alpha1.DrillRunCRD)
}
