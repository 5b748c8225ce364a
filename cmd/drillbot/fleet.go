package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/drillbot-io/drillbot/internal/kube"
	"github.com/drillbot-io/drillbot/internal/report"
)

// fleetFlags name the clusters of a fleet report: contexts of the
// kubeconfig (--kubeconfig or the default), and other kubeconfigs (their
// current context each).
type fleetFlags struct {
	contexts, kubeconfigs []string
	timeout               time.Duration
}

func (f *fleetFlags) register(fs *pflag.FlagSet) {
	fs.StringArrayVar(&f.contexts, "cluster-context", nil, "fleet report: a cluster, by its context in the kubeconfig (repeatable)")
	fs.StringArrayVar(&f.kubeconfigs, "cluster-kubeconfig", nil, "fleet report: a cluster, [NAME=]KUBECONFIG: a kubeconfig file and its current context, named NAME or after the context (repeatable)")
	fs.DurationVar(&f.timeout, "cluster-timeout", 30*time.Second, "fleet report: how long one cluster may take to read (from the start of its read; four are read at a time) before it counts as unreachable")
}

func (f *fleetFlags) any() bool { return len(f.contexts)+len(f.kubeconfigs) > 0 }

func (f *fleetFlags) clusters(cf clusterFlags) ([]report.Target, error) {
	var out []report.Target
	seen := map[string]bool{}
	add := func(name string, cfg func() (*rest.Config, error)) error {
		if seen[name] {
			return fmt.Errorf("cluster %q named twice", name)
		}
		seen[name] = true
		out = append(out, report.Target{Name: name, Config: cfg})
		return nil
	}
	for _, ctx := range f.contexts {
		if err := add(ctx, func() (*rest.Config, error) { return kube.RESTConfig(cf.kubeconfig, ctx) }); err != nil {
			return nil, err
		}
	}
	for _, arg := range f.kubeconfigs {
		name, path, named := strings.Cut(arg, "=")
		if !named {
			path = arg
			raw, err := clientcmd.LoadFromFile(path)
			if err != nil {
				return nil, fmt.Errorf("--cluster-kubeconfig %s: %w", path, err)
			}
			name = raw.CurrentContext
		}
		if err := add(name, func() (*rest.Config, error) { return kube.RESTConfig(path, "") }); err != nil {
			return nil, fmt.Errorf("--cluster-kubeconfig %s: %w", arg, err)
		}
	}
	return out, nil
}

// fleetReport reads the clusters a few at a time, each within the timeout, and
// prints the fleet's report; exit 1 when a cluster could not be read.
func fleetReport(ctx context.Context, cf clusterFlags, ff fleetFlags, drills []string, last, days int, output string, stdout, stderr io.Writer) int {
	defs, err := catalog(drills)
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return exitError
	}
	targets, err := ff.clusters(cf)
	if err != nil {
		fmt.Fprintf(stderr, "drillbot report: %v\n", err)
		return exitUsage
	}
	f := report.CollectFleet(ctx, targets, cf.namespace, defs, report.Options{Now: time.Now(), WindowDays: days, LastN: last}, ff.timeout)
	if err := report.WriteFleet(stdout, f, output); err != nil {
		fmt.Fprintf(stderr, "drillbot report: %v\n", err)
		return exitError
	}
	if len(f.Unreachable) > 0 {
		return exitFail
	}
	return 0
}
