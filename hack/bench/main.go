// Command bench is `make bench`: it starts the local cluster and measures
// drillbot's RTO precision (against 1s and 5s polling), its idle footprint,
// the scale of the namespace inventory, its share of a measured RTO, a
// failover restore in a second cluster, the fleet report, volume data
// through Velero's node-agent on the real node, and the evidence archive
// on an S3 store of its own (-only archive runs that alone). It
// prints a table and writes it as JSON (and Markdown) under -out.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/app"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/scenarios"
	"github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
	"github.com/drillbot-io/drillbot/test/bench"
	"github.com/drillbot-io/drillbot/test/localcluster"
)

func main() {
	var (
		out      = flag.String("out", "bench/results", "directory for the results (latest.json, latest.md and one JSON per commit)")
		drillbot = flag.String("drillbot", "bin/drillbot", "the drillbot binary the footprint figure runs")
		catalog  = flag.String("drills", "drills", "the catalog the 50 idle drills are copied from")
		trials   = flag.Int("trials", 20, "RTO precision trials")
		window   = flag.Duration("window", time.Minute, "footprint sampling window")
		idle     = flag.Int("idle-drills", 50, "drills scheduled in the footprint figure")
		sizes    = flag.String("sizes", "100,1000,5000", "inventory sizes")
		real     = flag.Int("real-node-trials", 10, "pod-kill trials on a real node (0: skip; needs root)")
		fleet    = flag.Int("fleet-clusters", 10, "clusters of the fleet report figure (kwok-only; 0: skip)")
		fleetN   = flag.Int("fleet-runs", 1000, "DrillRuns per cluster of the fleet report figure")
		failover = flag.Int("failover-objects", 1000, "objects in the namespace the failover-restore figure restores in a DR cluster (0: skip)")
		volumes  = flag.String("volume-mib", "100,1024", "sizes in MiB of the volume-data figure: Velero's node-agent backup and restore on the real node (empty: skip; needs root)")
		only     = flag.String("only", "", "run only this figure, without the cluster: archive (written as only-archive.json and .md under -out, latest.json untouched)")
		archive  = bench.ArchiveConfig{Repeat: 3}
	)
	flag.IntVar(&archive.Writes, "archive-writes", 100, "runs the archive write figure archives one at a time (0: skip the archive figures)")
	flag.IntVar(&archive.Records, "archive-records", 10000, "records of the archive the report is built from")
	flag.IntVar(&archive.Drills, "archive-drills", 20, "drills (chains) the archive's records are spread over")
	flag.StringVar(&archive.VersityGW, "versitygw", os.Getenv("DRILLBOT_VERSITYGW"), "the versitygw binary the archive figures' S3 store runs")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *only != "" {
		if err := runOnly(ctx, *only, *out, archive); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(ctx, *out, *drillbot, *catalog, *trials, *window, *idle, *sizes, *real, *fleet, *fleetN, *failover, *volumes, archive); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out, drillbotBin, catalogDir string, trials int, window time.Duration, idle int, sizeList string, realTrials, fleetClusters, fleetRuns, failoverObjects int, volumeMiB string, arch bench.ArchiveConfig) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	bins, err := localcluster.BinsFromEnv()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "drillbot-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	started := time.Now()
	cl, err := localcluster.Start(ctx, localcluster.Config{Bins: bins, Dir: filepath.Join(dir, "cluster"), Logger: log})
	if err != nil {
		return err
	}
	defer cl.Stop()
	res := &bench.Results{Commit: commit(), Started: started.UTC(), Machine: fmt.Sprintf("%s/%s, %d CPUs", runtime.GOOS, runtime.GOARCH, runtime.NumCPU()),
		Details: map[string]any{}}

	// 1. RTO precision.
	log.Info("RTO precision", "trials", trials)
	if err := namespace(ctx, cl, "bench-rto"); err != nil {
		return err
	}
	prec, err := bench.MeasurePrecision(ctx, cl.Kube, "bench-rto", trials)
	if err != nil {
		return fmt.Errorf("RTO precision: %w", err)
	}
	res.Rows = append(res.Rows, prec.Rows(250*time.Millisecond)...)
	res.Details["rtoPrecision"] = prec

	// 2. Footprint.
	log.Info("footprint", "drills", idle, "window", window)
	defs, err := drill.LoadPaths([]string{catalogDir}, scenarios.Registry(scenarios.Deps{}))
	if err != nil {
		return err
	}
	drillsDir := filepath.Join(dir, "idle-drills")
	if err := os.MkdirAll(drillsDir, 0o755); err != nil {
		return err
	}
	if err := bench.WriteDrills(defs, drillsDir, idle); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	fp, err := bench.MeasureFootprint(ctx, drillbotBin, cl.ObservedKubeconfig(), drillsDir, cl.AuditLog(), localcluster.ObservedUser, window, logf)
	if err != nil {
		return fmt.Errorf("footprint: %w", err)
	}
	fp.Drills = idle
	res.Rows = append(res.Rows, fp.Rows(40<<20)...)
	res.Details["footprint"] = fp

	// 3. Inventory scale.
	log.Info("inventory scale", "sizes", sizeList)
	if err := namespace(ctx, cl, "bench-inventory"); err != nil {
		return err
	}
	scale := &bench.InventoryScale{}
	filled := 0
	for _, s := range strings.Split(sizeList, ",") {
		var n int
		if _, err := fmt.Sscan(s, &n); err != nil {
			return fmt.Errorf("-sizes: %q: %w", s, err)
		}
		if err := bench.Fill(ctx, cl.Kube, "bench-inventory", filled, n); err != nil {
			return fmt.Errorf("fill %d objects: %w", n, err)
		}
		filled = n
		d, err := bench.Median(func() (bench.InventoryCost, error) { return bench.MeasureInventory(ctx, cl.REST, "bench-inventory", n) })
		if err != nil {
			return err
		}
		p, err := bench.Median(func() (bench.InventoryCost, error) {
			return bench.MeasurePeerInventory(ctx, cl.REST, "bench-inventory", n)
		})
		if err != nil {
			return err
		}
		log.Info("inventory", "objects", n, "drillbot", d.Wall, "peer", p.Wall)
		scale.Drillbot, scale.Peer = append(scale.Drillbot, d), append(scale.Peer, p)
	}
	res.Rows = append(res.Rows, scale.Rows(2*time.Second)...)
	res.Details["inventory"] = scale

	// 4. Drill overhead.
	log.Info("drill overhead")
	o, err := overhead(ctx, cl, log)
	if err != nil {
		return fmt.Errorf("drill overhead: %w", err)
	}
	res.Rows = append(res.Rows, o.Rows()...)
	res.Details["overhead"] = o

	// 5. A regional failover: a DR cluster restores a copy of a namespace
	// of failoverObjects objects from the bench cluster's backups.
	if failoverObjects > 0 {
		log.Info("failover restore", "objects", failoverObjects)
		fo, err := failover(ctx, bins, cl, filepath.Join(dir, "dr"), failoverObjects, log)
		if err != nil {
			return fmt.Errorf("failover restore: %w", err)
		}
		res.Rows = append(res.Rows, fo.Rows()...)
		res.Details["failoverRestore"] = fo
	}

	// 6. The fleet report: the bench cluster and fleetClusters-1 more
	// (control plane and kwok only), fleetRuns DrillRuns each.
	if fleetClusters > 0 {
		log.Info("fleet report", "clusters", fleetClusters, "runs", fleetRuns)
		fs, err := fleet(ctx, bins, cl, filepath.Join(dir, "fleet"), fleetClusters, fleetRuns, log)
		if err != nil {
			return fmt.Errorf("fleet report: %w", err)
		}
		res.Rows = append(res.Rows, fs.Rows(3*time.Second)...)
		res.Details["fleetReport"] = fs
	}

	// 6. pod-kill on a real node (a second cluster: the machine's one real
	// node, started once the fake-node figures are done).
	if realTrials > 0 {
		cl.Stop()
		log.Info("pod-kill on the real node", "trials", realTrials)
		rp, pf, err := realNode(ctx, bins, filepath.Join(dir, "real"), realTrials, drillsDir, idle, window, log)
		if err != nil {
			return fmt.Errorf("real node: %w", err)
		}
		res.Rows = append(res.Rows, rp.Rows()...)
		res.Rows = append(res.Rows, pf.Rows(40<<20)...)
		res.Details["realNodePodKill"] = rp
		res.Details["realNodePodFootprint"] = pf
	}

	// 7. Volume data through Velero's node-agent on the real node (a
	// cluster of its own: the machine's one real node).
	if volumeMiB != "" {
		cl.Stop()
		var figs []bench.VolumeData
		vcl, err := localcluster.Start(ctx, localcluster.Config{Bins: bins, Dir: filepath.Join(dir, "volumes"), Logger: log, RealNode: true, NodeAgent: true})
		if err != nil {
			return fmt.Errorf("volume data: %w", err)
		}
		for _, m := range strings.Split(volumeMiB, ",") {
			var n int64
			if _, err := fmt.Sscan(m, &n); err != nil {
				vcl.Stop()
				return fmt.Errorf("-volume-mib: %q: %w", m, err)
			}
			log.Info("volume data", "MiB", n)
			v, err := volumeData(ctx, vcl, n<<20, log)
			if err != nil {
				vcl.Stop()
				return fmt.Errorf("volume data %d MiB: %w", n, err)
			}
			res.Rows = append(res.Rows, v.Rows()...)
			figs = append(figs, v)
		}
		vcl.Stop()
		res.Details["volumeData"] = figs
	}

	// 8. The evidence archive on an S3 store of its own (versitygw on
	// loopback, no cluster): write latency, bytes per record, the report
	// from a large archive.
	if arch.Writes > 0 {
		if arch.VersityGW == "" {
			arch.VersityGW = bins.VersityGW
		}
		if err := archiveFigures(ctx, res, arch, log); err != nil {
			return err
		}
	}

	res.Duration = time.Since(started).Round(time.Second).String()
	fmt.Println()
	if err := res.WriteTable(os.Stdout); err != nil {
		return err
	}
	return write(res, out)
}

