package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/scenarios"
)

func TestSummarize(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	cases := []struct {
		name string
		in   []time.Duration
		want Summary
	}{
		{"empty", nil, Summary{}},
		{"one", ms(7), Summary{N: 1, Min: 7 * time.Millisecond, Median: 7 * time.Millisecond, P95: 7 * time.Millisecond, Max: 7 * time.Millisecond}},
		// Nearest rank: the median of 1..20 is the 10th, the p95 the 19th.
		{"twenty unsorted", ms(20, 1, 19, 2, 18, 3, 17, 4, 16, 5, 15, 6, 14, 7, 13, 8, 12, 9, 11, 10),
			Summary{N: 20, Min: time.Millisecond, Median: 10 * time.Millisecond, P95: 19 * time.Millisecond, Max: 20 * time.Millisecond}},
		{"negative errors", ms(-3, 1, 2), Summary{N: 3, Min: -3 * time.Millisecond, Median: time.Millisecond, P95: 2 * time.Millisecond, Max: 2 * time.Millisecond}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Summarize(tc.in); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestPrecisionRows(t *testing.T) {
	p := &Precision{Trials: 3, Errors: map[string][]time.Duration{
		"drillbot (watch)": {2 * time.Millisecond, 3 * time.Millisecond, 300 * time.Millisecond},
		"poll 1s":          {500 * time.Millisecond, 600 * time.Millisecond, 900 * time.Millisecond},
		"poll 5s":          {time.Second, 3 * time.Second, 4500 * time.Millisecond},
	}}
	rows := p.Rows(250 * time.Millisecond)
	if len(rows) != 2 {
		t.Fatalf("%d rows", len(rows))
	}
	if *rows[0].Met {
		t.Error("a p95 of 300ms met a 250ms target")
	}
	if rows[0].Ratio != 3 || rows[1].Ratio != 15 {
		t.Errorf("ratios %v %v, want 3 and 15", rows[0].Ratio, rows[1].Ratio)
	}
}

func TestAuditFilters(t *testing.T) {
	ev := func(verb, group, resource, ns string) AuditEvent {
		e := AuditEvent{Verb: verb, ObjectRef: &ObjectRef{Resource: resource, Namespace: ns, APIGroup: group}}
		if strings.Contains(resource, "/") { // "configmaps/NAME": one named object
			e.ObjectRef.Resource, e.ObjectRef.Name, _ = strings.Cut(resource, "/")
		}
		return e
	}
	events := []AuditEvent{
		ev("list", "drillbot.io", "drillruns", "drillbot-system"),
		ev("watch", "drillbot.io", "drillruns", "drillbot-system"),
		ev("list", "drillbot.io", "drillruns", ""),
		ev("list", "", "pods", ""),
		ev("watch", "", "configmaps", "shop"),
		ev("watch", "", "configmaps/drillbot-halt", "drillbot-system"),
		ev("update", "", "configmaps", "shop"),
		ev("update", "", "configmaps", "shop"),
		// The marker loop's opted-in namespaces (label selector) are
		// narrow; any other namespace list is not.
		{Verb: "list", RequestURI: "/api/v1/namespaces?labelSelector=drillbot.io%2Fallow-disaster%3Dtrue", ObjectRef: &ObjectRef{Resource: "namespaces"}},
		{Verb: "list", RequestURI: "/api/v1/namespaces?labelSelector=team%3Dshop", ObjectRef: &ObjectRef{Resource: "namespaces"}},
	}
	var broad []string
	for _, e := range BroadReads(events) {
		broad = append(broad, e.Verb+" "+e.Target())
	}
	want := "list drillruns.drillbot.io (cluster-wide),list pods (cluster-wide),watch configmaps in shop,list namespaces (cluster-wide)"
	if got := strings.Join(broad, ","); got != want {
		t.Errorf("broad %s, want %s", got, want)
	}
	if mix := RequestMix(events); mix[1] != "2 x update configmaps in shop" {
		t.Errorf("mix %v", mix)
	}
}

func TestReadAudit(t *testing.T) {
	f := t.TempDir() + "/audit.log"
	lines := `{"kind":"Event","verb":"get","user":{"username":"drillbot-observed"},"requestReceivedTimestamp":"2026-11-24T03:00:01.000000Z","objectRef":{"resource":"namespaces","name":"x"}}
{"kind":"Event","verb":"get","user":{"username":"admin"},"requestReceivedTimestamp":"2026-11-24T03:00:02.000000Z"}
{"kind":"Event","verb":"list","user":{"username":"drillbot-observed"},"requestReceivedTimestamp":"2026-11-24T03:00:09.000000Z"}
`
	if err := os.WriteFile(f, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)
	got, err := ReadAudit(f, "drillbot-observed", from, from.Add(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Verb != "get" || got[0].Target() != "namespaces x (cluster-wide)" {
		t.Errorf("got %+v", got)
	}
}

func TestProcReadings(t *testing.T) {
	r, err := rss(os.Getpid())
	if err != nil || r.total < 1<<20 || r.anon <= 0 || r.file <= 0 || r.anon+r.file > r.total+r.total/10 {
		t.Errorf("rss = %+v, %v: VmRSS is RssAnon + RssFile (+ shmem)", r, err)
	}
	before, err := cpuTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(300 * time.Millisecond); time.Now().Before(deadline); { //nolint:revive // burn CPU
	}
	after, err := cpuTime(os.Getpid())
	if err != nil || after <= before {
		t.Errorf("cpu %v -> %v (%v): 300ms of spinning not counted", before, after, err)
	}
}

func TestWriteDrillsAreValidAndUnique(t *testing.T) {
	reg := scenarios.Registry(scenarios.Deps{})
	catalog, err := drill.LoadPaths([]string{"../../drills"}, reg)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	targets, err := WriteDrills(catalog, dir, 50)
	if err != nil {
		t.Fatal(err)
	}
	defs, err := drill.LoadPaths([]string{dir}, reg)
	if err != nil {
		t.Fatal(err)
	}
	if len(defs) != 50 {
		t.Fatalf("%d drills loaded, want 50", len(defs))
	}
	kinds, seen := map[string]bool{}, map[string]bool{}
	for _, d := range defs {
		kinds[d.Spec.Scenario] = true
		// Each drill has a target of its own: what grows with the targets
		// shows in the figure.
		if ns := d.Spec.Target.Namespace; ns != "" {
			if seen[ns] || !slices.Contains(targets, ns) {
				t.Errorf("%s: target %s is shared or not returned", d.Name, ns)
			}
			seen[ns] = true
		}
		if !strings.HasPrefix(d.Spec.Schedule, "CRON_TZ=UTC ") || !strings.HasSuffix(d.Spec.Schedule, " 4 1 1 *") {
			t.Errorf("%s: schedule %q is not the yearly one", d.Name, d.Spec.Schedule)
		}
	}
	if len(seen) != len(targets) || len(seen) < 30 {
		t.Errorf("%d distinct targets, %d returned", len(seen), len(targets))
	}
	if len(kinds) < 5 {
		t.Errorf("only %d scenario kinds among the idle drills", len(kinds))
	}
}

func TestCounter(t *testing.T) {
	body := strings.Repeat("x", 1000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"` + body + `"}}`))
	}))
	defer srv.Close()
	var c Counter
	kc, err := kubernetes.NewForConfig(c.Config(&rest.Config{Host: srv.URL}))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := kc.CoreV1().Namespaces().Get(context.Background(), "x", metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if c.Requests() != 3 || c.Bytes() < 3000 || c.ByMethod()["GET"] != 3 {
		t.Errorf("requests %d bytes %d by method %v", c.Requests(), c.Bytes(), c.ByMethod())
	}
}

func TestInventoryRows(t *testing.T) {
	s := &InventoryScale{
		Drillbot: []InventoryCost{{Objects: 100, Wall: 100 * time.Millisecond, Bytes: 100_000}, {Objects: 1000, Wall: 190 * time.Millisecond, Bytes: 1_000_000},
			{Objects: 5000, Wall: 990 * time.Millisecond, Bytes: 9_000_000}},
		Peer: []InventoryCost{{Objects: 100}, {Objects: 1000, Wall: 300 * time.Millisecond}, {Objects: 5000, Wall: 1980 * time.Millisecond, Bytes: 20 << 20}},
	}
	rows := s.Rows(2 * time.Second)
	if len(rows) != 3 {
		t.Fatalf("%d rows", len(rows))
	}
	if !*rows[0].Met || rows[0].Ratio != 2 {
		t.Errorf("wall row %+v", rows[0])
	}
	if r := rows[1].Ratio; r < 2.32 || r > 2.34 {
		t.Errorf("bytes ratio %v, want 20 MiB / 9 MB", r)
	}
	// 2000 bytes per added object from 1000 to 5000 against 1000 from 100
	// to 1000: twice the marginal cost, worse than linear.
	if rows[2].Value < 1.99 || rows[2].Value > 2.01 || *rows[2].Met {
		t.Errorf("growth row %+v", rows[2])
	}
	fixed, per := fit(s.Drillbot)
	if fixed > 100*time.Millisecond || fixed < 0 || per < 170_000 || per > 200_000 {
		t.Errorf("fit: %v fixed + %.0fns/object", fixed, per)
	}
}

func TestOverheadCompare(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	run := &v1alpha1.DrillRun{}
	run.Status.RTO = "10s"
	run.Status.Milestones = []v1alpha1.Milestone{
		{Name: "namespace-terminated", At: metav1.NewMicroTime(at(5002))},
		{Name: "restore-completed", At: metav1.NewMicroTime(at(8010))},
		{Name: "workloads-ready", At: metav1.NewMicroTime(at(10003))},
	}
	// Pods were Ready before the restore was marked Completed: the restore
	// is the last recovery event for workloads-ready.
	w := &Witness{gone: at(5000), restored: at(8000), ready: at(7000)}
	o, err := w.Compare(run)
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{2 * time.Millisecond, 10 * time.Millisecond, 2003 * time.Millisecond}
	for i, p := range o.Phases {
		if p.Latency != want[i] {
			t.Errorf("%s: %v, want %v", p.Milestone, p.Latency, want[i])
		}
	}
	if o.Total != 2015*time.Millisecond {
		t.Errorf("total %v", o.Total)
	}
	if _, err := (&Witness{gone: at(1)}).Compare(run); err == nil {
		t.Error("a witness that saw no restore gave a result")
	}
}

// TestOverheadCompareCopy: failover-restore's milestones against a witness
// of a fresh copy, and its rows labelled with the RTO's breakdown.
func TestOverheadCompareCopy(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	run := &v1alpha1.DrillRun{}
	run.Status.RTO = "20s"
	run.Status.Milestones = []v1alpha1.Milestone{
		{Name: "restore-finished", At: metav1.NewMicroTime(at(19001))},
		{Name: "workloads-ready", At: metav1.NewMicroTime(at(19030))},
	}
	run.Status.Breakdown = []v1alpha1.Span{{Name: "restore-finished", Duration: "19s"}, {Name: "workloads-ready", Duration: "30ms"}}
	w := &Witness{fresh: true, gone: at(10), restored: at(19000), ready: at(19020)}
	o, err := w.Compare(run)
	if err != nil {
		t.Fatal(err)
	}
	if o.Total != 11*time.Millisecond || len(o.Phases) != 2 {
		t.Fatalf("phases %+v, total %v", o.Phases, o.Total)
	}
	o.Label = "failover-restore (1000 objects)"
	rows := o.Rows()
	if rows[0].Figure != "failover-restore (1000 objects) RTO (restore-finished 19000.00 ms, workloads-ready 30.00 ms)" ||
		!strings.HasPrefix(rows[1].Figure, "failover-restore (1000 objects) overhead: restore-finished") {
		t.Errorf("rows %+v", rows)
	}
	// A namespace-restore witness does not accept a copy's milestones.
	if _, err := (&Witness{gone: at(10), restored: at(19000), ready: at(19020)}).Compare(run); err == nil {
		t.Error("the namespace-restore witness accepted failover-restore's milestones")
	}
}

func TestWriteTables(t *testing.T) {
	r := &Results{Rows: []Row{{Figure: "a|b", Drillbot: "1 ms", Ratio: 2, Target: "< 2 ms", Met: Met(false)}}}
	var md, tab strings.Builder
	r.WriteMarkdown(&md)
	if err := r.WriteTable(&tab); err != nil {
		t.Fatal(err)
	}
	want := "| Figure | drillbot | Peer method | Peer | Ratio | Target | Met? |\n|---|---|---|---|---|---|---|\n| a\\|b | 1 ms |  |  | 2.0x | < 2 ms | **no** |\n"
	if md.String() != want {
		t.Errorf("markdown:\n%s\nwant:\n%s", md.String(), want)
	}
	if lines := strings.Split(strings.TrimSpace(tab.String()), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], "FIGURE") || !strings.HasSuffix(lines[1], "NO") {
		t.Errorf("table:\n%s", tab.String())
	}
}

func TestRealPodKillRows(t *testing.T) {
	s := time.Second
	cases := []struct {
		name         string
		rto, kubelet []time.Duration
		met          bool
	}{
		{"drillbot sees Ready after the kubelet's second", []time.Duration{2900 * time.Millisecond, 3100 * time.Millisecond}, []time.Duration{2 * s, 3 * s}, true},
		{"within the kubelet's 1 s resolution", []time.Duration{2100 * time.Millisecond}, []time.Duration{3 * s}, true},
		{"shorter than the kubelet's account", []time.Duration{1500 * time.Millisecond}, []time.Duration{3 * s}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rows := (&RealPodKill{Trials: len(tc.rto), RTO: tc.rto, Kubelet: tc.kubelet}).Rows()
			if len(rows) != 2 || rows[1].Met == nil || *rows[1].Met != tc.met {
				t.Fatalf("rows %+v, want met=%v", rows, tc.met)
			}
		})
	}
}

// The kubelet's /metrics/resource, as v1.34 serves it: the drillbot
// containers of the namespace are kept, the rest ignored.
func TestMeasurePodFootprint(t *testing.T) {
	calls := 0
	get := func(context.Context, string) ([]byte, error) {
		calls++
		cpu := 1.5 + 0.25*float64(calls)
		return []byte(fmt.Sprintf(`# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="drillbot",namespace="drillbot-system",pod="dr-a"} %g 1764064000000
container_cpu_usage_seconds_total{container="web",namespace="app",pod="web-1"} 99 1764064000000
# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container="drillbot",namespace="drillbot-system",pod="dr-a"} %d 1764064000000
container_memory_working_set_bytes{container="drillbot",namespace="drillbot-system",pod="dr-b"} 10485760 1764064000000
container_memory_working_set_bytes{container="web",namespace="app",pod="web-1"} 999999999 1764064000000
`, cpu, 20<<20+calls)), nil
	}
	f, err := MeasurePodFootprint(context.Background(), get, "drillbot-system", "drillbot", 0)
	if err != nil {
		t.Fatal(err)
	}
	if f.WorkingSet["dr-a"] != float64(20<<20+1) || f.WorkingSet["dr-b"] != 10<<20 || len(f.WorkingSet) != 2 {
		t.Errorf("working sets %v", f.WorkingSet)
	}
	rows := f.Rows(40 << 20)
	if rows[0].Met == nil || !*rows[0].Met {
		t.Errorf("20 MiB under 40 MiB not met: %+v", rows[0])
	}
}

func TestFleetRows(t *testing.T) {
	s := &FleetScale{
		Single: []FleetCost{
			{Clusters: 1, Runs: 1000, Wall: 100 * time.Millisecond, Requests: 3, Bytes: 4 << 20},
			{Clusters: 1, Runs: 10000, Wall: 600 * time.Millisecond, Requests: 12, Bytes: 40 << 20},
		},
		Costs: []FleetCost{
			{Clusters: 1, Runs: 10000, Wall: 600 * time.Millisecond, Requests: 12, Bytes: 40 << 20},
			{Clusters: 10, Runs: 10000, Wall: 2500 * time.Millisecond, Requests: 120, Bytes: 400 << 20},
		},
		SingleProcess: ProcessCost{Wall: time.Second, MaxRSS: 30 << 20, CPU: time.Second}, FleetProcess: ProcessCost{Wall: 3 * time.Second, MaxRSS: 90 << 20, CPU: 5 * time.Second},
	}
	met := func(rows []Row) (out []bool) {
		for _, r := range rows {
			if r.Met != nil {
				out = append(out, *r.Met)
			}
		}
		return out
	}
	rows := s.Rows(time.Second, 3*time.Second)
	if len(rows) != 6 || !slices.Equal(met(rows), []bool{true, true, true, true}) || rows[1].Value != 1 || rows[4].Value != 1 {
		t.Fatalf("%+v", rows)
	}
	// A report over 10,000 runs slower than a second, reading twice the
	// bytes per run; a fleet slower than 3 s, with twice the bytes per
	// cluster.
	s.Single[1].Wall, s.Single[1].Bytes = 1500*time.Millisecond, 80<<20
	s.Costs[1].Wall, s.Costs[1].Bytes = 4*time.Second, 800<<20
	rows = s.Rows(time.Second, 3*time.Second)
	if !slices.Equal(met(rows), []bool{false, false, false, false}) || rows[1].Value != 2 || rows[4].Value != 2 {
		t.Errorf("%+v", rows)
	}
}

// TestReportProcess: the peak memory is the kernel's account of the child's
// own memory (a process that allocates 64 MiB shows at least that, a small
// one far less than this test's own: not the parent's, which rusage would
// report); a failing report is an error with its stderr.
func TestReportProcess(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "ok")
	if err := os.WriteFile(ok, []byte("#!/bin/sh\nexec dd if=/dev/zero of=/dev/null bs=64M count=40 2>/dev/null\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("#!/bin/sh\necho no cluster >&2; exit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := ReportProcess(context.Background(), ok)
	if err != nil || p.MaxRSS < 64<<20 || p.CPU <= 0 || p.Wall < p.CPU/2 {
		t.Errorf("%+v, %v; want >= 64 MiB and some CPU", p, err)
	}
	// This process holds 256 MiB; a small child must not show them.
	ballast := make([]byte, 256<<20)
	for i := range ballast {
		ballast[i] = 1
	}
	small := filepath.Join(dir, "small")
	if err := os.WriteFile(small, []byte("#!/bin/sh\nexec sleep 0.2\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if p, err := ReportProcess(context.Background(), small); err != nil || p.MaxRSS > 64<<20 {
		t.Errorf("a small child: %+v, %v (the parent's 256 MiB counted?)", p, err)
	}
	runtime.KeepAlive(ballast)
	if _, err := ReportProcess(context.Background(), bad, "-n", "x"); err == nil || !strings.Contains(err.Error(), "no cluster") {
		t.Errorf("a failing report: %v", err)
	}
}

// The volume-data rows: throughputs from the sizes and spans, the shares
// from the run's breakdown.
func TestVolumeDataRows(t *testing.T) {
	run := &v1alpha1.DrillRun{Status: v1alpha1.DrillRunStatus{Breakdown: []v1alpha1.Span{
		{Name: "namespace-terminated", Duration: "10s"}, {Name: "restore-completed", Duration: "5s"}, {Name: "workloads-ready", Duration: "1s"},
		{Name: "volumes-restored", Duration: "0s"}, {Name: "data-verified", Duration: "4s"}}}}
	v := VolumeData{Size: 100 << 20, RawCopy: time.Second, Backup: 4 * time.Second, Restore: 2 * time.Second, RTO: 20 * time.Second, Shares: Shares(run)}
	if v.Shares["data-verified"] != 4*time.Second || v.Shares["namespace-terminated"] != 10*time.Second {
		t.Fatalf("shares %v", v.Shares)
	}
	rows := v.Rows()
	want := []string{"50.0 MiB/s (2s), 50% of the raw copy", "25.0 MiB/s (4s), 25% of the raw copy", "20s", "20.0% (4s)"}
	for i, w := range want {
		if rows[i].Drillbot != w {
			t.Errorf("row %d %q: %q, want %q", i, rows[i].Figure, rows[i].Drillbot, w)
		}
	}
	if rows[0].Peer != "100.0 MiB/s (1s)" {
		t.Errorf("raw copy %q", rows[0].Peer)
	}
}

// TestGrowthRows: reads that grow with the drills, or writes beyond one
// marker apply per target a minute, miss their targets.
func TestGrowthRows(t *testing.T) {
	fp := func(drills, reads, writes, targets int) *Footprint {
		return &Footprint{Drills: drills, Window: time.Minute, Requests: reads + writes, Reads: reads, MarkerTargets: targets}
	}
	cases := []struct {
		name              string
		few, many         *Footprint
		readsOK, writesOK bool
	}{
		{"flat reads, one write per target", fp(50, 4, 12, 12), fp(500, 4, 120, 120), true, true},
		{"a read per target", fp(50, 16, 12, 12), fp(500, 124, 120, 120), false, true},
		{"a get before each write", fp(50, 4, 12, 12), fp(500, 4, 360, 120), true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rows := GrowthRows(tc.few, tc.many)
			if *rows[0].Met != tc.readsOK || *rows[1].Met != tc.writesOK {
				t.Errorf("met %v %v, want %v %v (%+v)", *rows[0].Met, *rows[1].Met, tc.readsOK, tc.writesOK, rows)
			}
		})
	}
}

// TestEnduranceDrillsLoad: the endurance drills pass the real loader (a
// seconds schedule with the documented minInterval override, history
// limits) and each has a target of its own.
func TestEnduranceDrillsLoad(t *testing.T) {
	cfg := EnduranceConfig{Every: 2 * time.Second, History: 5}
	seen := map[string]bool{}
	for _, kind := range []string{"pod-kill", "corrupt-config"} {
		for i := range 2 {
			ns, doc := enduranceDrill(kind, i, cfg)
			defs, err := drill.Parse(ns+".yaml", []byte(doc), scenarios.Registry(scenarios.Deps{}))
			if err != nil {
				t.Fatalf("%s: %v\n%s", ns, err, doc)
			}
			d := defs[0]
			if d.Spec.Scenario != kind || d.Spec.Target.Namespace != ns || seen[ns] || d.Spec.SuccessfulRunsHistoryLimit == nil || *d.Spec.SuccessfulRunsHistoryLimit != 5 {
				t.Errorf("%s: %+v", ns, d.Spec)
			}
			seen[ns] = true
		}
	}
}

// TestEnduranceRows: a run without a verdict, a leader that grew, more
// runs kept than the limits or anything left behind misses its target.
func TestEnduranceRows(t *testing.T) {
	ok := func() *Endurance {
		return &Endurance{Runs: 1000, Drills: 5, Every: "2s", Verdicts: map[string]int{"PASS": 1000}, History: 10, MaxKept: 10,
			Terms: []Term{{First: Sample{Runs: 100, RSS: 40 << 20, Goroutines: 60, FDs: 12}, Last: Sample{Runs: 500, RSS: 42 << 20, Goroutines: 70, FDs: 14}}}}
	}
	met := func(e *Endurance) (out []bool) {
		for _, r := range e.Rows() {
			if r.Met != nil {
				out = append(out, *r.Met)
			}
		}
		return out
	}
	if got := met(ok()); !slices.Equal(got, []bool{true, true, true, true}) {
		t.Fatalf("a clean endurance run: %v", got)
	}
	for name, spoil := range map[string]func(*Endurance){
		"no verdict":  func(e *Endurance) { e.NoVerdict = []string{"endure-pk-0-x (Verifying)"} },
		"goroutines":  func(e *Endurance) { e.Terms[0].Last.Goroutines = 200 },
		"memory":      func(e *Endurance) { e.Terms[0].Last.RSS = 60 << 20 },
		"descriptors": func(e *Endurance) { e.Terms[0].Last.FDs = 40 },
		"history":     func(e *Endurance) { e.MaxKept = 11 },
		"left behind": func(e *Endurance) { e.Leftovers = []string{"target Lease of endure-pk-0"} },
	} {
		e := ok()
		spoil(e)
		if got := met(e); !slices.Contains(got, false) {
			t.Errorf("%s: all met: %v", name, got)
		}
	}
}

// TestParseSample reads the Go and process collectors' gauges.
func TestParseSample(t *testing.T) {
	page := "# TYPE go_goroutines gauge\ngo_goroutines 57\n# TYPE process_open_fds gauge\nprocess_open_fds 11\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 4.2e+07\n"
	s, err := parseSample(strings.NewReader(page))
	if err != nil || s.Goroutines != 57 || s.FDs != 11 || s.RSS != 42000000 {
		t.Errorf("%+v, %v", s, err)
	}
	if _, err := parseSample(strings.NewReader("# TYPE go_goroutines gauge\ngo_goroutines 57\n")); err == nil {
		t.Error("a page without the process collector parsed")
	}
}

func TestBlankDigits(t *testing.T) {
	if got := blankDigits("RTO 12.119s within 30m0s, run x-20261206-211018"); got != "RTO N.Ns within NmNs, run x-N-N" {
		t.Errorf("%q", got)
	}
}

// TestRunWatchCountsStartedRuns: a slot that found its target busy never
// ran; the endurance figure's run count (and its "after run N" samples)
// leave it out, and the verdicts count it apart.
func TestRunWatchCountsStartedRuns(t *testing.T) {
	run := func(name string, v v1alpha1.Verdict, stop *v1alpha1.Stop) *v1alpha1.DrillRun {
		now := metav1.NowMicro()
		r := &v1alpha1.DrillRun{ObjectMeta: metav1.ObjectMeta{Name: name}}
		r.Spec.Drill, r.Spec.Scenario = "d", "pod-kill"
		r.Status.Verdict, r.Status.Stop, r.Status.FinishedAt = v, stop, &now
		return r
	}
	busy := &v1alpha1.Stop{Kind: v1alpha1.StopTargetBusy}
	w := &runWatch{
		seen: map[string]*v1alpha1.DrillRun{
			"a": run("a", v1alpha1.VerdictPass, nil),
			"b": run("b", v1alpha1.VerdictInconclusive, busy),
			"c": run("c", v1alpha1.VerdictFail, nil),
			"d": run("d", v1alpha1.VerdictInconclusive, busy),
			"e": run("e", "", nil),
		},
		done:    map[string]bool{"a": true, "b": true, "c": true, "d": true},
		present: map[string]bool{"a": true, "b": true, "c": true, "d": true, "e": true},
	}
	if got := w.finished(); got != 2 {
		t.Errorf("finished = %d, want 2 (a and c; b and d never started, e runs)", got)
	}
	verdicts, none, _, _ := w.account()
	want := map[string]int{"PASS": 1, "FAIL": 1, "not started (target busy)": 2}
	if fmt.Sprint(verdicts) != fmt.Sprint(want) || len(none) != 1 {
		t.Errorf("verdicts %v, none %v; want %v and e unfinished", verdicts, none, want)
	}
}

// TestRunWatchCountsItsOwnDrillsOnly: runs of other drills recorded in the
// same namespace (the API load figure's, a FAIL among them) are neither
// counted nor given a verdict in the endurance figure.
func TestRunWatchCountsItsOwnDrillsOnly(t *testing.T) {
	ctx := context.Background()
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(k8sruntime.NewScheme(),
		map[schema.GroupVersionResource]string{v1alpha1.DrillRunResource: "DrillRunList"})
	for i, drillName := range []string{"endure-pk-0", "api-load-backup-coverage", "endure-falco-0"} {
		now := metav1.NowMicro()
		r := v1alpha1.DrillRun{TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.APIVersion, Kind: "DrillRun"},
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("run-%d", i), Namespace: "drillbot-system"}}
		r.Spec.Drill, r.Status.FinishedAt, r.Status.Verdict = drillName, &now, v1alpha1.VerdictPass
		if drillName == "api-load-backup-coverage" {
			r.Status.Verdict = v1alpha1.VerdictFail
		}
		m, err := k8sruntime.DefaultUnstructuredConverter.ToUnstructured(&r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dyn.Resource(v1alpha1.DrillRunResource).Namespace("drillbot-system").Create(ctx, &unstructured.Unstructured{Object: m}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	w := newRunWatch(dyn, "drillbot-system", []string{"endure-pk-0", "endure-falco-0"})
	if err := w.poll(ctx); err != nil {
		t.Fatal(err)
	}
	verdicts, none, _, _ := w.account()
	if w.finished() != 2 || fmt.Sprint(verdicts) != "map[PASS:2]" || len(none) != 0 {
		t.Errorf("finished %d, verdicts %v, none %v; want the two endurance runs only", w.finished(), verdicts, none)
	}
}
