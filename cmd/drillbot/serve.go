package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/utils/clock"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/app"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/evidence"
	"github.com/drillbot-io/drillbot/internal/metrics"
	"github.com/drillbot-io/drillbot/internal/scenarios"
	"github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
)

// serveOptions are drillbot serve's flags.
type serveOptions struct {
	cf             clusterFlags
	af             alertFlags
	drills         []string
	listen         string
	markerInterval time.Duration
	notifyStart    bool
	leaderElect    bool
	leaseName      string
	sweepEvery     time.Duration
	catchUp        bool
	archive        archiveFlags
}

func newServeCmd(stdout, stderr io.Writer) *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "run the daemon: schedule drills, serve /healthz, /readyz, /metrics",
		Long: `Runs the daemon: every drill on its schedule, the sweep that reverts what dead
drillbots left, the RPO markers, /healthz, /readyz and /metrics. All drill files
are validated first: one bad file and nothing runs.`,
		Example: `  # As the Helm chart runs it (several replicas, one leads)
  drillbot serve --drills /etc/drillbot/drills --leader-elect --listen :9090`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return code(o.run(cmd.Context(), stdout, stderr)) },
	}
	fs := cmd.Flags()
	o.cf.register(fs)
	o.af.register(fs)
	fs.StringArrayVar(&o.drills, "drills", []string{"drills"}, "drill file or directory (repeatable)")
	fs.StringVar(&o.listen, "listen", ":9090", "address for /healthz, /readyz and /metrics")
	fs.DurationVar(&o.markerInterval, "marker-interval", time.Minute, "how often to stamp the RPO marker in namespace-restore targets")
	fs.BoolVar(&o.notifyStart, "notify-start", false, "also notify when a drill starts")
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "elect a leader through a Lease: only the leader schedules and runs drills (run several replicas)")
	fs.StringVar(&o.leaseName, "leader-election-lease", "drillbot-leader", "name of the Lease in drillbot's namespace")
	fs.BoolVar(&o.catchUp, "catch-up", true, "after downtime, run a drill that missed its schedule once (never more); false skips missed runs")
	fs.DurationVar(&o.sweepEvery, "sweep-interval", 30*time.Second, "how often runs left by dead drillbots, or past their deadline, are reverted")
	o.archive.register(fs)
	fs.DurationVar(&o.cf.revertBackoff, "revert-retry-backoff", 30*time.Second, "first wait before the sweep retries a revert that failed (doubles per attempt, up to 10m)")
	return cmd
}