// archiveFigures measures the evidence archive and adds its rows.
func archiveFigures(ctx context.Context, res *bench.Results, cfg bench.ArchiveConfig, log *slog.Logger) error {
	log.Info("evidence archive", "writes", cfg.Writes, "records", cfg.Records, "drills", cfg.Drills)
	c, err := bench.MeasureArchive(ctx, cfg)
	if err != nil {
		return fmt.Errorf("evidence archive: %w", err)
	}
	res.Rows = append(res.Rows, c.Rows()...)
	res.Details["archive"] = c
	return nil
}

// runOnly runs one figure that needs no cluster and writes its table as
// only-<figure>.json and .md under out (the full table, latest.json, is
// left as it is).
func runOnly(ctx context.Context, figure, out string, arch bench.ArchiveConfig) error {
	if figure != "archive" {
		return fmt.Errorf("-only %q: the figures that run alone are: archive", figure)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	started := time.Now()
	res := &bench.Results{Commit: commit(), Started: started.UTC(), Machine: fmt.Sprintf("%s/%s, %d CPUs", runtime.GOOS, runtime.GOARCH, runtime.NumCPU()),
		Details: map[string]any{}}
	arch.Writes = max(arch.Writes, 1)
	if err := archiveFigures(ctx, res, arch, log); err != nil {
		return err
	}
	res.Duration = time.Since(started).Round(time.Second).String()
	fmt.Println()
	if err := res.WriteTable(os.Stdout); err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(out, "only-"+figure+".json"))
	if err != nil {
		return err
	}
	if err := res.WriteJSON(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	md, err := os.Create(filepath.Join(out, "only-"+figure+".md"))
	if err != nil {
		return err
	}
	defer md.Close()
	res.WriteMarkdown(md)
	fmt.Printf("\nwritten: %s/only-%s.json, %s/only-%s.md\n", out, figure, out, figure)
	return nil
}

const realPodKillDrill = `apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata: {name: bench-pod-kill}
spec:
  scenario: pod-kill
  objectives: {rto: 2m}
  target: {namespace: bench-real, selector: {app: web}}
`

// realNode measures, on a cluster with a real node, pod-kill on real
// containers, then drillbot's own footprint as the chart installs it (two
// pods, the idle drills as customDrills).
func realNode(ctx context.Context, bins localcluster.Bins, dir string, trials int, drillsDir string, idle int, window time.Duration, log *slog.Logger) (*bench.RealPodKill, *bench.PodFootprint, error) {
	cl, err := localcluster.Start(ctx, localcluster.Config{Bins: bins, Dir: dir, Logger: log, RealNode: true})
	if err != nil {
		return nil, nil, err
	}
	defer cl.Stop()
	rp, err := realPodKill(ctx, cl, trials, log)
	if err != nil {
		return nil, nil, fmt.Errorf("pod-kill: %w", err)
	}
	log.Info("drillbot pod footprint", "drills", idle, "window", window)
	if err := installChart(ctx, cl, drillsDir, dir); err != nil {
		return nil, nil, fmt.Errorf("install the chart: %w", err)
	}
	// Settle as the process figure does.
	time.Sleep(5 * time.Second)
	pf, err := bench.MeasurePodFootprint(ctx, cl.KubeletGet, "drillbot-system", "drillbot", window)
	if err != nil {
		return nil, nil, err
	}
	pf.Drills = idle
	return rp, pf, nil
}

// installChart installs deploy/helm/drillbot with drillbot's local image and
// the drills in drillsDir as customDrills, and waits for its pods.
func installChart(ctx context.Context, cl *localcluster.Cluster, drillsDir, dir string) error {
	if err := cl.ImportImage(ctx, "drillbot"); err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(drillsDir, "*.yaml"))
	if err != nil {
		return err
	}
	custom := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		custom[strings.TrimSuffix(filepath.Base(f), ".yaml")] = string(b)
	}
	values, err := yaml.Marshal(map[string]any{
		"image":        map[string]any{"repository": "drillbot.local/drillbot", "tag": "dev", "pullPolicy": "Never"},
		"customDrills": custom,
		// Only the idle drills: the catalog's default one targets drill-demo.
		"drills": map[string]any{"unsigned-image": map[string]any{"enabled": false}},
	})
	if err != nil {
		return err
	}
	vf := filepath.Join(dir, "values.yaml")
	if err := os.WriteFile(vf, values, 0o600); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, os.Getenv("DRILLBOT_HELM"), "install", "drillbot", "deploy/helm/drillbot", "--kubeconfig", cl.Kubeconfig,
		"--namespace", "drillbot-system", "--create-namespace", "--values", vf, "--wait", "--timeout", "3m").CombinedOutput()
	if err != nil {
		return fmt.Errorf("helm install: %w: %s", err, out)
	}
	return nil
}

