package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/metrics"
	"github.com/drillbot-io/drillbot/internal/scenarios"
	"github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
)

func serveCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cf             clusterFlags
		drills         multiFlag
		listen         string
		markerInterval time.Duration
		notifyStart    bool
	)
	cf.register(fs)
	fs.Var(&drills, "drills", "drill file or directory (repeatable; default drills/)")
	fs.StringVar(&listen, "listen", ":9090", "address for /healthz, /readyz and /metrics")
	fs.DurationVar(&markerInterval, "marker-interval", time.Minute, "how often to stamp the RPO marker in namespace-restore targets")
	fs.BoolVar(&notifyStart, "notify-start", false, "also notify when a drill starts")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if len(drills) == 0 {
		drills = multiFlag{"drills"}
	}
	log := cf.logger(stderr)
	// All drills are validated before anything starts: one bad file and the
	// daemon refuses to run any.
	defs, err := drill.LoadPaths(drills, scenarios.Registry(scenarios.Deps{}))
	if err != nil {
		fmt.Fprintf(stderr, "drillbot serve: %v\n", err)
		return exitError
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

	s, err := newApp(ctx, cf, log, notifyStart, m.NotificationFailed, m)
	if err != nil {
		fmt.Fprintf(stderr, "drillbot serve: %v\n", err)
		return exitError
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		s.Close(cctx)
	}()
	// Faults that a stopped drillbot left behind are reverted before any new run.
	resolved, err := s.Engine.ResolveInterrupted(ctx)
	for _, r := range resolved {
		log.Warn("interrupted run resolved", "run", r.Name, "verdict", r.Status.Verdict, "reason", r.Status.Reason)
	}
	if err != nil {
		fmt.Fprintf(stderr, "drillbot serve: resolving interrupted runs: %v\n", err)
		return exitError
	}
	for _, d := range defs {
		m.Drill(d)
	}
	if err := seedMetrics(ctx, s.Store, m); err != nil {
		log.Warn("last results not loaded into metrics", "err", err)
	}
	ready.Store(true)
	go markerLoop(ctx, s.Clients.Kube, defs, markerInterval, log)
	sched := &engine.Scheduler{
		Clock: clock.RealClock{}, Logger: log, OnNext: m.NextRun,
		Run: func(ctx context.Context, d drill.Definition) {
			if _, err := s.Engine.Run(ctx, d, "schedule"); err != nil {
				log.Error("scheduled drill did not run", "drill", d.Name, "err", err)
			}
		},
	}
	if err := sched.Loop(ctx, defs); err != nil {
		fmt.Fprintf(stderr, "drillbot serve: %v\n", err)
		return exitError
	}
	log.Info("drillbot stopped")
	return 0
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
// target, so backups carry a timestamp the restore brings back.
func markerLoop(ctx context.Context, c kubernetes.Interface, defs []drill.Definition, every time.Duration, log *slog.Logger) {
	var targets []string
	for _, d := range defs {
		if d.Spec.Scenario == namespacerestore.Name && !slices.Contains(targets, d.Spec.Target.Namespace) {
			targets = append(targets, d.Spec.Target.Namespace)
		}
	}
	if len(targets) == 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		for _, ns := range targets {
			if err := namespacerestore.CheckOptIn(ctx, c, ns, nil); err != nil {
				log.Debug("RPO marker not stamped", "namespace", ns, "err", err)
				continue
			}
			if err := namespacerestore.TouchMarker(ctx, c, ns, time.Now()); err != nil {
				log.Warn("RPO marker not stamped", "namespace", ns, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
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
		if r.Status.Phase != v1alpha1.PhaseCompleted || r.Status.FinishedAt == nil {
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
