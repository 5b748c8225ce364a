package main

// Integration tests against the local cluster's real Prometheus and
// Alertmanager: the chart's rules and dashboard under its default topology
// (two replicas scraped) and after a failover; stop conditions holding and
// stopping drills; an expected alert that never fires failing the run.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"

	"github.com/drillbot-io/drillbot/internal/alerts"
	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/metrics"
	"github.com/drillbot-io/drillbot/test/localcluster"
	"github.com/drillbot-io/drillbot/test/testharness"
)

var (
	monOnce sync.Once
	mon     *localcluster.Monitoring
	monErr  error
)

// monitoring starts the cluster's Prometheus and Alertmanager once for the
// package, with the chart's rules (rendered by helm, as a PrometheusRule).
func monitoring(t *testing.T) *localcluster.Monitoring {
	t.Helper()
	localcluster.Require(t, cluster)
	monOnce.Do(func() {
		mon, monErr = cluster.StartMonitoring(context.Background())
		if monErr != nil {
			return
		}
		if monErr = mon.SetRules(context.Background(), "drillbot", chartRules(t)); monErr != nil {
			return
		}
		monErr = mon.SetRules(context.Background(), "e2e", []byte(e2eRules))
	})
	if monErr != nil {
		t.Fatal(monErr)
	}
	return mon
}

