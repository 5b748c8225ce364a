package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/engine"
)

// haltCmd turns the halt switch on, waits for running daemons to revert
// their runs, and reverts whatever is still unfinished itself.
func newHaltCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		cf      clusterFlags
		reason  string
		waitFor time.Duration
	)
	cmd := &cobra.Command{
		Use:   "halt [--reason TEXT]",
		Short: "halt switch on: revert every active fault, block new runs until resume",
		Long: `Turns the halt switch on: every drillbot process stops its runs (they revert
their faults), no drill starts and no fault is injected until 'drillbot resume'.
Then it waits for the daemons' reverts, reverts whatever is still open itself,
and reports what the cluster records. Exit code 3 while any fault may still be
active (its revert failed): it says FAULT MAY STILL BE ACTIVE and names it.`,
		Example: `  drillbot halt --reason "incident 4711: stop all drills"
  drillbot resume`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return code(haltAll(cmd.Context(), cf, reason, waitFor, stdout, stderr))
		},
	}
	cf.register(cmd.Flags())
	cmd.Flags().StringVar(&reason, "reason", "halted by an operator", "why (recorded on the switch and on every run it stops)")
	cmd.Flags().DurationVar(&waitFor, "wait", 2*time.Minute, "how long running daemons get to revert their runs before this command reverts them itself")
	return cmd
}

func haltAll(ctx context.Context, cf clusterFlags, reason string, waitFor time.Duration, stdout, stderr io.Writer) int {
	log := cf.logger(stderr)
	a, err := newApp(ctx, cf, log, false, nil)
	if err != nil {
		fmt.Fprintf(stderr, "drillbot halt: %v\n", err)
		return exitError
	}
	defer a.Close(context.WithoutCancel(ctx))
	by := os.Getenv("USER")
	if by == "" {
		by = "drillbot halt"
	}
	if err := a.Halt.Halt(ctx, reason, by, time.Now()); err != nil {
		fmt.Fprintf(stderr, "drillbot halt: %v\n", err)
		return exitError
	}
	fmt.Fprintf(stdout, "halted: no drill starts and no fault is injected until 'drillbot resume'\n")
	// Daemons see the switch and revert their own runs; wait for them,
	// saying how many are left (a line redrawn on a terminal, a plain
	// line per change elsewhere).
	start, held, last := time.Now(), -1, -2
	line := newStatusLine(stdout, func() string {
		return fmt.Sprintf("waiting for %d run(s) to revert their faults: %s of %s", held, engine.FormatDuration(time.Since(start).Truncate(time.Second)), waitFor)
	})
	_ = wait.PollUntilContextTimeout(ctx, time.Second, waitFor, true, func(ctx context.Context) (bool, error) {
		n := heldRuns(ctx, a.Engine)
		line.mu.Lock()
		held = n
		line.mu.Unlock()
		if n != last && n > 0 && !line.tty {
			fmt.Fprintf(stdout, "waiting for %d run(s) to revert their faults (at most %s)\n", n, waitFor)
		}
		last = n
		return n == 0, nil
	})
	line.stop()
	// What no daemon reverted, and every revert that failed before, is
	// reverted here.
	done, err := a.Engine.RevertActive(ctx, reason)
	for _, r := range done {
		fmt.Fprintf(stdout, "reverted %s: %s %s\n", r.Name, r.Status.Verdict, r.Status.Reason)
	}
	if err != nil {
		fmt.Fprintf(stderr, "drillbot halt: %v\n", err)
	}
	// Only what the cluster records now is reported: a fault is gone when
	// its run says every undo succeeded.
	open, lerr := a.Engine.OpenRuns(ctx)
	if lerr != nil {
		fmt.Fprintf(stderr, "drillbot halt: cannot tell whether a fault is still active: %v\n", lerr)
		return exitError
	}
	for _, r := range open {
		for _, j := range r.Status.Journal {
			if j.State != v1alpha1.JournalReverted {
				fmt.Fprintf(stdout, "FAULT MAY STILL BE ACTIVE: run %s, %s (%s): %s\n", r.Name, j.ID, j.Description, orNone(j.Error))
			}
		}
		if r.Status.OpenFaults() == 0 {
			fmt.Fprintf(stdout, "run %s still in progress (phase %s)\n", r.Name, r.Status.Phase)
		}
	}
	if len(open) > 0 {
		fmt.Fprintf(stderr, "drillbot halt: %d run(s) not completed: a fault may still be active\n", len(open))
		return exitError
	}
	if err != nil {
		return exitError
	}
	fmt.Fprintf(stdout, "no fault active\n")
	return 0
}

// heldRuns counts the runs a process is still working on (not Completed,
// and not waiting for a revert retry), or -1 when they cannot be read.
func heldRuns(ctx context.Context, e *engine.Engine) int {
	runs, err := e.OpenRuns(ctx)
	if err != nil {
		return -1
	}
	n := 0
	for _, r := range runs {
		if r.Status.Phase != v1alpha1.PhaseRevertFailed {
			n++
		}
	}
	return n
}

func orNone(s string) string {
	if s == "" {
		return "not reverted yet"
	}
	return s
}

func newResumeCmd(stdout, stderr io.Writer) *cobra.Command {
	var cf clusterFlags
	cmd := &cobra.Command{
		Use:     "resume",
		Short:   "halt switch off: drills run again",
		Example: "  drillbot resume",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return code(resume(cmd.Context(), cf, stdout, stderr)) },
	}
	cf.register(cmd.Flags())
	return cmd
}

func resume(ctx context.Context, cf clusterFlags, stdout, stderr io.Writer) int {
	a, err := newApp(ctx, cf, cf.logger(stderr), false, nil)
	if err != nil {
		fmt.Fprintf(stderr, "drillbot resume: %v\n", err)
		return exitError
	}
	defer a.Close(context.WithoutCancel(ctx))
	if err := a.Halt.Resume(ctx); err != nil {
		fmt.Fprintf(stderr, "drillbot resume: %v\n", err)
		return exitError
	}
	fmt.Fprintln(stdout, "resumed: drills run on schedule again")
	return 0
}
