package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/kube"
	"github.com/drillbot-io/drillbot/internal/report"
)

// FleetCost is what one fleet report cost: wall time, requests and
// response bytes, over clusters holding runs DrillRuns each.
type FleetCost struct {
	Clusters int           `json:"clusters"`
	Runs     int           `json:"runsPerCluster"`
	Wall     time.Duration `json:"wall"`
	Requests int64         `json:"requests"`
	Bytes    int64         `json:"bytes"`
	// Drills is how many drill rows the report has (a check it read all).
	Drills int `json:"drills"`
	// CPU is the report's own CPU time (the measuring process's).
	CPU time.Duration `json:"cpu"`
}

// FleetScale is the report of one cluster at two history sizes, and the
// fleet report at several fleet sizes.
type FleetScale struct {
	// Single are one cluster's report over a tenth of the runs and over
	// all of them: bytes read must grow linearly in runs.
	Single []FleetCost `json:"single"`
	Costs  []FleetCost `json:"costs"`
	// SingleProcess and FleetProcess are the drillbot report process's
	// own cost over one cluster and over the fleet.
	SingleProcess ProcessCost `json:"singleProcess"`
	FleetProcess  ProcessCost `json:"fleetProcess"`
}

// ReportProcess runs `drillbot report` with args and answers its wall time
// and peak resident memory: the kernel's high-water mark of the child's
// own memory (VmHWM in /proc/PID/status), read every 5 ms until it exits.
// Not the rusage ru_maxrss wait4 returns: Go starts children with vfork
// semantics, so that counts the parent's resident memory at exec too.
func ReportProcess(ctx context.Context, drillbot string, args ...string) (ProcessCost, error) {
	cmd := exec.CommandContext(ctx, drillbot, append([]string{"report", "-o", "json"}, args...)...)
	var stdout tail
	cmd.Stdout = &stdout
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return ProcessCost{}, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var hwm int64
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if v, err := vmHWM(cmd.Process.Pid); err == nil {
			hwm = max(hwm, v)
		}
		select {
		case err := <-done:
			if err != nil {
				return ProcessCost{}, fmt.Errorf("drillbot report %s: %w: %s%s", strings.Join(args, " "), err, stderr.String(), stdout.String())
			}
			if hwm == 0 {
				return ProcessCost{}, fmt.Errorf("drillbot report: exited before its memory could be read")
			}
			// CPU time from rusage is the child's own (unlike its maxrss).
			return ProcessCost{Wall: time.Since(start), MaxRSS: hwm, CPU: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}, nil
		case <-tick.C:
		}
	}
}

// ProcessCost is what a process cost: wall time, peak resident memory and
// CPU time (user and system).
type ProcessCost struct {
	Wall   time.Duration `json:"wall"`
	MaxRSS int64         `json:"maxRSSBytes"`
	CPU    time.Duration `json:"cpu"`
}

// vmHWM is the peak resident set size of pid's own memory.
func vmHWM(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(string(v)), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM for pid %d", pid)
}

// fleetDrills are the drill names the filled runs spread over.
var fleetDrills = []string{"namespace-restore", "kill-kyverno", "block-key-vault", "corrupt-falco-rules", "kill-calico-node"}

// FillRuns records the Completed DrillRuns from to n (exclusive) in
// drillbot's namespace ns of the cluster at cfg (the CRD installed first),
// spread over five drills.
func FillRuns(ctx context.Context, cfg *rest.Config, ns string, from, n int) error {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 1000, 2000
	if err := kube.EnsureCRD(ctx, cfg, v1alpha1.DrillRunCRD); err != nil {
		return err
	}
	c, err := kube.NewClients(cfg)
	if err != nil {
		return err
	}
	if _, err := c.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	store := &engine.KubeStore{Client: c.Dynamic, Namespace: ns}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	now := time.Now()
	for i := from; i < n; i++ {
		g.Go(func() error {
			d := fleetDrills[i%len(fleetDrills)]
			created, err := store.Create(ctx, &v1alpha1.DrillRun{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%05d", d, i),
				Labels: map[string]string{v1alpha1.LabelDrill: d, v1alpha1.LabelScenario: "pod-kill"}},
				Spec: v1alpha1.DrillRunSpec{Drill: d, Scenario: "pod-kill", Trigger: engine.TriggerSchedule}})
			if err != nil {
				return err
			}
			fin := metav1.NewMicroTime(now.Add(-time.Duration(i) * time.Hour))
			verdict := v1alpha1.VerdictPass
			if i%7 == 0 {
				verdict = v1alpha1.VerdictFail
			}
			created.Status = v1alpha1.DrillRunStatus{Phase: v1alpha1.PhaseCompleted, Verdict: verdict, Reason: "bench",
				StartedAt: &fin, FinishedAt: &fin, RTO: fmt.Sprintf("%ds", 10+i%50), RTOTarget: "5m"}
			_, err = store.UpdateStatus(ctx, created)
			return err
		})
	}
	return g.Wait()
}

