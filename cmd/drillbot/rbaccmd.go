package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/rbac"
	"github.com/drillbot-io/drillbot/internal/scenarios"
)

func newRBACCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		files         []string
		namespace, sa string
		name          string
		helm          bool
	)
	cmd := &cobra.Command{
		Use:   "rbac [-f PATH ...]",
		Short: "print the least-privilege RBAC the drills need (or the chart's template)",
		Long: `Prints the least-privilege RBAC the drills need, derived from the calls each
scenario kind declares (the calls drillbot plan lists): a ClusterRole for what
is cluster-wide, a Role per namespace for the rest.`,
		Example: `  drillbot rbac -f drills/ --namespace drillbot-system | kubectl apply -f -
  drillbot rbac --helm -f drills > deploy/helm/drillbot/templates/rbac.yaml`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return code(printRBAC(files, namespace, sa, name, helm, stdout, stderr))
		},
	}
	drillFiles(cmd, &files, "drill file or directory (repeatable; default drills/)")
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "drillbot-system", "drillbot's namespace (its DrillRuns and service account)")
	cmd.Flags().StringVar(&sa, "service-account", "drillbot", "drillbot's service account")
	cmd.Flags().StringVar(&name, "name", "drillbot", "name of the roles and bindings")
	cmd.Flags().BoolVar(&helm, "helm", false, "print the Helm chart's RBAC template (one block per drill, each gated by .Values.drills.NAME.enabled)")
	return cmd
}

func printRBAC(files []string, namespace, sa, name string, helm bool, stdout, stderr io.Writer) int {
	if len(files) == 0 {
		files = []string{"drills"}
	}
	kinds := scenarios.Registry(scenarios.Deps{})
	defs, err := drill.LoadPaths(files, kinds)
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return exitError
	}
	out, err := renderRBAC(defs, kinds, namespace, sa, name, helm)
	if err != nil {
		fmt.Fprintf(stderr, "drillbot rbac: %v\n", err)
		return exitError
	}
	_, _ = stdout.Write(out)
	return 0
}

func renderRBAC(defs []drill.Definition, kinds engine.Registry, namespace, sa, name string, helm bool) ([]byte, error) {
	if helm {
		return rbac.Helm(defs, kinds)
	}
	grants := rbac.Base(namespace)
	for _, d := range defs {
		g, err := rbac.ForDrill(d, kinds)
		if err != nil {
			return nil, err
		}
		grants = append(grants, g...)
	}
	objs, err := rbac.Merge(grants).Objects(name, rbac.Subject{Namespace: namespace, ServiceAccount: sa},
		map[string]string{"app.kubernetes.io/name": "drillbot", "app.kubernetes.io/component": "rbac"})
	if err != nil {
		return nil, err
	}
	return rbac.YAML(objs)
}