func realPodKill(ctx context.Context, cl *localcluster.Cluster, trials int, log *slog.Logger) (*bench.RealPodKill, error) {
	if err := bench.SampleDeployment(ctx, cl.Kube, "bench-real", localcluster.SampleApp(map[string]string{"app": "web"}), 2); err != nil {
		return nil, err
	}
	a, def, err := drillApp(ctx, cl, log, "bench-pod-kill.yaml", realPodKillDrill)
	if err != nil {
		return nil, err
	}
	defer a.Close(ctx)
	return bench.MeasureRealPodKill(ctx, cl.Kube, "bench-real", 2, trials, func(ctx context.Context) (*v1alpha1.DrillRun, error) {
		run, err := a.Engine.Run(ctx, def, "bench")
		if err != nil {
			return nil, err
		}
		return a.Store.Get(ctx, run.Name)
	})
}

// drillApp is drillbot's production wiring on cl, and the drill in doc.
func drillApp(ctx context.Context, cl *localcluster.Cluster, log *slog.Logger, file, doc string) (*app.App, drill.Definition, error) {
	defs, err := drill.Parse(file, []byte(doc), scenarios.Registry(scenarios.Deps{}))
	if err != nil {
		return nil, drill.Definition{}, err
	}
	a, err := app.New(ctx, cl.REST, app.Options{Namespace: "drillbot-system", Logger: log})
	return a, defs[0], err
}

