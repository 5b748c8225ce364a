package report

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/kube"
	"github.com/drillbot-io/drillbot/internal/scenarios/failoverrestore"
	"github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
)

// Collect reads one cluster's DrillRuns (in drillbot's namespace) and, for
// namespace-restore and failover-restore drills, the age of their newest
// Completed backup, and
// builds its report. defs is the catalog (nil: the drills the runs name).
func Collect(ctx context.Context, cfg *rest.Config, namespace string, defs []drill.Definition, o Options) (Report, error) {
	c, err := kube.NewClients(cfg)
	if err != nil {
		return Report{}, err
	}
	runs, err := (&engine.KubeStore{Client: c.Dynamic, Namespace: namespace, REST: c.Kube.CoreV1().RESTClient()}).List(ctx, "")
	if err != nil {
		return Report{}, err
	}
	// The drills to report on: the catalog, else what the runs snapshotted.
	specs := map[string]drill.Definition{}
	for _, d := range defs {
		specs[d.Name] = d
	}
	o.Drills = append(o.Drills, DrillInfos(defs)...)
	for _, r := range runs {
		if _, ok := specs[r.Spec.Drill]; !ok && len(defs) == 0 {
			specs[r.Spec.Drill] = drill.Definition{Name: r.Spec.Drill, Spec: r.Spec.Snapshot}
		}
	}
	o.BackupTimes = map[string]time.Time{}
	for name, d := range specs {
		var last func(context.Context, dynamic.Interface, v1alpha1.DrillSpec) (time.Time, bool, error)
		switch d.Spec.Scenario {
		case namespacerestore.Name:
			last = namespacerestore.LastCompletedBackup
		case failoverrestore.Name:
			last = failoverrestore.LastCompletedBackup
		default:
			continue
		}
		t, ok, err := last(ctx, c.Dynamic, d.Spec)
		if err != nil {
			return Report{}, fmt.Errorf("drill %s: %w", name, err)
		}
		if ok {
			o.BackupTimes[name] = t
		}
	}
	return Build(runs, o), nil
}

// Target is one cluster of a fleet: its name and how to reach it.
type Target struct {
	Name   string
	Config func() (*rest.Config, error)
}

// fleetParallel is how many clusters CollectFleet reads at once: enough to
// overlap one cluster's network wait with another's decoding, few enough
// that memory stays bounded (a cluster's year of runs is tens of MiB
// decoded) and each read has the CPU its timeout assumes.
const fleetParallel = 4

// CollectFleet reads the targets, fleetParallel at a time, each within
// timeout from the moment its read starts, and builds the fleet's report;
// a target that fails is named in it.
func CollectFleet(ctx context.Context, targets []Target, namespace string, defs []drill.Definition, o Options, timeout time.Duration) Fleet {
	clusters := make([]Cluster, len(targets))
	var wg sync.WaitGroup
	turns := make(chan struct{}, fleetParallel)
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case turns <- struct{}{}:
				defer func() { <-turns }()
			case <-ctx.Done():
				clusters[i] = Cluster{Name: t.Name, Error: ctx.Err().Error()}
				return
			}
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			cfg, err := t.Config()
			if err == nil {
				var rep Report
				if rep, err = Collect(ctx, cfg, namespace, defs, o); err == nil {
					clusters[i] = Cluster{Name: t.Name, Report: &rep}
					return
				}
			}
			clusters[i] = Cluster{Name: t.Name, Error: err.Error()}
		}()
	}
	wg.Wait()
	return BuildFleet(clusters, o.Now, o.WindowDays)
}
