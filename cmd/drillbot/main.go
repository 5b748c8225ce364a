// Command drillbot runs disaster-recovery drills against a Kubernetes cluster
// and measures RTO and RPO against each drill's targets.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/drillbot-io/drillbot/internal/drill"
)

// Exit codes of drillbot run.
const (
	exitPass         = 0
	exitFail         = 1
	exitInconclusive = 2
	exitError        = 3
	exitUsage        = 64
)

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"run", "run one drill now and print its report", runCmd},
		{"validate", "check drill files; exit non-zero on any error", validateCmd},
		{"report", "DR status report from recorded runs: table, json or markdown", reportCmd},
		{"serve", "run the daemon: schedule drills, serve /healthz, /readyz, /metrics", serveCmd},
		{"marker", "stamp the RPO marker ConfigMap in a namespace once", markerCmd},
		{"halt", "halt switch on: revert every active fault, block new runs until resume", haltCmd},
		{"resume", "halt switch off: drills run again", resumeCmd},
		{"rbac", "print the least-privilege RBAC the drills need (or the chart's template)", rbacCmd},
		{"install-crds", "install the DrillRun CustomResourceDefinition", installCRDsCmd},
		{"version", "print the version", versionCmd},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "drillbot: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: drillbot COMMAND [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-13s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'drillbot COMMAND -h' for a command's flags.")
}

// clusterFlags are the flags of every command that talks to the cluster.
type clusterFlags struct {
	kubeconfig, context, logLevel string
	heartbeat                     time.Duration
	// revertBackoff is set by serve: the first wait before the sweep
	// retries a failed revert (zero: the engine's default).
	revertBackoff time.Duration
	protectedFlags
}

// protectedFlags name the namespaces that are never drill targets beyond
// the system's: drillbot's own and Velero's.
type protectedFlags struct {
	namespace, veleroNamespace string
}

func (p *protectedFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.namespace, "n", envOr("DRILLBOT_NAMESPACE", "drillbot-system"), "namespace where DrillRuns are recorded (never a drill target)")
	fs.StringVar(&p.namespace, "namespace", envOr("DRILLBOT_NAMESPACE", "drillbot-system"), "same as -n")
	fs.StringVar(&p.veleroNamespace, "velero-namespace", envOr("DRILLBOT_VELERO_NAMESPACE", "velero"), "Velero's namespace (never a drill target)")
}

// protect is the drill loading option that refuses these namespaces as
// targets.
func (p *protectedFlags) protect() drill.Option {
	return drill.Protect(p.namespace, p.veleroNamespace)
}

func (c *clusterFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "path to the kubeconfig (default: $KUBECONFIG, ~/.kube/config, or in-cluster)")
	fs.StringVar(&c.context, "context", "", "kubeconfig context to use")
	c.protectedFlags.register(fs)
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.DurationVar(&c.heartbeat, "heartbeat-interval", 10*time.Second, "how often a run's heartbeat is renewed; a run silent for three of these is reverted by another drillbot (use the same value everywhere)")
}

// failpointEnv names a step at which drillbot kills itself with SIGKILL: a
// test hook for the crash tests (steps: engine.Failpoints).
const failpointEnv = "DRILLBOT_FAILPOINT"

func failpointFromEnv() func(string) {
	at := os.Getenv(failpointEnv)
	if at == "" {
		return nil
	}
	return func(step string) {
		if step == at {
			fmt.Fprintf(os.Stderr, "drillbot: failpoint %s: SIGKILL\n", step)
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}
}

func (c *clusterFlags) logger(w io.Writer) *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.logLevel)); err != nil {
		lvl = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl}))
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// parse parses flags; it returns false with the exit code when the command
// must stop (help or a usage error).
func parse(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return exitUsage, false
	}
	return 0, true
}