func chartRules(t *testing.T) []byte {
	t.Helper()
	bin := os.Getenv("DRILLBOT_HELM")
	if bin == "" {
		t.Fatal("DRILLBOT_HELM unset: run through make test")
	}
	out, err := exec.Command(bin, "template", "dr", "../../deploy/helm/drillbot", "--show-only", "templates/prometheusrule.yaml",
		"--set", "metrics.prometheusRule.enabled=true").Output()
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	var pr struct {
		Spec map[string]any `json:"spec"`
	}
	if err := yaml.Unmarshal(out, &pr); err != nil {
		t.Fatal(err)
	}
	rules, err := yaml.Marshal(pr.Spec)
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

func promAPI(t *testing.T, m *localcluster.Monitoring) promv1.API {
	t.Helper()
	c, err := api.NewClient(api.Config{Address: m.PrometheusURL})
	if err != nil {
		t.Fatal(err)
	}
	return promv1.NewAPI(c)
}

// query evaluates expr now (as Grafana does: $drill is .*).
func query(t *testing.T, p promv1.API, expr string) model.Vector {
	t.Helper()
	expr = strings.NewReplacer("$drill", ".*", "$cluster", ".*").Replace(expr)
	v, _, _, err := p.Query(context.Background(), expr, time.Now())
	if err != nil {
		t.Fatalf("query %s: %v", expr, err)
	}
	vec, ok := v.(model.Vector)
	if !ok {
		t.Fatalf("query %s: %s, want a vector", expr, v.Type())
	}
	return vec
}

// e2eRules are the tests' own: a critical incident the test opens and
// closes (a gauge it serves), an alert that never fires, and one on the
// faults drillbot itself reports (on kwok nodes nothing else can see a
// fault; test/realstack's Kyverno test has a real outage detected).
const e2eRules = `groups:
  - name: e2e
    rules:
      - alert: E2EIncidentOpen
        expr: e2e_incident_open > 0
        labels: {severity: critical}
      - alert: E2ENeverFires
        expr: vector(1) == 2
      - alert: E2EDrillFaultActive
        expr: drillbot_active_faults > 0
        labels: {severity: info}
`

// TestDashboardAndRulesUnderTheChartTopology: two replicas with the same
// catalog, both scraped by a real Prometheus with the chart's rules. After
// real drills every panel of the shipped dashboard shows data and the
// right numbers, every rule evaluates without error and none fires; the
// same after the leader is killed and the standby leads. promtool check
// metrics passes on what drillbot exports.
func TestDashboardAndRulesUnderTheChartTopology(t *testing.T) {
	m := monitoring(t)
	p := promAPI(t, m)
	// Two targets (one run per target at a time): the probe's namespace
	// enforces Pod Security restricted, so its privileged pod is denied by
	// the API server (a PASS); the Falco stand-in has its own.
	ns, falcoNS := "alerts-topo-"+localcluster.RandomSuffix(), "alerts-topo-falco-"+localcluster.RandomSuffix()
	restrictedNamespace(t, cluster, ns)
	falco(t, falcoNS)
	// A probe that passes every few seconds, a corrupt-config drill (with
	// an RPO target), and a check (its posture: the probe's namespace
	// enforces restricted, 1 of 1).
	dir := drillDir(t, fmt.Sprintf(`apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata: {name: topo-probe}
spec:
  scenario: admission-probe
  schedule: "@every 3s"
  minInterval: 1s
  objectives: {rto: 1m}
  target: {namespace: %[1]s}
  params:
    attempt: {image: registry.example/x:1, privileged: true}
    reasonContains: "violates PodSecurity"
---
apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata: {name: topo-falco}
spec:
  scenario: corrupt-config
  schedule: "@every 30s"
  minInterval: 1s
  objectives: {rto: 20m, rpo: 5m}
  target: {namespace: %[2]s}
  params: {configMap: falco-rules, key: falco_rules.yaml, daemonSet: falco}
  alerts:
    expect:
      - {name: E2EDrillFaultActive, matchers: '{drill="topo-falco"}', within: 1m}
---
apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata: {name: topo-psa}
spec:
  scenario: pod-security-audit
  schedule: "@every 5s"
  minInterval: 1s
  objectives: {rto: 1m}
  params: {namespaces: {matchLabels: {kubernetes.io/metadata.name: %[1]s}}}
`, ns, falcoNS))
	// The test plays Falco: its pods fail while the rules are corrupt, once
	// the fault's alert is active (a fault shorter than a scrape interval
	// is seen by no alert: seen here, a 277 ms fault went undetected, a
	// true FAIL, but not this test's point).
	am, err := alerts.NewAlertmanager(m.AlertmanagerURL, "")
	if err != nil {
		t.Fatal(err)
	}
	faultAlerted := func(ctx context.Context) bool {
		as, err := am.Active(ctx)
		for _, a := range as {
			if a.Name == "E2EDrillFaultActive" && a.Labels["drill"] == "topo-falco" {
				return err == nil
			}
		}
		return false
	}
	ctx, stopFalco := context.WithCancel(context.Background())
	defer stopFalco()
	go testharness.PlayFalcoWhen(ctx, t, cluster.Kube, falcoNS, nil, faultAlerted)
	bin := testharness.Binary(t)
	lease := []string{"--leader-election-lease", "drillbot-topology", "--alertmanager-url", m.AlertmanagerURL, "--alert-poll-interval", "1s"}
	a := startDaemon(t, bin, dir, lease...)
	eventually(t, "A leads", 30*time.Second, func() bool { return a.saw("leading: scheduling drills") })
	b := startDaemon(t, bin, dir, lease...)
	eventually(t, "B stands by", 30*time.Second, func() bool { return b.saw("standing by") })
	if err := m.SetTargets("drillbot", []string{a.addr, b.addr}, nil); err != nil {
		t.Fatal(err)
	}

	t.Run("promtool check metrics", func(t *testing.T) {
		bin := os.Getenv("DRILLBOT_PROMTOOL")
		if bin == "" {
			t.Fatal("DRILLBOT_PROMTOOL unset: run through make test")
		}
		eventually(t, "a run's results exported", 30*time.Second, func() bool { return strings.Contains(scrape(t, a), "drillbot_runs_total{") })
		for _, d := range []*daemon{a, b} {
			cmd := exec.Command(bin, "check", "metrics")
			cmd.Stdin = strings.NewReader(scrape(t, d))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("promtool check metrics on %s: %v\n%s", d.addr, err, out)
			}
		}
	})

	dash, err := metrics.ReadDashboard("../../deploy/helm/drillbot/dashboards/drillbot.json")
	if err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, leader *daemon, replicas int) {
		// The leader's results in Prometheus: both drills' last runs passed
		// (after a failover, a run the old leader was in may have been
		// interrupted: FAIL, until the next run).
		eventually(t, "Prometheus has the leader's results, all three PASS", 2*time.Minute, func() bool {
			v := query(t, p, fmt.Sprintf(`count(drillbot_last_run_verdict{verdict="PASS",instance=%q} == 1)`, leader.addr))
			return len(v) == 1 && v[0].Value == 3
		})
		// A run in the last seconds, and the histogram's increase seen;
		// the Falco drill passed, detected, and Prometheus has it.
		eventually(t, "the RTO histogram moved in Prometheus", time.Minute, func() bool {
			return len(query(t, p, `increase(drillbot_rto_seconds_count{drill="topo-probe"}[1m]) > 0`)) > 0
		})
		eventually(t, "topo-falco's detection in Prometheus", 2*time.Minute, func() bool {
			return len(query(t, p, fmt.Sprintf(`drillbot_detection_seconds{drill="topo-falco",instance=%q}`, leader.addr))) > 0
		})
		for _, panel := range dash.Panels {
			var with int
			for _, tg := range panel.Targets {
				if len(query(t, p, tg.Expr)) > 0 {
					with++
				} else {
					t.Errorf("panel %q: %s returns no data", panel.Title, tg.Expr)
				}
			}
			if with == 0 {
				t.Errorf("panel %q is empty", panel.Title)
			}
		}
		// The right numbers: every drill passed.
		want := map[string]float64{
			`100 * sum(drillbot_last_run_verdict{verdict="PASS",drill=~"$drill"}) / count(max by (drill) (drillbot_rto_target_seconds{drill=~"$drill"}))`: 100,
			`sum(drillbot_active_faults{drill=~"$drill"})`:                                                        0,
			`count(max by (drill) (drillbot_rto_target_seconds{drill=~"$drill"}))`:                                3,
			`max(drillbot_posture_compliant{drill="topo-psa"}) / max(drillbot_posture_checked{drill="topo-psa"})`: 1,
			`max by (drill) (drillbot_rpo_target_seconds{drill=~"$drill"})`:                                       300,
			`sum(drillbot_last_run_verdict{drill="topo-probe",verdict="PASS"})`:                                   1,
			`count(drillbot_rto_target_seconds{drill="topo-probe"})`:                                              float64(replicas), // every replica exports it
			`count(drillbot_last_run_verdict{drill="topo-probe",verdict="PASS"} == 1)`:                            1,                 // only the leader
			`sum(drillbot_notification_failures_total)`:                                                           0,
			`count(up{job="drillbot"} == 1)`:                                                                      float64(replicas),
			`sum(drillbot_last_run_verdict{drill="topo-falco",verdict="PASS"})`:                                   1,
			`count(drillbot_detection_seconds{drill="topo-falco"} < 60)`:                                          1,
			`sum(drillbot_detections_missed_total)`:                                                               0,
			`sum(drillbot_runs_stopped_total{drill="topo-falco"})`:                                                0,
			`sum(drillbot_last_run_verdict{drill="topo-probe",verdict="FAIL"})`:                                   0,
			`count(max by (drill) (drillbot_rto_target_seconds{drill="topo-probe"}) == 60)`:                       1,
		}
		// And the dashboard's own compliance query says so.
		for _, panel := range dash.Panels {
			if strings.HasPrefix(panel.Title, "Compliance") {
				want[panel.Targets[0].Expr] = 100
			}
		}
		for expr, v := range want {
			got := query(t, p, expr)
			if len(got) != 1 || float64(got[0].Value) != v {
				t.Errorf("%s = %v, want %v", expr, got, v)
			}
		}
		// Every rule of the chart evaluates (an evaluation error, such as
		// many-to-many matching over two replicas, is health "err"), and
		// none fires once every drill's last run passed (a rule that
		// fired for an interrupted run resolves at its next evaluation).
		var problems []string
		_ = wait.PollUntilContextTimeout(context.Background(), 500*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
			rules, err := p.Rules(context.Background(), nil)
			if err != nil {
				problems = []string{err.Error()}
				return false, nil
			}
			problems = nil
			n := 0
			for _, g := range rules.Groups {
				for _, r := range g.Rules {
					if ar, ok := r.(promv1.AlertingRule); ok && g.Name == "drillbot" {
						n++
						if ar.Health != promv1.RuleHealthGood {
							problems = append(problems, fmt.Sprintf("rule %s: health %s: %s", ar.Name, ar.Health, ar.LastError))
						}
						if ar.State == "firing" || ar.State == "pending" {
							problems = append(problems, fmt.Sprintf("rule %s %s: %s", ar.Name, ar.State, localcluster.JSON(ar.Alerts)))
						}
					}
				}
			}
			if n < 5 {
				problems = append(problems, fmt.Sprintf("%d chart rules loaded, want 5", n))
			}
			return len(problems) == 0, nil
		})
		if len(problems) > 0 {
			t.Errorf("chart rules: %s", strings.Join(problems, "; "))
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, r := range listRuns(t, "topo-falco") {
				t.Logf("topo-falco run %s: %s %s %q detections %s", r.Name, r.Status.Phase, r.Status.Verdict, r.Status.Reason, localcluster.JSON(r.Status.Detections))
			}
			t.Logf("A:\n%s\nB:\n%s", a, b)
		}
	})
	t.Run("both replicas scraped", func(t *testing.T) { check(t, a, 2) })

	t.Run("after a failover", func(t *testing.T) {
		// Killed between two Falco runs, so no fault is held (that case is
		// TestLeaderElectionAndTakeover's).
		eventually(t, "no topo-falco run in progress", time.Minute, func() bool {
			for _, r := range listRuns(t, "topo-falco") {
				if r.Status.Phase != v1alpha1.PhaseCompleted {
					return false
				}
			}
			return true
		})
		if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		eventually(t, "B leads", 45*time.Second, func() bool { return b.saw("leading: scheduling drills") })
		eventually(t, "B has results", 30*time.Second, func() bool { return strings.Contains(scrape(t, b), `drillbot_last_run_verdict{drill="topo-probe"`) })
		eventually(t, "Prometheus sees A down", 30*time.Second, func() bool {
			return len(query(t, p, fmt.Sprintf(`up{job="drillbot",instance=%q} == 0`, a.addr))) == 1
		})
		check(t, b, 1)
	})
}

