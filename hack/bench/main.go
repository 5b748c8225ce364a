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
	"slices"
	"strings"
	"syscall"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/app"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/scenarios"
	"github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
	"github.com/drillbot-io/drillbot/test/bench"
	"github.com/drillbot-io/drillbot/test/localcluster"
	"github.com/drillbot-io/drillbot/test/testharness"
)

// config is what the flags ask for.
type config struct {
	out, drillbot, catalog string
	trials                 int
	window                 time.Duration
	idle                   []int // drills of the footprint figures, fewest first
	sizes                  []int
	realTrials             int
	fleetClusters          int
	fleetRuns              int
	apiRuns                int
	endurance              bench.EnduranceConfig
	failoverObjects        int
	volumeMiB              []int64
	archive                bench.ArchiveConfig
	// only names the figures to run (all when empty).
	only map[string]bool
}

// figures are the names -only takes, in the order they run.
var figures = []string{"rto", "footprint", "inventory", "overhead", "api-load", "endurance", "failover", "fleet", "real-node", "volume", "archive"}

func (c config) want(figure string) bool { return len(c.only) == 0 || c.only[figure] }

func main() {
	var (
		cfg     = config{archive: bench.ArchiveConfig{Repeat: 3}}
		idle    = flag.String("idle-drills", "50,500", "drills scheduled in the footprint figures (the growth rows compare the first and the last)")
		sizes   = flag.String("sizes", "100,1000,5000,50000", "inventory sizes")
		volumes = flag.String("volume-mib", "100,1024", "sizes in MiB of the volume-data figure: Velero's node-agent backup and restore on the real node (empty: skip; needs root)")
		only    = flag.String("only", "", "run only these figures (comma-separated: "+strings.Join(figures, ", ")+"), written as only-<figures>.json and .md under -out, latest.json untouched")
	)
	flag.StringVar(&cfg.out, "out", "bench/results", "directory for the results (latest.json, latest.md and one JSON per commit)")
	flag.StringVar(&cfg.drillbot, "drillbot", "bin/drillbot", "the drillbot binary the footprint figure runs")
	flag.StringVar(&cfg.catalog, "drills", "drills", "the catalog the idle drills are copied from")
	flag.IntVar(&cfg.trials, "trials", 20, "RTO precision trials")
	flag.DurationVar(&cfg.window, "window", time.Minute, "footprint sampling window")
	flag.IntVar(&cfg.realTrials, "real-node-trials", 10, "pod-kill trials on a real node (0: skip; needs root)")
	flag.IntVar(&cfg.fleetClusters, "fleet-clusters", 10, "clusters of the fleet report figure (kwok-only; 0: skip)")
	flag.IntVar(&cfg.fleetRuns, "fleet-runs", 10000, "DrillRuns per cluster of the report and fleet report figures")
	flag.IntVar(&cfg.apiRuns, "api-runs", 5, "runs of each scenario kind the API load figure counts (0: skip)")
	flag.IntVar(&cfg.endurance.Runs, "endurance-runs", 1000, "runs of the endurance figure (0: skip)")
	flag.IntVar(&cfg.endurance.PodKill, "endurance-pod-kill", 3, "pod-kill drills of the endurance figure, each on a target of its own")
	flag.IntVar(&cfg.endurance.Falco, "endurance-corrupt-config", 2, "corrupt-config drills of the endurance figure, each on a target of its own")
	flag.DurationVar(&cfg.endurance.Every, "endurance-every", 2*time.Second, "the endurance drills' schedule (@every; their minInterval is 1s)")
	flag.IntVar(&cfg.endurance.History, "endurance-history", 5, "the endurance drills' successful and failed runs history limits")
	flag.IntVar(&cfg.failoverObjects, "failover-objects", 1000, "objects in the namespace the failover-restore figure restores in a DR cluster (0: skip)")
	flag.IntVar(&cfg.archive.Writes, "archive-writes", 100, "runs the archive write figure archives one at a time (0: skip the archive figures)")
	flag.IntVar(&cfg.archive.Records, "archive-records", 10000, "records of the archive the report is built from")
	flag.IntVar(&cfg.archive.Drills, "archive-drills", 20, "drills (chains) the archive's records are spread over")
	flag.StringVar(&cfg.archive.VersityGW, "versitygw", os.Getenv("DRILLBOT_VERSITYGW"), "the versitygw binary the archive figures' S3 store runs")
	flag.Parse()
	err := func() error {
		var err error
		if cfg.idle, err = ints[int]("-idle-drills", *idle); err != nil {
			return err
		}
		if cfg.sizes, err = ints[int]("-sizes", *sizes); err != nil {
			return err
		}
		if cfg.volumeMiB, err = ints[int64]("-volume-mib", *volumes); err != nil {
			return err
		}
		if *only != "" {
			cfg.only = map[string]bool{}
			for _, f := range strings.Split(*only, ",") {
				if !slices.Contains(figures, f) {
					return fmt.Errorf("-only: %q is not a figure (%s)", f, strings.Join(figures, ", "))
				}
				cfg.only[f] = true
			}
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if *only == "archive" {
			return runOnly(ctx, *only, cfg.out, cfg.archive)
		}
		return run(ctx, cfg)
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// ints parses a comma-separated list of numbers (empty: none).
func ints[T int | int64](flagName, list string) ([]T, error) {
	var out []T
	for _, s := range strings.Split(list, ",") {
		if s == "" {
			continue
		}
		var n T
		if _, err := fmt.Sscan(s, &n); err != nil {
			return nil, fmt.Errorf("%s: %q: %w", flagName, s, err)
		}
		out = append(out, n)
	}
	return out, nil
}

func run(ctx context.Context, cfg config) (err error) {
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
	defer func() {
		// A figure that fails does not take the others' rows with it.
		if err != nil && len(res.Rows) > 0 {
			fmt.Fprintln(os.Stderr, "\nthe figures measured before the failure:")
			_ = res.WriteTable(os.Stderr)
		}
	}()

	// 1. RTO precision.
	if cfg.want("rto") {
		log.Info("RTO precision", "trials", cfg.trials)
		if err := namespace(ctx, cl, "bench-rto"); err != nil {
			return err
		}
		prec, err := bench.MeasurePrecision(ctx, cl.Kube, "bench-rto", cfg.trials)
		if err != nil {
			return fmt.Errorf("RTO precision: %w", err)
		}
		res.Rows = append(res.Rows, prec.Rows(250*time.Millisecond)...)
		res.Details["rtoPrecision"] = prec
	}

	// 2. Footprint: the idle daemon with few drills and with many, each
	// drill on a target namespace of its own.
	drillsDir := "" // the most drills, for the real node's pod figure
	var fps []*bench.Footprint
	for _, n := range cfg.idle {
		if !cfg.want("footprint") && !cfg.want("real-node") {
			break
		}
		d, targets, markers, err := idleDrills(ctx, cl, cfg.catalog, filepath.Join(dir, fmt.Sprintf("idle-drills-%d", n)), n)
		if err != nil {
			return err
		}
		drillsDir = d
		if !cfg.want("footprint") {
			continue
		}
		log.Info("footprint", "drills", n, "targets", targets, "namespace-restore targets", markers, "window", cfg.window)
		logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("serve-%d.log", n)))
		if err != nil {
			return err
		}
		fp, err := bench.MeasureFootprint(ctx, cfg.drillbot, cl.ObservedKubeconfig(), d, cl.AuditLog(), localcluster.ObservedUser, cfg.window, logf)
		logf.Close()
		if err != nil {
			return fmt.Errorf("footprint, %d drills: %w", n, err)
		}
		fp.Drills, fp.MarkerTargets = n, markers
		res.Rows = append(res.Rows, fp.Rows(40<<20)...)
		fps = append(fps, fp)
	}
	if len(fps) > 1 {
		res.Rows = append(res.Rows, bench.GrowthRows(fps[0], fps[len(fps)-1])...)
	}
	if len(fps) > 0 {
		res.Details["footprint"] = fps
	}

	// 3. Inventory scale.
	if cfg.want("inventory") {
		log.Info("inventory scale", "sizes", cfg.sizes)
		if err := namespace(ctx, cl, "bench-inventory"); err != nil {
			return err
		}
		scale := &bench.InventoryScale{}
		filled := 0
		for _, n := range cfg.sizes {
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
			f, err := bench.Median(func() (bench.InventoryCost, error) {
				return bench.MeasureFailoverCompare(ctx, cl.REST, "bench-inventory", n)
			})
			if err != nil {
				return err
			}
			log.Info("inventory", "objects", n, "drillbot", d.Wall, "peer", p.Wall, "failover comparison", f.Wall)
			scale.Drillbot, scale.Peer, scale.Failover = append(scale.Drillbot, d), append(scale.Peer, p), append(scale.Failover, f)
		}
		res.Rows = append(res.Rows, scale.Rows(2*time.Second)...)
		res.Details["inventory"] = scale
	}

	// 4. Drill overhead.
	if cfg.want("overhead") {
		log.Info("drill overhead")
		o, err := overhead(ctx, cl, log)
		if err != nil {
			return fmt.Errorf("drill overhead: %w", err)
		}
		res.Rows = append(res.Rows, o.Rows()...)
		res.Details["overhead"] = o
	}

	// 4b. API requests per run of each scenario kind that runs on this
	// cluster, from the audit log.
	if cfg.apiRuns > 0 && cfg.want("api-load") {
		loads, err := apiLoad(ctx, cl, cfg.apiRuns, log)
		if err != nil {
			return fmt.Errorf("API load: %w", err)
		}
		for _, l := range loads {
			res.Rows = append(res.Rows, l.Row())
		}
		res.Details["apiLoad"] = loads
	}

	// 4c. Endurance: drillbot serve (two, leader election) runs drills
	// back to back, the leader killed halfway.
	if cfg.endurance.Runs > 0 && cfg.want("endurance") {
		ec := cfg.endurance
		ec.Drillbot, ec.Kubeconfig, ec.Dir, ec.Log = cfg.drillbot, cl.ObservedKubeconfig(), dir, log
		log.Info("endurance", "runs", ec.Runs, "pod-kill", ec.PodKill, "corrupt-config", ec.Falco, "every", ec.Every)
		e, err := bench.MeasureEndurance(ctx, cl.Kube, cl.Dynamic, ec)
		if err != nil {
			return fmt.Errorf("endurance: %w", err)
		}
		res.Rows = append(res.Rows, e.Rows()...)
		res.Details["endurance"] = e
	}

	// 5. A regional failover: a DR cluster restores a copy of a namespace
	// of failoverObjects objects from the bench cluster's backups.
	if cfg.failoverObjects > 0 && cfg.want("failover") {
		log.Info("failover restore", "objects", cfg.failoverObjects)
		fo, err := failover(ctx, bins, cl, filepath.Join(dir, "dr"), cfg.failoverObjects, log)
		if err != nil {
			return fmt.Errorf("failover restore: %w", err)
		}
		res.Rows = append(res.Rows, fo.Rows()...)
		res.Details["failoverRestore"] = fo
	}

	// 6. The report over one cluster's runs, and the fleet report: the
	// bench cluster and fleetClusters-1 more (control plane and kwok
	// only), fleetRuns DrillRuns each.
	if cfg.fleetClusters > 0 && cfg.want("fleet") {
		log.Info("fleet report", "clusters", cfg.fleetClusters, "runs", cfg.fleetRuns)
		fs, err := fleet(ctx, bins, cl, cfg.drillbot, filepath.Join(dir, "fleet"), cfg.fleetClusters, cfg.fleetRuns, log)
		if err != nil {
			return fmt.Errorf("fleet report: %w", err)
		}
		res.Rows = append(res.Rows, fs.Rows(time.Second, 3*time.Second)...)
		res.Details["fleetReport"] = fs
	}

	// 7. pod-kill on a real node (a second cluster: the machine's one real
	// node, started once the fake-node figures are done).
	if cfg.realTrials > 0 && cfg.want("real-node") && drillsDir != "" {
		cl.Stop()
		idle := cfg.idle[len(cfg.idle)-1]
		log.Info("pod-kill on the real node", "trials", cfg.realTrials)
		rp, pf, err := realNode(ctx, bins, filepath.Join(dir, "real"), cfg.realTrials, drillsDir, idle, cfg.window, log)
		if err != nil {
			return fmt.Errorf("real node: %w", err)
		}
		res.Rows = append(res.Rows, rp.Rows()...)
		res.Rows = append(res.Rows, pf.Rows(40<<20)...)
		res.Details["realNodePodKill"] = rp
		res.Details["realNodePodFootprint"] = pf
	}

	// 8. Volume data through Velero's node-agent on the real node (a
	// cluster of its own: the machine's one real node).
	if len(cfg.volumeMiB) > 0 && cfg.want("volume") {
		cl.Stop()
		var figs []bench.VolumeData
		vcl, err := localcluster.Start(ctx, localcluster.Config{Bins: bins, Dir: filepath.Join(dir, "volumes"), Logger: log, RealNode: true, NodeAgent: true})
		if err != nil {
			return fmt.Errorf("volume data: %w", err)
		}
		for _, n := range cfg.volumeMiB {
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

	// 9. The evidence archive on an S3 store of its own (versitygw on
	// loopback, no cluster): write latency, bytes per record, the report
	// from a large archive.
	if cfg.archive.Writes > 0 && cfg.want("archive") {
		arch := cfg.archive
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
	if len(cfg.only) > 0 {
		return writeOnly(res, cfg.out, onlyName(cfg.only))
	}
	return write(res, cfg.out)
}

func onlyName(only map[string]bool) string {
	var names []string
	for _, f := range figures {
		if only[f] {
			names = append(names, f)
		}
	}
	return strings.Join(names, "+")
}

// apiLoad runs runs drills of each kind that runs on the bench cluster
// (kwok nodes, Velero), as the observed user, and counts their requests.
func apiLoad(ctx context.Context, cl *localcluster.Cluster, runs int, log *slog.Logger) ([]bench.APILoad, error) {
	observed, err := clientcmd.BuildConfigFromFlags("", cl.ObservedKubeconfig())
	if err != nil {
		return nil, err
	}
	playCtx, stop := context.WithCancel(ctx)
	defer stop()
	docs := apiLoadDrills(cl.VeleroNamespace)
	kinds := []struct {
		kind  string
		setup func() error
	}{
		{"pod-kill", func() error {
			return bench.SampleDeployment(ctx, cl.Kube, "load-pk", bench.KwokTemplate(map[string]string{"app": "web"}), 2)
		}},
		{"corrupt-config", func() error {
			if err := testharness.Falco(ctx, cl.Kube, "load-falco", bench.FalcoRules); err != nil {
				return err
			}
			go testharness.PlayFalco(playCtx, bench.Slogf{Log: log}, cl.Kube, "load-falco", nil)
			return nil
		}},
		{"namespace-restore", func() error { return bench.DemoApp(ctx, cl.Kube, "load-shop") }},
		{"backup-coverage", nil},
		{"pod-security-audit", nil},
	}
	if _, err := cl.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "load-shop-prod",
		Labels: map[string]string{"env": "bench-load"}}}, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	var out []bench.APILoad
	for _, k := range kinds {
		if k.setup != nil {
			if err := k.setup(); err != nil {
				return nil, fmt.Errorf("%s: %w", k.kind, err)
			}
		}
		defs, err := drill.Parse("api-load-"+k.kind+".yaml", []byte(docs[k.kind]), scenarios.Registry(scenarios.Deps{}))
		if err != nil {
			return nil, err
		}
		a, err := app.New(ctx, observed, app.Options{Namespace: "drillbot-system", Logger: log})
		if err != nil {
			return nil, err
		}
		log.Info("API load", "kind", k.kind, "runs", runs)
		l, err := bench.MeasureAPILoad(ctx, k.kind, runs, cl.AuditLog(), localcluster.ObservedUser, func(ctx context.Context) (*v1alpha1.DrillRun, error) {
			r, err := a.Engine.Run(ctx, defs[0], "bench")
			if err != nil {
				return nil, err
			}
			return a.Store.Get(ctx, r.Name)
		})
		a.Close(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

// apiLoadDrills are the API load figure's drills, by kind.
func apiLoadDrills(veleroNS string) map[string]string {
	return map[string]string{
		"pod-kill":           apiDrill("pod-kill", "load-pk", "{rto: 1m}", "\n    selector: {app: web}", ""),
		"corrupt-config":     apiDrill("corrupt-config", "load-falco", "{rto: 1m}", "", "{configMap: falco-rules, key: falco_rules.yaml, daemonSet: falco}"),
		"namespace-restore":  apiDrill("namespace-restore", "load-shop", "{rto: 30m, rpo: 1h}", "", "{backup: {create: true}}"),
		"backup-coverage":    apiCheck("backup-coverage", "{rto: 2m, rpo: 24h}", "{namespaces: {matchLabels: {env: bench-load}}, veleroNamespace: "+veleroNS+"}"),
		"pod-security-audit": apiCheck("pod-security-audit", "{rto: 2m}", "{namespaces: {matchLabels: {env: bench-load}}, enforce: restricted, audit: restricted}"),
	}
}

// apiDrill is a drill of kind on target.
func apiDrill(kind, target, objectives, targetMore, params string) string {
	doc := fmt.Sprintf("apiVersion: drillbot.io/v1alpha1\nkind: Drill\nmetadata: {name: api-load-%s}\nspec:\n  scenario: %s\n  objectives: %s\n  timeouts: {recover: 2m}\n  target:\n    namespace: %s%s\n",
		kind, kind, objectives, target, targetMore)
	if params != "" {
		doc += "  params: " + params + "\n"
	}
	return doc
}

// apiCheck is a check of kind (no target).
func apiCheck(kind, objectives, params string) string {
	return fmt.Sprintf("apiVersion: drillbot.io/v1alpha1\nkind: Drill\nmetadata: {name: api-load-%s}\nspec:\n  scenario: %s\n  objectives: %s\n  params: %s\n",
		kind, kind, objectives, params)
}

// idleDrills writes n idle drills into dir, each on a target namespace of
// its own, and creates those namespaces opted in. It answers the number of
// targets and of namespace-restore targets (the RPO marker's).
func idleDrills(ctx context.Context, cl *localcluster.Cluster, catalog, dir string, n int) (string, int, int, error) {
	defs, err := drill.LoadPaths([]string{catalog}, scenarios.Registry(scenarios.Deps{}))
	if err != nil {
		return "", 0, 0, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", 0, 0, err
	}
	targets, err := bench.WriteDrills(defs, dir, n)
	if err != nil {
		return "", 0, 0, err
	}
	for _, ns := range targets {
		_, err := cl.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
			Labels: map[string]string{v1alpha1.LabelAllowDisaster: "true"}}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return "", 0, 0, fmt.Errorf("target namespace %s: %w", ns, err)
		}
	}
	written, err := drill.LoadPaths([]string{dir}, scenarios.Registry(scenarios.Deps{}))
	if err != nil {
		return "", 0, 0, err
	}
	markers := 0
	for _, d := range written {
		if d.Spec.Scenario == namespacerestore.Name {
			markers++
		}
	}
	return dir, len(targets), markers, nil
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
	return writeOnly(res, out, figure)
}

// writeOnly writes the table of some figures as only-<name>.json and .md.
func writeOnly(res *bench.Results, out, name string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(out, "only-"+name+".json"))
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
	md, err := os.Create(filepath.Join(out, "only-"+name+".md"))
	if err != nil {
		return err
	}
	defer md.Close()
	res.WriteMarkdown(md)
	fmt.Printf("\nwritten: %s/only-%s.json, %s/only-%s.md\n", out, name, out, name)
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
	return localcluster.HelmUpgrade(ctx, os.Getenv("DRILLBOT_HELM"), cl.Kubeconfig, "drillbot", "drillbot-system", "deploy/helm/drillbot", string(values), 3*time.Minute)
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
func fleet(ctx context.Context, bins localcluster.Bins, first *localcluster.Cluster, drillbotBin, dir string, clusters, runs int, log *slog.Logger) (*bench.FleetScale, error) {
	const ns = "bench-fleet"
	s := &bench.FleetScale{}
	measure := func(cfgs []*rest.Config, runs int) (bench.FleetCost, error) {
		return bench.MedianOf(3, func() (bench.FleetCost, error) { return bench.MeasureFleet(ctx, cfgs, ns, runs) }, func(c bench.FleetCost) time.Duration { return c.Wall })
	}
	// One cluster's report, over a tenth of the runs, then over all.
	filled := 0
	for _, n := range []int{runs / 10, runs} {
		log.Info("report: recording runs", "runs", n)
		if err := bench.FillRuns(ctx, first.REST, ns, filled, n); err != nil {
			return nil, err
		}
		filled = n
		c, err := measure([]*rest.Config{first.REST}, n)
		if err != nil {
			return nil, err
		}
		s.Single = append(s.Single, c)
	}
	var err error
	if s.SingleProcess, err = bench.ReportProcess(ctx, drillbotBin, "--kubeconfig", first.Kubeconfig, "-n", ns); err != nil {
		return nil, err
	}
	cfgs := []*rest.Config{first.REST}
	// A cluster not read within --cluster-timeout makes the report exit 1:
	// here ten API servers share the machine, so give them time.
	args := []string{"-n", ns, "--cluster-timeout", "5m", "--cluster-kubeconfig", "cluster-00=" + first.Kubeconfig}
	for i := 1; i < clusters; i++ {
		c, err := localcluster.Start(ctx, localcluster.Config{Bins: bins, Dir: filepath.Join(dir, fmt.Sprint(i)), Logger: log, NoBackups: true})
		if err != nil {
			return nil, err
		}
		defer c.Stop()
		log.Info("fleet report: recording runs", "cluster", i, "runs", runs)
		if err := bench.FillRuns(ctx, c.REST, ns, 0, runs); err != nil {
			return nil, err
		}
		cfgs = append(cfgs, c.REST)
		args = append(args, "--cluster-kubeconfig", fmt.Sprintf("cluster-%02d=%s", i, c.Kubeconfig))
	}
	s.Costs = append(s.Costs, s.Single[len(s.Single)-1])
	if len(cfgs) > 1 {
		c, err := measure(cfgs, runs)
		if err != nil {
			return nil, err
		}
		s.Costs = append(s.Costs, c)
		if s.FleetProcess, err = bench.ReportProcess(ctx, drillbotBin, args...); err != nil {
			return nil, err
		}
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