// fleet starts the fleet's other clusters, fills every one with runs
// DrillRuns and measures the fleet report over the first cluster alone and
// over all of them.
func fleet(ctx context.Context, bins localcluster.Bins, first *localcluster.Cluster, dir string, clusters, runs int, log *slog.Logger) (*bench.FleetScale, error) {
	cfgs := []*rest.Config{first.REST}
	for i := 1; i < clusters; i++ {
		c, err := localcluster.Start(ctx, localcluster.Config{Bins: bins, Dir: filepath.Join(dir, fmt.Sprint(i)), Logger: log, NoBackups: true})
		if err != nil {
			return nil, err
		}
		defer c.Stop()
		cfgs = append(cfgs, c.REST)
	}
	const ns = "bench-fleet"
	for i, cfg := range cfgs {
		log.Info("fleet report: recording runs", "cluster", i, "runs", runs)
		if err := bench.FillRuns(ctx, cfg, ns, runs); err != nil {
			return nil, err
		}
	}
	s := &bench.FleetScale{}
	for _, k := range []int{1, len(cfgs)} {
		c, err := bench.MedianOf(3, func() (bench.FleetCost, error) { return bench.MeasureFleet(ctx, cfgs[:k], ns, runs) }, func(c bench.FleetCost) time.Duration { return c.Wall })
		if err != nil {
			return nil, err
		}
		s.Costs = append(s.Costs, c)
	}
	return s, nil
}