func (o *serveOptions) run(ctx context.Context, stdout, stderr io.Writer) int {
	cf, drills, listen, markerInterval, notifyStart := o.cf, o.drills, o.listen, o.markerInterval, o.notifyStart
	leaderElect, leaseName, sweepEvery, catchUp := o.leaderElect, o.leaseName, o.sweepEvery, o.catchUp
	_ = stdout
	log := cf.logger(stderr)
	// All drills are validated before anything starts: one bad file and the
	// daemon refuses to run any.
	defs, err := drill.LoadPaths(drills, scenarios.Registry(scenarios.Deps{}), cf.protect())
	if err != nil {
		fmt.Fprintf(stderr, "drillbot serve: %v\n", err)
		return exitError
	}
	// The store of every verdict first: a CRD older than this drillbot would
	// have the API server drop fields from every run. This is the refusal an
	// upgrade that skipped the CRD meets, before any other.
	if err := ensureCRD(ctx, cf); err != nil {
		fmt.Fprintf(stderr, "drillbot serve: %v\n", err)
		return exitError
	}
	// The cluster's policy binds the daemon as it read it: once it changes,
	// the daemon stops (its runs revert, as on SIGTERM) and exits, to be
	// restarted with the new one, rather than obey a stale one.
	policies, cp, err := clusterPolicy(ctx, cf)
	if err == nil {
		cf.alerts, err = o.af.load(ctx, defs, cp, false)
	}
	if err != nil {
		fmt.Fprintf(stderr, "drillbot serve: %v\n", err)
		return exitError
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		if err := policies.Watch(ctx, cp, func() { cancel(errPolicyChanged) }); err != nil {
			log.Error("the cluster's policy is not watched", "err", err)
		}
	}()
	policyChanged := func() bool {
		if errors.Is(context.Cause(ctx), errPolicyChanged) {
			fmt.Fprintf(stderr, "drillbot serve: %s changed: exiting, to start again under the new policy\n", policies.Source())
			return true
		}
		return false
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(reg)
	var ready atomic.Bool
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		fmt.Fprintf(stderr, "drillbot serve: %v\n", err)
		return exitError
	}
	srv := &http.Server{Handler: serveMux(reg, &ready), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", "err", err)
		}
	}()
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("drillbot serving", "addr", ln.Addr().String(), "drills", len(defs))

	cf.keepUnarchived = o.archive.url != ""
	kick := make(kicker, 1)
	s, err := newApp(ctx, cf, log, notifyStart, m.NotificationFailed, m, kick)
	if err != nil {
		fmt.Fprintf(stderr, "drillbot serve: %v\n", err)
		return exitError
	}
	arch, err := o.archive.open(ctx, s.Clients.Kube, s.Store, log)
	if err != nil {
		fmt.Fprintf(stderr, "drillbot serve: %v\n", err)
		return exitError
	}
	if arch != nil {
		arch.Observe = func(r *v1alpha1.DrillRun, err error) {
			ev := engine.Event{Type: engine.EventArchived, Run: r.DeepCopy(), Phase: r.Status.Phase, Err: err}
			if err != nil {
				ev.Type = engine.EventArchiveFailed
			}
			s.Observe(ctx, ev)
		}
		if s3, ok := arch.Chain.Store.(*evidence.S3Store); ok {
			if _, err := s3.ObjectLock(ctx); err != nil {
				log.Warn("the archive cannot be read yet: runs are kept until it can, and retried", "err", err)
			}
		}
		log.Info("archiving runs", "archive", arch.Chain.Store.Describe(), "cluster", arch.Cluster.Name, "key", arch.Chain.Signer.KeyID())
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		s.Close(cctx)
	}()
	for _, d := range defs {
		m.Drill(d)
	}
	for _, sink := range s.Sinks {
		m.NotificationSink(sink)
	}
	lead := func(ctx context.Context) error {
		// Faults that a stopped drillbot left behind are reverted before any new run.
		if err := sweep(ctx, s.Engine, log); err != nil {
			return fmt.Errorf("resolving interrupted runs: %w", err)
		}
		if err := seedMetrics(ctx, s.Store, m); err != nil {
			log.Warn("last results not loaded into metrics", "err", err)
		}
		ready.Store(true)
		go markerLoop(ctx, s.Clients.Kube, s.Engine.OpenRuns, defs, []string{cf.namespace, cf.veleroNamespace}, markerInterval, log)
		if arch != nil {
			go archiveLoop(ctx, arch, o.archive.every, kick, m.ArchivePending, log)
		}
		go func() {
			t := time.NewTicker(sweepEvery)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if err := sweep(ctx, s.Engine, log); err != nil && ctx.Err() == nil {
						log.Error("sweep failed", "err", err)
					}
				}
			}
		}()
		sched := &engine.Scheduler{
			Clock: clock.RealClock{}, Logger: log, OnNext: m.NextRun,
			Run: func(ctx context.Context, d drill.Definition) {
				if _, err := s.Engine.Run(ctx, d, engine.TriggerSchedule); err != nil {
					log.Error("scheduled drill did not run", "drill", d.Name, "err", err)
				}
			},
		}
		if catchUp {
			// The newest run of each drill, so a schedule missed while no
			// drillbot was leading runs once now, not in a burst.
			if err := seedLastRuns(ctx, s.Store, sched); err != nil {
				log.Warn("last runs not loaded: missed schedules are not caught up", "err", err)
			}
		}
		return sched.Loop(ctx, defs)
	}
	if !leaderElect {
		err := lead(ctx)
		if policyChanged() {
			return exitError
		}
		if err != nil {
			fmt.Fprintf(stderr, "drillbot serve: %v\n", err)
			return exitError
		}
		log.Info("drillbot stopped")
		return 0
	}
	// A standby is ready too: it serves health and metrics and waits.
	ready.Store(true)
	lost, err := leaderElection(ctx, s.Clients.Kube, cf.namespace, leaseName, app.DefaultHolder(), log, lead)
	if err != nil {
		fmt.Fprintf(stderr, "drillbot serve: %v\n", err)
		return exitError
	}
	if lost {
		// Another replica leads now; it reverts whatever this one leaves.
		fmt.Fprintln(stderr, "drillbot serve: leadership lost, exiting")
		return exitError
	}
	if policyChanged() {
		return exitError
	}
	log.Info("drillbot stopped")
	return 0
}

// errPolicyChanged is the cause with which serve stops once the cluster's
// policy differs from the one it loaded.
var errPolicyChanged = errors.New("the cluster's drill policy changed")

func seedLastRuns(ctx context.Context, store engine.RunStore, sched *engine.Scheduler) error {
	runs, err := store.List(ctx, "")
	if err != nil {
		return err
	}
	newest := map[string]time.Time{}
	for _, r := range runs {
		if r.Status.StartedAt != nil && r.Spec.Trigger == "schedule" && r.Status.StartedAt.After(newest[r.Spec.Drill]) {
			newest[r.Spec.Drill] = r.Status.StartedAt.Time
		}
	}
	for name, t := range newest {
		sched.SetLastRun(name, t)
	}
	return nil
}

// sweep reverts the runs no live drillbot holds or that are past their
// deadline.
func sweep(ctx context.Context, e *engine.Engine, log *slog.Logger) error {
	resolved, err := e.ResolveInterrupted(ctx)
	for _, r := range resolved {
		log.Warn("unfinished run reverted", "run", r.Name, "verdict", r.Status.Verdict, "reason", r.Status.Reason)
	}
	return err
}

