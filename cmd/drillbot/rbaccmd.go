package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/rbac"
	"github.com/drillbot-io/drillbot/internal/scenarios"
)

func rbacCmd(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rbac", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		files         multiFlag
		namespace, sa string
		name          string
		helm          bool
	)
	fs.Var(&files, "f", "drill file or directory (repeatable; default drills/)")
	fs.StringVar(&namespace, "namespace", "drillbot-system", "drillbot's namespace (its DrillRuns and service account)")
	fs.StringVar(&sa, "service-account", "drillbot", "drillbot's service account")
	fs.StringVar(&name, "name", "drillbot", "name of the roles and bindings")
	fs.BoolVar(&helm, "helm", false, "print the Helm chart's RBAC template (one block per drill, each gated by .Values.drills.NAME.enabled)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: drillbot rbac [-f PATH ...] [--namespace NS] [--service-account SA] [--helm]\n\nPrints the least-privilege RBAC the drills need: a ClusterRole for what is\ncluster-wide, a Role per namespace for the rest.")
		fs.PrintDefaults()
	}
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if len(files) == 0 {
		files = multiFlag{"drills"}
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
