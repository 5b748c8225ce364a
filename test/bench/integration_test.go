package bench

// The benchmark's measurements on the local cluster, small: they must run
// and count what they claim (the figures themselves are `make bench`'s).

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"k8s.io/client-go/rest"

	"github.com/drillbot-io/drillbot/test/localcluster"
	"github.com/drillbot-io/drillbot/test/testharness"
)

var cluster *localcluster.Cluster

func TestMain(m *testing.M) { os.Exit(localcluster.RunTests(m, &cluster)) }

func TestMeasurementsRun(t *testing.T) {
	localcluster.Require(t, cluster)
	ctx := context.Background()
	for _, ns := range []string{"bench-inv", "bench-rto"} {
		if _, err := cluster.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := Fill(ctx, cluster.Kube, "bench-inv", 0, 50); err != nil {
		t.Fatal(err)
	}
	for name, measure := range map[string]func(context.Context) (InventoryCost, error){
		"drillbot": func(ctx context.Context) (InventoryCost, error) {
			return MeasureInventory(ctx, cluster.REST, "bench-inv", 50)
		},
		"peer": func(ctx context.Context) (InventoryCost, error) {
			return MeasurePeerInventory(ctx, cluster.REST, "bench-inv", 50)
		},
		"failover comparison": func(ctx context.Context) (InventoryCost, error) {
			return MeasureFailoverCompare(ctx, cluster.REST, "bench-inv", 50)
		},
	} {
		c, err := measure(ctx)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// Two inventories of 50 ConfigMaps of 1 KiB read at least the
		// names twice; the peer reads the data too; the failover
		// comparison reads them once (discovery, then one list).
		lists := 2
		if name == "failover comparison" {
			lists = 1
		}
		if c.Requests < int64(2*lists) || c.Bytes < int64(lists*50*10) || c.Wall <= 0 {
			t.Errorf("%s: %+v", name, c)
		}
		if name == "peer" && c.Bytes < 2*50*1024 {
			t.Errorf("peer read %d bytes: less than the objects' data", c.Bytes)
		}
	}
	p, err := MeasurePrecision(ctx, cluster.Kube, "bench-rto", 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []string{"drillbot (watch)", "poll 1s", "poll 5s"} {
		if len(p.Errors[o]) != 2 {
			t.Errorf("%s: %d samples", o, len(p.Errors[o]))
		}
	}
	if p.WriteSpan.N != 2 || p.WriteSpan.Max <= 0 {
		t.Errorf("write span %+v", p.WriteSpan)
	}
}

// TestFleetMeasurementRuns: the fleet figure, small: two clusters (this
// one and a control plane only), 20 runs each, the report reads them all.
func TestFleetMeasurementRuns(t *testing.T) {
	localcluster.Require(t, cluster)
	ctx := context.Background()
	other := localcluster.Another(t, localcluster.Config{NoBackups: true})
	cfgs := []*rest.Config{cluster.REST, other.REST}
	for _, cfg := range cfgs {
		if err := FillRuns(ctx, cfg, "bench-fleet", 0, 20); err != nil {
			t.Fatal(err)
		}
	}
	one, err := MeasureFleet(ctx, cfgs[:1], "bench-fleet", 20)
	if err != nil {
		t.Fatal(err)
	}
	two, err := MeasureFleet(ctx, cfgs, "bench-fleet", 20)
	if err != nil {
		t.Fatal(err)
	}
	// Each cluster: its runs listed once (every run's JSON read).
	if one.Drills != 5 || two.Drills != 10 || one.Bytes < 20*500 || two.Bytes < 2*one.Bytes*9/10 || two.Requests < 2*one.Requests {
		t.Errorf("one cluster %+v, two %+v", one, two)
	}
}

// TestFailoverCompareSeesAMissingObject: the comparison figure measures
// the drill's comparison, which finds an object the backup lists and the
// copy lacks (a figure over a comparison that checks nothing would be fast
// and false).
func TestFailoverCompareSeesAMissingObject(t *testing.T) {
	localcluster.Require(t, cluster)
	ctx := context.Background()
	if _, err := cluster.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench-cmp"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := Fill(ctx, cluster.Kube, "bench-cmp", 0, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := MeasureFailoverCompare(ctx, cluster.REST, "bench-cmp", 10); err != nil {
		t.Fatal(err)
	}
	if err := cluster.Kube.CoreV1().ConfigMaps("bench-cmp").Delete(ctx, "cm-00003", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := MeasureFailoverCompare(ctx, cluster.REST, "bench-cmp", 10); err == nil || !strings.Contains(err.Error(), "1 missing") {
		t.Errorf("a ConfigMap missing from the copy: %v", err)
	}
}

// TestEnduranceRuns: the endurance figure, small: one pod-kill and one
// corrupt-config drill every 2 s, 16 runs, the leader killed after 8; every
// run has a verdict, the samples come from the daemons' /metrics, and
// nothing is left behind.
func TestEnduranceRuns(t *testing.T) {
	localcluster.Require(t, cluster)
	e, err := MeasureEndurance(context.Background(), cluster.Kube, cluster.Dynamic, EnduranceConfig{
		Drillbot: testharness.Binary(t), Kubeconfig: cluster.Kubeconfig, Dir: t.TempDir(),
		Runs: 16, PodKill: 1, Falco: 1, Every: 2 * time.Second, History: 3,
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", e)
	if len(e.NoVerdict) > 0 || len(e.Leftovers) > 0 || e.MaxKept > 6 || len(e.Terms) != 2 {
		t.Errorf("no verdict %v, left behind %v, kept %d, terms %d", e.NoVerdict, e.Leftovers, e.MaxKept, len(e.Terms))
	}
	for i, term := range e.Terms {
		if term.First.Goroutines == 0 || term.Last.FDs == 0 || term.Last.RSS == 0 || term.Last.Runs < term.First.Runs {
			t.Errorf("term %d: %+v", i, term)
		}
	}
	if e.Terms[1].Last.Runs < 16 || e.Takeover <= 0 {
		t.Errorf("runs %d, takeover %s", e.Terms[1].Last.Runs, e.Takeover)
	}
}