// incident is a scrape target whose gauge the test sets: the rules make
// it a critical alert.
type incident struct {
	g    prometheus.Gauge
	addr string
}

func newIncident(t *testing.T, m *localcluster.Monitoring) *incident {
	t.Helper()
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "e2e_incident_open", Help: "1 while the test's incident is open."})
	reg.MustRegister(g)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	if err := m.SetTargets("incident", []string{l.Addr().String()}, nil); err != nil {
		t.Fatal(err)
	}
	return &incident{g: g, addr: l.Addr().String()}
}

// waitAlert waits until Alertmanager has (or no longer has) an active
// alert of that name.
func waitAlert(t *testing.T, m *localcluster.Monitoring, name string, active bool) {
	t.Helper()
	am, err := alerts.NewAlertmanager(m.AlertmanagerURL, "")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, fmt.Sprintf("alert %s active=%v in Alertmanager", name, active), time.Minute, func() bool {
		as, err := am.Active(context.Background())
		if err != nil {
			return false
		}
		found := false
		for _, a := range as {
			found = found || a.Name == name
		}
		return found == active
	})
}

// TestStopConditionsAndExpectedAlerts: with a real Prometheus and
// Alertmanager, an expected alert that never fires FAILs the run naming it;
// a critical alert starting mid-drill stops the drill, which reverts; while
// it is active the next scheduled start is held; once it resolves drills
// run again.
func TestStopConditionsAndExpectedAlerts(t *testing.T) {
	m := monitoring(t)
	inc := newIncident(t, m)
	ns := "alerts-stop-" + localcluster.RandomSuffix()
	falco(t, ns)
	bin := testharness.Binary(t)
	amFlags := []string{"--alertmanager-url", m.AlertmanagerURL, "--alert-poll-interval", "1s"}

	t.Run("an expected alert that never fires", func(t *testing.T) {
		file := drillFile(t, fmt.Sprintf(`apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata: {name: never-detected}
spec:
  scenario: admission-probe
  objectives: {rto: 1m}
  target: {namespace: %s}
  params: {attempt: {image: registry.example/x:1}}
  alerts:
    expect:
      - {name: E2ENeverFires, within: 3s}
`, ns))
		out, err := exec.Command(bin, append([]string{"run", "-f", file, "--kubeconfig", cluster.Kubeconfig, "-n", "drillbot-system", "-o", "json"}, amFlags...)...).Output()
		var run v1alpha1.DrillRun
		if jerr := json.Unmarshal(out, &run); jerr != nil {
			t.Fatalf("run: %v %v\n%s", err, jerr, out)
		}
		st := run.Status
		if st.Verdict != v1alpha1.VerdictFail || !strings.Contains(st.Reason, "alert E2ENeverFires not firing within 3s") {
			t.Errorf("%s %q, want FAIL naming E2ENeverFires", st.Verdict, st.Reason)
		}
		if len(st.Detections) != 1 || st.Detections[0].FiredAt != nil {
			t.Errorf("detections %s", localcluster.JSON(st.Detections))
		}
		// Without an Alertmanager the drill cannot be checked: refused
		// before anything runs, naming the file.
		out2, err := exec.Command(bin, "run", "-f", file, "--kubeconfig", cluster.Kubeconfig, "-n", "drillbot-system").CombinedOutput()
		if err == nil || !strings.Contains(string(out2), file+": drill never-detected: spec.alerts") {
			t.Errorf("no --alertmanager-url: %v\n%s", err, out2)
		}
	})

	t.Run("a critical alert stops the drill, holds the next, and resolves", func(t *testing.T) {
		dir := drillDir(t, falcoDrill("stop-falco", ns, "@every 2s", "10m"))
		d := startDaemon(t, bin, dir, append([]string{"--leader-election-lease", "drillbot-stop", "--stop-when", `{severity="critical"}`}, amFlags...)...)
		waitCorrupt(t, ns)
		inc.g.Set(1)
		waitAlert(t, m, "E2EIncidentOpen", true)
		var stopped, held v1alpha1.DrillRun
		eventually(t, "the running drill stopped, and a start held", time.Minute, func() bool {
			for _, r := range listRuns(t, "stop-falco") {
				if r.Status.Phase != v1alpha1.PhaseCompleted || r.Status.Stop == nil {
					continue
				}
				if r.Status.Stop.Before {
					held = r
				} else {
					stopped = r
				}
			}
			return stopped.Name != "" && held.Name != ""
		})
		st := stopped.Status
		if st.Verdict != v1alpha1.VerdictFail || !strings.HasPrefix(st.Reason, `stopped: alert E2EIncidentOpen{`) || st.Stop.Kind != v1alpha1.StopAlert {
			t.Errorf("stopped run: %s %q %+v", st.Verdict, st.Reason, st.Stop)
		}
		if len(st.Journal) != 1 || st.Journal[0].State != v1alpha1.JournalReverted {
			t.Errorf("stopped run's journal: %s", localcluster.JSON(st.Journal))
		}
		hs := held.Status
		if hs.Verdict != v1alpha1.VerdictInconclusive || !strings.HasPrefix(hs.Reason, "not started: alert E2EIncidentOpen{") || len(hs.Journal) != 0 || len(hs.Steps) != 0 {
			t.Errorf("held run: %s %q steps %d journal %d", hs.Verdict, hs.Reason, len(hs.Steps), len(hs.Journal))
		}
		cm, err := cluster.Kube.CoreV1().ConfigMaps(ns).Get(context.Background(), "falco-rules", metav1.GetOptions{})
		if err != nil || cm.Data["falco_rules.yaml"] != rules {
			t.Errorf("rules while the incident is open: %q (%v)", cm.Data["falco_rules.yaml"], err)
		}
		if !strings.Contains(scrape(t, d), `drillbot_runs_stopped_total{drill="stop-falco",kind="Alert",scenario="corrupt-config",when="before"}`) {
			t.Errorf("held runs not in the metrics")
		}
		inc.g.Set(0)
		waitAlert(t, m, "E2EIncidentOpen", false)
		waitCorrupt(t, ns) // drills run again
		// SIGTERM: the daemon reverts the fault it holds before it exits.
		if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		_ = d.cmd.Wait()
	})
}