// leaderElection runs lead while this process holds the Lease. It returns
// lost=true when leadership was lost (rather than ctx ending): the caller
// exits, and the new leader takes over unfinished runs once this one's
// heartbeats stop.
func leaderElection(ctx context.Context, c kubernetes.Interface, ns, name, id string, log *slog.Logger, lead func(context.Context) error) (lost bool, err error) {
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: name, Namespace: ns},
		Client:     c.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id},
	}
	var (
		leadErr error
		led     atomic.Bool
	)
	// le.Run returns as soon as it stops renewing, without waiting for
	// OnStartedLeading: leadDone lets the caller wait until the runs in
	// progress have reverted.
	leadDone := make(chan struct{})
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: lock, ReleaseOnCancel: true, Name: name,
		LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				defer close(leadDone)
				led.Store(true)
				log.Info("leading: scheduling drills", "identity", id, "lease", ns+"/"+name)
				leadErr = lead(ctx)
			},
			OnStoppedLeading: func() { log.Warn("not leading", "identity", id) },
			OnNewLeader: func(leader string) {
				if leader != id {
					log.Info("standing by", "leader", leader)
				}
			},
		},
	})
	if err != nil {
		return false, err
	}
	log.Info("waiting for leadership", "identity", id, "lease", ns+"/"+name)
	le.Run(ctx)
	if led.Load() {
		<-leadDone
	}
	if leadErr != nil && ctx.Err() == nil {
		return false, leadErr
	}
	return led.Load() && ctx.Err() == nil, nil
}

func serveMux(reg *prometheus.Registry, ready *atomic.Bool) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "starting: resolving interrupted runs", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return mux
}

// markerLoop stamps the RPO marker in every opted-in namespace-restore
// target, so backups carry a timestamp the restore brings back; never in
// protected (drillbot's and Velero's namespaces) nor in any drill's Velero
// namespace.
func markerLoop(ctx context.Context, c kubernetes.Interface, open openRuns, defs []drill.Definition, protected []string, every time.Duration, log *slog.Logger) {
	var targets []string
	protected = slices.Clone(protected)
	for _, d := range defs {
		if d.Spec.Scenario != namespacerestore.Name {
			continue
		}
		if !slices.Contains(targets, d.Spec.Target.Namespace) {
			targets = append(targets, d.Spec.Target.Namespace)
		}
		protected = append(protected, namespacerestore.VeleroNamespace(d))
	}
	if len(targets) == 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		stampMarkers(ctx, c, open, targets, protected, time.Now(), log)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// openRuns lists the runs not Completed (engine.Engine.OpenRuns).
type openRuns func(ctx context.Context) ([]v1alpha1.DrillRun, error)

// stampMarkers stamps the marker in each opted-in target that no
// drill run holds. Its cost does not grow with the targets' number but by
// their writes: one list of the open runs, one labelled list of the
// opted-in namespaces, then one apply per target.
func stampMarkers(ctx context.Context, c kubernetes.Interface, open openRuns, targets, protected []string, now time.Time, log *slog.Logger) {
	runs, err := open(ctx)
	if err != nil {
		log.Warn("RPO markers not stamped: runs in progress unknown", "err", err)
		return
	}
	busy := map[string]string{}
	for _, r := range runs {
		busy[r.Spec.Snapshot.Target.Namespace] = r.Name
	}
	optIn, err := namespacerestore.OptedIn(ctx, c, targets, protected)
	if err != nil {
		log.Warn("RPO markers not stamped: opt-in unknown", "err", err)
		return
	}
	for _, ns := range targets {
		if run, ok := busy[ns]; ok {
			log.Debug("RPO marker not stamped: a drill run holds the namespace", "namespace", ns, "run", run)
			continue
		}
		if err, ok := optIn[ns]; !ok || err != nil {
			log.Debug("RPO marker not stamped", "namespace", ns, "err", err)
			continue
		}
		if err := namespacerestore.TouchMarker(ctx, c, ns, now); err != nil {
			log.Warn("RPO marker not stamped", "namespace", ns, "err", err)
		}
	}
}

// seedMetrics loads each drill's newest finished run into the metrics.
func seedMetrics(ctx context.Context, store engine.RunStore, m *metrics.Metrics) error {
	runs, err := store.List(ctx, "")
	if err != nil {
		return err
	}
	newest, newestPass := map[string]int{}, map[string]int{}
	for i, r := range runs {
		if r.Status.Phase != v1alpha1.PhaseCompleted {
			// In progress, or a fault whose revert failed: its faults count.
			m.Faults(&runs[i])
		}
		if r.Status.FinishedAt == nil || r.Status.Verdict == "" {
			continue
		}
		if j, ok := newestPass[r.Spec.Drill]; r.Status.Verdict == v1alpha1.VerdictPass && (!ok || r.Status.FinishedAt.After(runs[j].Status.FinishedAt.Time)) {
			newestPass[r.Spec.Drill] = i
		}
		if j, ok := newest[r.Spec.Drill]; !ok || r.Status.FinishedAt.After(runs[j].Status.FinishedAt.Time) {
			newest[r.Spec.Drill] = i
		}
	}
	for _, i := range newestPass {
		m.SeedSuccess(&runs[i])
	}
	for _, i := range newest {
		m.Seed(&runs[i])
	}
	return nil
}