// MeasureFleet builds the fleet report over cfgs (each cluster's runs in
// ns), the way drillbot report --cluster-kubeconfig does, counting every
// request and response byte.
func MeasureFleet(ctx context.Context, cfgs []*rest.Config, ns string, runs int) (FleetCost, error) {
	var cnt Counter
	targets := make([]report.Target, len(cfgs))
	for i, cfg := range cfgs {
		counted := cnt.Config(cfg)
		targets[i] = report.Target{Name: fmt.Sprintf("cluster-%02d", i), Config: func() (*rest.Config, error) { return counted, nil }}
	}
	start, cpu0 := time.Now(), selfCPU()
	f := report.CollectFleet(ctx, targets, ns, nil, report.Options{Now: time.Now(), WindowDays: 30, LastN: 5}, time.Minute)
	wall, cpu := time.Since(start), selfCPU()-cpu0
	if len(f.Unreachable) > 0 {
		var why []string
		for _, r := range f.Rows {
			if slices.Contains(f.Unreachable, r.Cluster) {
				why = append(why, r.Cluster+": "+r.Status)
			}
		}
		return FleetCost{}, fmt.Errorf("fleet report: %d of %d clusters not read: %s", len(f.Unreachable), len(cfgs), strings.Join(why, "; "))
	}
	if f.TotalDrills != len(cfgs)*len(fleetDrills) {
		return FleetCost{}, fmt.Errorf("fleet report has %d drills, want %d", f.TotalDrills, len(cfgs)*len(fleetDrills))
	}
	return FleetCost{Clusters: len(cfgs), Runs: runs, Wall: wall, Requests: cnt.Requests(), Bytes: cnt.Bytes(), Drills: f.TotalDrills, CPU: cpu}, nil
}

// Rows: one cluster's report over all its runs against single, how its
// bytes grow with the runs (linear), the largest fleet against fleet, and
// how it grows from one cluster (linear: the cost per cluster stays the
// same).
func (s *FleetScale) Rows(single, fleet time.Duration) []Row {
	var rows []Row
	cost := func(c FleetCost) string {
		return fmt.Sprintf("%s (drillbot's own CPU %s), %d requests, %.1f MiB read", c.Wall.Round(time.Millisecond), c.CPU.Round(time.Millisecond), c.Requests, float64(c.Bytes)/(1<<20))
	}
	if n := len(s.Single); n > 0 {
		few, all := s.Single[0], s.Single[n-1]
		rows = append(rows, Row{
			Figure: fmt.Sprintf("report, 1 cluster x %d runs", all.Runs), Drillbot: cost(all),
			Target: "< " + single.String(), Met: Met(all.Wall < single), Value: all.Wall.Seconds(), Unit: "s",
		})
		if all.Runs > few.Runs && few.Bytes > 0 {
			perFew, perAll := float64(few.Bytes)/float64(few.Runs), float64(all.Bytes)/float64(all.Runs)
			rows = append(rows, Row{
				Figure:   fmt.Sprintf("report growth, %d -> %d runs", few.Runs, all.Runs),
				Drillbot: fmt.Sprintf("bytes per run x%.2f (%.0f B/run), wall x%.1f for x%d runs", perAll/perFew, perAll, all.Wall.Seconds()/few.Wall.Seconds(), all.Runs/few.Runs),
				Target:   "linear in runs (bytes per run <= x1.05)", Met: Met(perAll/perFew <= 1.05), Value: perAll / perFew, Unit: "x",
			})
		}
		if p := s.SingleProcess; p.MaxRSS > 0 {
			rows = append(rows, p.row(fmt.Sprintf("drillbot report process, 1 cluster x %d runs", all.Runs)))
		}
	}
	if len(s.Costs) == 0 {
		return rows
	}
	one, all := s.Costs[0], s.Costs[len(s.Costs)-1]
	rows = append(rows, Row{
		Figure:   fmt.Sprintf("fleet report, %d clusters x %d runs", all.Clusters, all.Runs),
		Drillbot: cost(all),
		Target:   "< " + fleet.String(), Met: Met(all.Wall < fleet), Value: all.Wall.Seconds(), Unit: "s",
	})
	if all.Clusters > one.Clusters && one.Bytes > 0 {
		perOne := float64(one.Bytes) / float64(one.Clusters)
		perAll := float64(all.Bytes) / float64(all.Clusters)
		rows = append(rows, Row{
			Figure:   fmt.Sprintf("fleet report growth, %d -> %d clusters", one.Clusters, all.Clusters),
			Drillbot: fmt.Sprintf("bytes per cluster x%.2f, wall x%.1f for x%d clusters", perAll/perOne, all.Wall.Seconds()/one.Wall.Seconds(), all.Clusters/one.Clusters),
			Target:   "linear in clusters (bytes per cluster x1.00)", Met: Met(perAll/perOne < 1.05),
			Value: perAll / perOne, Unit: "x",
		})
	}
	if p := s.FleetProcess; p.MaxRSS > 0 {
		rows = append(rows, p.row(fmt.Sprintf("drillbot report process, %d clusters x %d runs", all.Clusters, all.Runs)))
	}
	return rows
}

func (p ProcessCost) row(what string) Row {
	return Row{Figure: what + ": peak RSS, CPU (wall)", Drillbot: fmt.Sprintf("%.1f MiB, %s CPU (%s)", float64(p.MaxRSS)/(1<<20),
		p.CPU.Round(time.Millisecond), p.Wall.Round(time.Millisecond)), Value: float64(p.MaxRSS) / (1 << 20), Unit: "MiB"}
}

// tail keeps the last 2 KiB written to it.
type tail struct{ b []byte }

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 2048 {
		t.b = t.b[len(t.b)-2048:]
	}
	return len(p), nil
}

func (t *tail) String() string { return string(t.b) }