// TestFreezeWindowHoldsScheduledRuns: serve --policy with a freeze window
// that covers now records each scheduled start as not started, touching
// nothing; a policy file with an error keeps the daemon from starting,
// naming the file and field.
func TestFreezeWindowHoldsScheduledRuns(t *testing.T) {
	localcluster.Require(t, cluster)
	ns := "alerts-freeze-" + localcluster.RandomSuffix()
	falco(t, ns)
	bin := testharness.Binary(t)
	now := time.Now().UTC()
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	doc := fmt.Sprintf(`apiVersion: drillbot.io/v1alpha1
kind: DrillPolicy
metadata: {name: e2e}
spec:
  freezeWindows:
    - {name: e2e-freeze, start: %q, end: %q}
`, now.Add(-time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))
	if err := os.WriteFile(policy, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := drillDir(t, falcoDrill("frozen-falco", ns, "@every 2s", "10m"))
	d := startDaemon(t, bin, dir, "--leader-election-lease", "drillbot-freeze", "--policy", policy)
	eventually(t, "a scheduled start held", 30*time.Second, func() bool {
		for _, r := range listRuns(t, "frozen-falco") {
			if r.Status.Phase == v1alpha1.PhaseCompleted && r.Status.Stop != nil && r.Status.Stop.Kind == v1alpha1.StopFreezeWindow {
				return true
			}
		}
		return false
	})
	for _, r := range listRuns(t, "frozen-falco") {
		st := r.Status
		if st.Phase != v1alpha1.PhaseCompleted {
			continue // just created
		}
		if st.Verdict != v1alpha1.VerdictInconclusive || !strings.HasPrefix(st.Reason, "not started: freeze window e2e-freeze (until ") || len(st.Journal) != 0 || len(st.Steps) != 0 {
			t.Errorf("run %s: %s %q steps %d journal %d", r.Name, st.Verdict, st.Reason, len(st.Steps), len(st.Journal))
		}
	}
	cm, err := cluster.Kube.CoreV1().ConfigMaps(ns).Get(context.Background(), "falco-rules", metav1.GetOptions{})
	if err != nil || cm.Data["falco_rules.yaml"] != rules {
		t.Errorf("rules in a freeze: %q (%v)", cm.Data["falco_rules.yaml"], err)
	}
	if !strings.Contains(scrape(t, d), `drillbot_runs_stopped_total{drill="frozen-falco",kind="FreezeWindow",scenario="corrupt-config",when="before"}`) {
		t.Error("held runs not counted")
	}

	bad := strings.Replace(doc, "end:", "until:", 1)
	if err := os.WriteFile(policy, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "serve", "--kubeconfig", cluster.Kubeconfig, "--drills", dir, "--policy", policy, "--listen", "127.0.0.1:0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), policy+": spec.freezeWindows[0].until: Forbidden: unknown field") {
		t.Errorf("serve with a bad policy: %v\n%s", err, out)
	}
}

// restrictedNamespace creates ns in c, opted in to drills and enforcing Pod
// Security restricted (an admission probe's privileged pod is denied).
func restrictedNamespace(t *testing.T, c *localcluster.Cluster, ns string) {
	t.Helper()
	if _, err := c.Kube.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
		Labels: map[string]string{v1alpha1.LabelAllowDisaster: "true", "pod-security.kubernetes.io/enforce": "restricted"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}