func namespace(ctx context.Context, cl *localcluster.Cluster, name string) error {
	_, err := cl.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	return err
}

const overheadDrill = `apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata: {name: bench-namespace-restore}
spec:
  scenario: namespace-restore
  objectives: {rto: 30m, rpo: 1h}
  timeouts: {preflight: 3m, recover: 5m}
  target: {namespace: bench-shop}
  params:
    backup: {create: true}
`

func overhead(ctx context.Context, cl *localcluster.Cluster, log *slog.Logger) (*bench.Overhead, error) {
	if err := bench.DemoApp(ctx, cl.Kube, "bench-shop"); err != nil {
		return nil, err
	}
	// The preflight waits for the workloads to be Ready.
	return witnessed(ctx, cl, log, "bench-namespace-restore.yaml", overheadDrill, func() (*bench.Witness, error) {
		return bench.Watch(ctx, cl.Kube, cl.Dynamic, "bench-shop", cl.VeleroNamespace)
	})
}

// witnessed runs the drill doc on cl (production wiring) while watch's
// witness records the events of its milestones, and compares them.
func witnessed(ctx context.Context, cl *localcluster.Cluster, log *slog.Logger, file, doc string, watch func() (*bench.Witness, error)) (*bench.Overhead, error) {
	a, def, err := drillApp(ctx, cl, log, file, doc)
	if err != nil {
		return nil, err
	}
	defer a.Close(ctx)
	w, err := watch()
	if err != nil {
		return nil, err
	}
	run, err := a.Engine.Run(ctx, def, "bench")
	w.Stop()
	if err != nil {
		return nil, err
	}
	stored, err := a.Store.Get(ctx, run.Name)
	if err != nil {
		return nil, err
	}
	if stored.Status.Verdict != v1alpha1.VerdictPass {
		return nil, fmt.Errorf("run %s: %s %s", stored.Name, stored.Status.Verdict, stored.Status.Reason)
	}
	return w.Compare(stored)
}

const failoverDrill = `apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata: {name: bench-failover-restore}
spec:
  scenario: failover-restore
  objectives: {rto: 30m, rpo: 1h}
  timeouts: {recover: 10m, verify: 5m, revert: 10m}
  target: {namespace: bench-failover-copy}
  params: {sourceNamespace: bench-failover, storageLocation: default}
`

