// Command drillbot runs disaster-recovery drills against a Kubernetes cluster
// and measures RTO and RPO against each drill's targets.
//
// Its CLI follows kubectl's, helm's and velero's conventions (cobra): help
// with examples on every command, shell completion, and, installed as
// kubectl-drillbot on the PATH, a kubectl plugin (kubectl drillbot ...).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	// Zones from the binary, not the image (which has none): a drill's
	// TZ or CRON_TZ means the same zone to the scheduler and to verify.
	_ "time/tzdata"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/drillbot-io/drillbot/internal/drill"
)

// Exit codes of drillbot run (and the other commands).
const (
	exitPass         = 0
	exitFail         = 1
	exitInconclusive = 2
	exitError        = 3
	exitUsage        = 64
)

// exitCode carries a command's exit code through cobra; what the command
// had to say it has printed already.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit code %d", int(e)) }

// code turns a command's exit code into cobra's error.
func code(n int) error {
	if n == 0 {
		return nil
	}
	return exitCode(n)
}

// usageError is a command line cobra or a command refused: the command's
// usage follows the message, and the exit code is exitUsage.
type usageError struct {
	cmd *cobra.Command
	err error
}

func (e usageError) Error() string { return e.err.Error() }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := dispatch(ctx, filepath.Base(os.Args[0]), os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// displayName is how the command calls itself: "kubectl drillbot" when run
// as the kubectl plugin (the binary named kubectl-drillbot).
func displayName(binary string) string {
	if strings.HasPrefix(binary, "kubectl-") {
		return "kubectl " + strings.ReplaceAll(strings.TrimPrefix(binary, "kubectl-"), "_", "-")
	}
	return "drillbot"
}

// dispatch runs the command line and returns the exit code.
func dispatch(ctx context.Context, binary string, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(displayName(binary), stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	var (
		ec exitCode
		ue usageError
	)
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ec):
		return int(ec)
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "%s: %v\n\n", ue.cmd.CommandPath(), ue.err)
		ue.cmd.SetOut(stderr)
		_ = ue.cmd.Usage()
		return exitUsage
	default:
		// cobra's own: an unknown command, wrong arguments.
		fmt.Fprintf(stderr, "%s: %v\n\n", root.Name(), err)
		root.SetOut(stderr)
		_ = root.Usage()
		return exitUsage
	}
}

// usageTemplate is cobra's, with the usage line first on one line
// ("Usage: drillbot run -f FILE [flags]").
const usageTemplate = `Usage: {{if .HasAvailableSubCommands}}{{.CommandPath}} COMMAND [flags]{{else}}{{.UseLine}}{{end}}{{if gt (len .Aliases) 0}}

Aliases:
  {{.NameAndAliases}}{{end}}{{if .HasExample}}

Examples:
{{.Example}}{{end}}{{if .HasAvailableSubCommands}}

Commands:{{range .Commands}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{if .HasAvailableLocalFlags}}

Flags:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableInheritedFlags}}

Global Flags:
{{.InheritedFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableSubCommands}}

Run '{{.CommandPath}} COMMAND --help' for a command's flags and examples.{{end}}
`

func newRootCmd(name string, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "drillbot",
		Short: "cron-scheduled disaster-recovery drills for Kubernetes, with RTO and RPO measured",
		Long: `drillbot runs disaster-recovery drills and chaos scenarios against a Kubernetes
cluster: it breaks something on purpose, watches the recovery, measures RTO and
RPO against each drill's targets, and records every run as a DrillRun.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(stderr)
			_ = cmd.Usage()
			return exitCode(exitUsage)
		},
	}
	if name != "drillbot" {
		root.Annotations = map[string]string{cobra.CommandDisplayNameAnnotation: name}
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetUsageTemplate(usageTemplate)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{c, err} })
	root.AddCommand(
		newRunCmd(stdout, stderr),
		newPlanCmd(stdout, stderr),
		newValidateCmd(stdout, stderr),
		newReportCmd(stdout, stderr),
		newEvidenceCmd(stdout, stderr),
		newServeCmd(stdout, stderr),
		newMarkerCmd(stdout, stderr),
		newHaltCmd(stdout, stderr),
		newResumeCmd(stdout, stderr),
		newRBACCmd(stdout, stderr),
		newInstallCRDsCmd(stdout, stderr),
		newCRDCmd(stdout, stderr),
		newVersionCmd(stdout),
	)
	return root
}

// clusterFlags are the flags of every command that talks to the cluster.
type clusterFlags struct {
	kubeconfig, context, logLevel string
	heartbeat                     time.Duration
	// revertBackoff is set by serve: the first wait before the sweep
	// retries a failed revert (zero: the engine's default).
	revertBackoff time.Duration
	protectedFlags
	// alerts are set by serve and run (loaded from their alertFlags).
	alerts alertOptions
	// keepUnarchived is set by serve with an archive.
	keepUnarchived bool
}

// protectedFlags name the namespaces that are never drill targets beyond
// the system's: drillbot's own and Velero's.
type protectedFlags struct {
	namespace, veleroNamespace string
}

func (p *protectedFlags) register(fs *pflag.FlagSet) {
	fs.StringVarP(&p.namespace, "namespace", "n", envOr("DRILLBOT_NAMESPACE", "drillbot-system"), "namespace where DrillRuns are recorded (never a drill target)")
	fs.StringVar(&p.veleroNamespace, "velero-namespace", envOr("DRILLBOT_VELERO_NAMESPACE", "velero"), "Velero's namespace (never a drill target)")
}

// protect is the drill loading option that refuses these namespaces as
// targets.
func (p *protectedFlags) protect() drill.Option {
	return drill.Protect(p.namespace, p.veleroNamespace)
}

func (c *clusterFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "path to the kubeconfig (default: $KUBECONFIG, ~/.kube/config, or in-cluster)")
	fs.StringVar(&c.context, "context", "", "kubeconfig context to use")
	c.protectedFlags.register(fs)
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.DurationVar(&c.heartbeat, "heartbeat-interval", 10*time.Second, "how often a run's heartbeat is renewed; a run silent for three of these is reverted by another drillbot (use the same value everywhere)")
}

// outputFlag registers --output with its values, completed by the shell.
func outputFlag(cmd *cobra.Command, p *string, values ...string) {
	cmd.Flags().StringVarP(p, "output", "o", values[0], strings.Join(values, ", "))
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
}

// checkOutput refuses an --output value not among values.
func checkOutput(cmd *cobra.Command, output string, values ...string) error {
	for _, v := range values {
		if output == v {
			return nil
		}
	}
	return usageError{cmd, fmt.Errorf("unknown --output %q (%s)", output, strings.Join(values, ", "))}
}

// drillFiles registers -f/--filename, completed with YAML files.
func drillFiles(cmd *cobra.Command, p *[]string, usage string) {
	cmd.Flags().StringArrayVarP(p, "filename", "f", nil, usage)
	_ = cmd.MarkFlagFilename("filename", "yaml", "yml")
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
