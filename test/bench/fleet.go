package bench

import (
	"context"
	"fmt"
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
}

// FleetScale is the fleet report at several fleet sizes.
type FleetScale struct {
	Costs []FleetCost `json:"costs"`
}

// fleetDrills are the drill names the filled runs spread over.
var fleetDrills = []string{"namespace-restore", "kill-kyverno", "block-key-vault", "corrupt-falco-rules", "kill-calico-node"}

// FillRuns records n Completed DrillRuns in drillbot's namespace ns of the
// cluster at cfg (the CRD installed first), spread over five drills.
func FillRuns(ctx context.Context, cfg *rest.Config, ns string, n int) error {
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
	for i := range n {
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
	start := time.Now()
	f := report.CollectFleet(ctx, targets, ns, nil, report.Options{Now: time.Now(), WindowDays: 30, LastN: 5}, time.Minute)
	wall := time.Since(start)
	if len(f.Unreachable) > 0 {
		return FleetCost{}, fmt.Errorf("fleet report: %s not read: %s", f.Unreachable, f.Rows[0].Status)
	}
	if f.TotalDrills != len(cfgs)*len(fleetDrills) {
		return FleetCost{}, fmt.Errorf("fleet report has %d drills, want %d", f.TotalDrills, len(cfgs)*len(fleetDrills))
	}
	return FleetCost{Clusters: len(cfgs), Runs: runs, Wall: wall, Requests: cnt.Requests(), Bytes: cnt.Bytes(), Drills: f.TotalDrills}, nil
}

// Rows: the largest fleet against target, and how it grows from one
// cluster (linear: the cost per cluster stays the same).
func (s *FleetScale) Rows(target time.Duration) []Row {
	if len(s.Costs) == 0 {
		return nil
	}
	one, all := s.Costs[0], s.Costs[len(s.Costs)-1]
	rows := []Row{{
		Figure:   fmt.Sprintf("fleet report, %d clusters x %d runs", all.Clusters, all.Runs),
		Drillbot: fmt.Sprintf("%s, %d requests, %.1f MiB read", all.Wall.Round(time.Millisecond), all.Requests, float64(all.Bytes)/(1<<20)),
		Target:   "< " + target.String(), Met: Met(all.Wall < target), Value: all.Wall.Seconds(), Unit: "s",
	}}
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
	return rows
}