// failover starts a DR cluster reading src's store through a ReadOnly
// location, backs up a namespace of objects ConfigMaps and an app in src,
// and runs failover-restore in the DR cluster, witnessed independently.
func failover(ctx context.Context, bins localcluster.Bins, src *localcluster.Cluster, dir string, objects int, log *slog.Logger) (*bench.Overhead, error) {
	const ns = "bench-failover"
	if err := bench.DemoApp(ctx, src.Kube, ns); err != nil {
		return nil, err
	}
	if err := bench.Fill(ctx, src.Kube, ns, 0, objects); err != nil {
		return nil, err
	}
	if err := namespacerestore.TouchMarker(ctx, src.Kube, ns, time.Now()); err != nil {
		return nil, err
	}
	dr, err := localcluster.Start(ctx, localcluster.Config{Bins: bins, Dir: dir, Logger: log, S3URL: src.S3URL, ReadOnlyBSL: true})
	if err != nil {
		return nil, err
	}
	defer dr.Stop()
	if b, err := src.Backup(ctx, ns+"-1", ns); err != nil || b.Status.Phase != velerov1.BackupPhaseCompleted {
		return nil, fmt.Errorf("backup: %s %v", b.Status.Phase, err)
	}
	if _, err := dr.WaitBackup(ctx, ns+"-1"); err != nil {
		return nil, err
	}
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:"true"}}}`, v1alpha1.LabelAllowDisaster)
	if _, err := dr.Dynamic.Resource(namespacerestore.BSLGVR).Namespace(dr.VeleroNamespace).Patch(ctx, "default", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		return nil, err
	}
	o, err := witnessed(ctx, dr, log, "bench-failover-restore.yaml", failoverDrill, func() (*bench.Witness, error) {
		return bench.WatchCopy(ctx, dr.Kube, dr.Dynamic, "bench-failover-copy", dr.VeleroNamespace)
	})
	if err != nil {
		return nil, err
	}
	o.Label = fmt.Sprintf("failover-restore (%d objects)", objects)
	return o, nil
}

func write(res *bench.Results, out string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for _, name := range []string{"latest.json", res.Commit + ".json"} {
		f, err := os.Create(filepath.Join(out, name))
		if err != nil {
			return err
		}
		if err := res.WriteJSON(f); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	f, err := os.Create(filepath.Join(out, "latest.md"))
	if err != nil {
		return err
	}
	defer f.Close()
	res.WriteMarkdown(f)
	fmt.Printf("\nwritten: %s/latest.json, %s/%s.json, %s/latest.md\n", out, out, res.Commit, out)
	return nil
}

func commit() string {
	b, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

// volumeData backs up a volume of size random bytes with Velero's
// node-agent and runs namespace-restore on it, with a data check that
// reads every restored byte (sampleapp sum); the raw copy of the same file
// on the same disk is the physical limit.
func volumeData(ctx context.Context, cl *localcluster.Cluster, size int64, log *slog.Logger) (bench.VolumeData, error) {
	v := bench.VolumeData{Size: size}
	ns := fmt.Sprintf("bench-vol-%d", size>>20)
	if _, err := cl.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
		Labels: map[string]string{v1alpha1.LabelAllowDisaster: "true"}}}, metav1.CreateOptions{}); err != nil {
		return v, err
	}
	data, err := cl.LocalVolume(ctx, ns+"-data", "2Gi", ns, "data")
	if err != nil {
		return v, err
	}
	spare, err := cl.LocalVolume(ctx, ns+"-spare", "2Gi", "", "")
	if err != nil {
		return v, err
	}
	sum, err := bench.WriteRandom(filepath.Join(data, "blob"), size)
	if err != nil {
		return v, err
	}
	if v.RawCopy, err = bench.RawCopy(ctx, filepath.Join(data, "blob"), filepath.Join(spare, "..", "rawcopy")); err != nil {
		return v, err
	}
	claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: ptr.To(localcluster.LocalStorageClass), VolumeName: ns + "-data",
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("2Gi")}}}}
	if _, err := cl.Kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, claim, metav1.CreateOptions{}); err != nil {
		return v, err
	}
	tpl := localcluster.SampleApp(map[string]string{"app": "web"})
	tpl.Annotations = map[string]string{"backup.velero.io/backup-volumes": "data"}
	tpl.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}}
	tpl.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	if _, err := cl.Kube.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: tpl.Labels}, Template: tpl}}, metav1.CreateOptions{}); err != nil {
		return v, err
	}
	if err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		d, err := cl.Kube.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		return err == nil && d.Status.ReadyReplicas == 1, nil
	}); err != nil {
		return v, fmt.Errorf("web not Ready: %w", err)
	}
	b, err := cl.Backup(ctx, ns+"-1", ns)
	if err == nil {
		b, err = cl.WaitBackup(ctx, b.Name)
	}
	if err != nil || b.Status.Phase != velerov1.BackupPhaseCompleted {
		return v, fmt.Errorf("backup %s: %s (%v)", b.Name, b.Status.Phase, err)
	}
	var pvbs velerov1.PodVolumeBackupList
	if err := veleroList(ctx, cl, "podvolumebackups", velerov1.BackupNameLabel+"="+b.Name, &pvbs); err != nil || len(pvbs.Items) != 1 {
		return v, fmt.Errorf("the backup's PodVolumeBackups: %d (%v)", len(pvbs.Items), err)
	}
	if v.Backup, err = span(pvbs.Items[0].Status.StartTimestamp, pvbs.Items[0].Status.CompletionTimestamp); err != nil {
		return v, fmt.Errorf("PodVolumeBackup %s: %w", pvbs.Items[0].Name, err)
	}
	tpl = localcluster.SampleApp(nil)
	c := &tpl.Spec.Containers[0]
	c.Name, c.ReadinessProbe, c.Args = "check", nil, []string{"sum", "/data/blob", sum}
	c.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data", ReadOnly: true}}
	tpl.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data", ReadOnly: true}}}}
	tpl.Labels = nil
	check, err := json.Marshal(tpl)
	if err != nil {
		return v, err
	}
	doc := fmt.Sprintf("apiVersion: drillbot.io/v1alpha1\nkind: Drill\nmetadata: {name: %s}\nspec:\n  scenario: namespace-restore\n  objectives: {rto: 30m, rpo: 1h}\n  target: {namespace: %s}\n  params: {backup: {name: %s}}\n  verify:\n    job:\n      template: %s\n",
		ns, ns, b.Name, check)
	a, def, err := drillApp(ctx, cl, log, ns+".yaml", doc)
	if err != nil {
		return v, err
	}
	defer a.Close(ctx)
	r, err := a.Engine.Run(ctx, def, "bench")
	if err != nil {
		return v, err
	}
	if run, err := a.Store.Get(ctx, r.Name); err == nil {
		r = run
	}
	if r.Status.Verdict != v1alpha1.VerdictPass {
		return v, fmt.Errorf("drill %s: %s: %s", r.Name, r.Status.Verdict, r.Status.Reason)
	}
	if v.RTO, err = time.ParseDuration(r.Status.RTO); err != nil {
		return v, err
	}
	v.Shares = bench.Shares(r)
	var pvrs velerov1.PodVolumeRestoreList
	if err := veleroList(ctx, cl, "podvolumerestores", velerov1.RestoreNameLabel+"="+r.Name, &pvrs); err != nil || len(pvrs.Items) != 1 {
		return v, fmt.Errorf("the restore's PodVolumeRestores: %d (%v)", len(pvrs.Items), err)
	}
	if v.Restore, err = span(pvrs.Items[0].Status.StartTimestamp, pvrs.Items[0].Status.CompletionTimestamp); err != nil {
		return v, fmt.Errorf("PodVolumeRestore %s: %w", pvrs.Items[0].Name, err)
	}
	log.Info("volume data", "MiB", size>>20, "raw copy", v.RawCopy, "backup", v.Backup, "restore", v.Restore, "rto", v.RTO)
	// Free the disk for the next size.
	_ = cl.Kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
	for _, d := range []string{data, spare} {
		_ = os.RemoveAll(filepath.Join(d, "blob"))
	}
	return v, nil
}

// veleroList lists Velero objects of resource in Velero's namespace by
// label selector into out.
func veleroList(ctx context.Context, cl *localcluster.Cluster, resource, selector string, out any) error {
	l, err := cl.Dynamic.Resource(velerov1.SchemeGroupVersion.WithResource(resource)).Namespace("velero").List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return err
	}
	return k8sruntime.DefaultUnstructuredConverter.FromUnstructured(l.UnstructuredContent(), out)
}

// span is a Velero object's start to completion, both on Velero's clock.
func span(start, end *metav1.Time) (time.Duration, error) {
	if start == nil || end == nil {
		return 0, errors.New("no start or completion time")
	}
	return end.Sub(start.Time), nil
}
