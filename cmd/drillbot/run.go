package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/app"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/kube"
	"github.com/drillbot-io/drillbot/internal/scenarios"
	"github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
	"github.com/drillbot-io/drillbot/internal/version"
)

func versionCmd(_ context.Context, _ []string, stdout, _ io.Writer) int {
	fmt.Fprintf(stdout, "drillbot %s\n", version.Version)
	return 0
}

func validateCmd(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var pf protectedFlags
	pf.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: drillbot validate [-n NAMESPACE] [--velero-namespace NS] [PATH ...] (files or directories; default drills/)")
		fs.PrintDefaults()
	}
	if code, ok := parse(fs, args); !ok {
		return code
	}
	paths := fs.Args()
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
		NotificationFailed: failed, Observers: observers, Heartbeat: cf.heartbeat, RevertBackoff: cf.revertBackoff, Failpoint: failpointFromEnv()})
}

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cf     clusterFlags
		files  multiFlag
		name   string
		wait   bool
		output string
	)
	cf.register(fs)
	fs.Var(&files, "f", "drill file or directory (repeatable)")
	fs.StringVar(&name, "drill", "", "drill to run when the files hold several")
	fs.BoolVar(&wait, "wait", false, "print live progress while the drill runs (the run always goes to its end, revert included)")
	fs.StringVar(&output, "output", "table", "report format: table or json")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: drillbot run -f FILE [--drill NAME] [--wait] [--output table|json]\n\nExit code: 0 PASS, 1 FAIL, 2 INCONCLUSIVE, 3 could not run.")
		fs.PrintDefaults()
	}
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if len(files) == 0 || (output != "table" && output != "json") {
		fs.Usage()
		return exitUsage
	}
	defs, err := drill.LoadPaths(files, scenarios.Registry(scenarios.Deps{}), cf.protect())
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return exitError
	}
	def, err := pick(defs, name)
	if err != nil {
		fmt.Fprintf(stderr, "drillbot run: %v\n", err)
		return exitUsage
	}
	log := cf.logger(stderr)
	var observers []engine.Observer
	if wait {
		observers = append(observers, &progress{w: stdout})
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
	run, err := s.Engine.Run(ctx, def, "cli")
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

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// progress prints a run's events as they happen.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
}

func (p *progress) Observe(_ context.Context, ev engine.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.start.IsZero() && ev.Run.Status.StartedAt != nil {
		p.start = ev.Run.Status.StartedAt.Time
	}
	at := fmt.Sprintf("[%8s]", engine.FormatDuration(time.Since(p.start)))
	switch ev.Type {
	case engine.EventPhaseStarted:
		fmt.Fprintf(p.w, "%s %-11s started\n", at, ev.Phase)
	case engine.EventPhaseFinished:
		if ev.Err != nil {
			fmt.Fprintf(p.w, "%s %-11s FAILED: %v\n", at, ev.Phase, ev.Err)
		} else {
			fmt.Fprintf(p.w, "%s %-11s done\n", at, ev.Phase)
		}
	case engine.EventMilestone:
		fmt.Fprintf(p.w, "%s   milestone %s\n", at, ev.Message)
	case engine.EventFinished:
		fmt.Fprintf(p.w, "%s finished: %s\n", at, ev.Run.Status.Verdict)
	}
}

func markerCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("marker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clusterFlags
	cf.register(fs)
	target := fs.String("target", "", "namespace whose RPO marker to stamp (must be opted in)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *target == "" {
		fmt.Fprintln(stderr, "drillbot marker: --target is required")
		return exitUsage
	}
	cfg, err := kube.RESTConfig(cf.kubeconfig, cf.context)
	if err == nil {
		var c *kube.Clients
		if c, err = kube.NewClients(cfg); err == nil {
			if err = namespacerestore.CheckOptIn(ctx, c.Kube, *target, nil); err == nil {
				now := time.Now()
				if err = namespacerestore.TouchMarker(ctx, c.Kube, *target, now); err == nil {
					fmt.Fprintf(stdout, "marker %s/%s = %s\n", *target, namespacerestore.MarkerName, now.UTC().Format(time.RFC3339Nano))
					return 0
				}
			}
		}
	}
	fmt.Fprintf(stderr, "drillbot marker: %v\n", err)
	return exitError
}

func installCRDsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("install-crds", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clusterFlags
	cf.register(fs)
	if code, ok := parse(fs, args); !ok {
		return code
	}
	cfg, err := kube.RESTConfig(cf.kubeconfig, cf.context)
	if err == nil {
		err = kube.EnsureCRD(ctx, cfg, v1alpha1.DrillRunCRD)
	}
	if err != nil {
		fmt.Fprintf(stderr, "drillbot install-crds: %v\n", err)
		return exitError
	}
	fmt.Fprintln(stdout, "customresourcedefinition drillruns.drillbot.io established")
	return 0
}
