package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/kube"
)

// newCRDCmd groups what drillbot does to its own CRD.
func newCRDCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "crd",
		Short: "manage the DrillRun CustomResourceDefinition",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(stderr)
			_ = cmd.Usage()
			return exitCode(exitUsage)
		},
	}
	cmd.AddCommand(newCRDApplyCmd(stdout, stderr))
	return cmd
}

func newCRDApplyCmd(stdout, stderr io.Writer) *cobra.Command {
	var kubeconfig, kubeContext string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "apply",
		Short: "apply this drillbot's DrillRun CRD (server-side apply), for upgrades",
		Long: `Applies the DrillRun CustomResourceDefinition built into this drillbot with
server-side apply (field manager "drillbot", taking over the fields an older
install owns) and waits until it is Established. Helm never upgrades a chart's
crds/, and drillbot refuses to start against a CRD that lacks fields it writes
(the API server would silently drop them from every run); the chart's
pre-install/pre-upgrade hook Job runs this command with drillbot's own image,
so a helm upgrade carries the CRD (chart value crds.upgradeHook, on by default).

It refuses, changing nothing, when the CRD in the cluster has fields this
drillbot's lacks (a newer drillbot's): applying an older CRD would drop them
from every DrillRun.

RBAC it needs, on customresourcedefinitions named drillruns.drillbot.io: get
and patch, and create when the CRD does not exist yet (creation through
server-side apply is authorized as create with the name, so a rule limited
by resourceNames allows it; a plain POST create is not, as RBAC cannot limit
create by name).`,
		Example: `  drillbot crd apply --kubeconfig ~/.kube/config
  drillbot crd apply --timeout 2m      # in a pod: the in-cluster service account`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return code(applyCRD(cmd.Context(), kubeconfig, kubeContext, timeout, stdout, stderr))
		},
	}
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "path to the kubeconfig (default: $KUBECONFIG, ~/.kube/config, or in-cluster)")
	cmd.Flags().StringVar(&kubeContext, "context", "", "kubeconfig context to use")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "how long to wait for the API server to apply the CRD and establish it")
	return cmd
}

func applyCRD(ctx context.Context, kubeconfig, kubeContext string, timeout time.Duration, stdout, stderr io.Writer) int {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cfg, err := kube.RESTConfig(kubeconfig, kubeContext)
	if err == nil {
		err = kube.ApplyCRD(ctx, cfg, v1alpha1.DrillRunCRD)
	}
	if err != nil {
		fmt.Fprintf(stderr, "drillbot crd apply: %v\n", err)
		return exitError
	}
	fmt.Fprintln(stdout, "customresourcedefinition drillruns.drillbot.io applied (server-side, field manager drillbot) and established")
	return 0
}
