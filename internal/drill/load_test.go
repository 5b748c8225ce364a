package drill_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/scenarios"
)

const valid = `apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata:
  name: ns-restore
spec:
  scenario: namespace-restore
  schedule: "CRON_TZ=Europe/Berlin 0 3 1 * *"
  objectives:
    rto: 30m
    rpo: 1h
  timeouts:
    preflight: 1m
  target:
    namespace: shop
  params:
    backup:
      schedule: shop-daily
`

// mutate replaces one line of the valid drill, or appends when old is "".
func mutate(old, new string) string {
	if old == "" {
		return valid + new
	}
	if !strings.Contains(valid, old) {
		panic("fixture does not contain " + old)
	}
	return strings.Replace(valid, old, new, 1)
}

func TestParseRejectsBadInputNamingTheField(t *testing.T) {
	reg := scenarios.Registry(scenarios.Deps{})
	cases := []struct {
		name, doc string
		want      []string // every string must appear in the error
	}{
		{"unknown top-level spec field", mutate("  scenario: namespace-restore\n", "  scenario: namespace-restore\n  retries: 3\n"), []string{"drills/x.yaml", "spec.retries", "unknown field"}},
		{"unknown param field", mutate("      schedule: shop-daily\n", "      schedule: shop-daily\n      keepLast: 3\n"), []string{"spec.params.backup.keepLast", "unknown field"}},
		{"duplicate field", mutate("    rpo: 1h\n", "    rpo: 1h\n    rpo: 2h\n"), []string{"rpo"}},
		{"bad duration", mutate("rto: 30m", "rto: 30 minutes"), []string{"spec.objectives.rto", `"30 minutes"`}},
		{"negative duration", mutate("rto: 30m", "rto: -5m"), []string{"spec.objectives.rto", "must be positive"}},
		{"bad timeout", mutate("preflight: 1m", "preflight: soon"), []string{"spec.timeouts.preflight"}},
		{"missing rto", mutate("    rto: 30m\n", ""), []string{"spec.objectives.rto", "Required"}},
		{"missing rpo for namespace-restore", mutate("    rpo: 1h\n", ""), []string{"spec.objectives.rpo", "Required"}},
		{"bad cron", mutate(`"CRON_TZ=Europe/Berlin 0 3 1 * *"`, `"0 3 1 *"`), []string{"spec.schedule", "expected exactly 5 fields"}},
		{"bad cron field value", mutate(`"CRON_TZ=Europe/Berlin 0 3 1 * *"`, `"0 25 * * *"`), []string{"spec.schedule", "above maximum"}},
		{"bad timezone", mutate("Europe/Berlin", "Mars/Olympus"), []string{"spec.schedule", "Mars/Olympus"}},
		{"missing target", mutate("    namespace: shop\n", ""), []string{"spec.target.namespace", "Required"}},
		{"invalid target namespace", mutate("namespace: shop", "namespace: Shop_1"), []string{"spec.target.namespace"}},
		{"unknown scenario", mutate("scenario: namespace-restore", "scenario: delete-everything"), []string{"spec.scenario", "delete-everything", "namespace-restore"}},
		{"missing scenario", mutate("  scenario: namespace-restore\n", ""), []string{"spec.scenario", "Required"}},
		{"no backup source", mutate("      schedule: shop-daily\n", "      {}\n"), []string{"spec.params.backup"}},
		{"two backup sources", mutate("      schedule: shop-daily\n", "      schedule: shop-daily\n      create: true\n"), []string{"spec.params.backup", "exactly one"}},
		{"wrong type", mutate("      schedule: shop-daily\n", "      schedule: [a, b]\n"), []string{"spec.params.backup.schedule"}},
		{"wrong apiVersion", mutate("drillbot.io/v1alpha1", "drillbot.io/v2"), []string{"apiVersion"}},
		{"wrong kind", mutate("kind: Drill", "kind: Drills"), []string{"kind"}},
		{"missing name", mutate("  name: ns-restore\n", ""), []string{"metadata.name", "Required"}},
		{"name too long for a run label", mutate("name: ns-restore", "name: "+strings.Repeat("a", 41)), []string{"metadata.name", "more than 40"}},
		{"name not DNS", mutate("name: ns-restore", "name: NS_Restore"), []string{"metadata.name"}},
		{"not YAML", "spec: [unclosed\n", []string{"drills/x.yaml", "not valid YAML"}},
		{"empty file", "# nothing\n", []string{"drills/x.yaml", "no Drill"}},
		// A drill that can never run, or would hammer the cluster, is bad input too.
		{"schedule that never fires (February 30th)", mutate(`"CRON_TZ=Europe/Berlin 0 3 1 * *"`, `"0 3 30 2 *"`), []string{"spec.schedule", "never fires"}},
		{"namespace deleted every second", mutate(`"CRON_TZ=Europe/Berlin 0 3 1 * *"`, `"@every 1s"`), []string{"spec.schedule", "fires every 1s", "minimum interval 1h0m0s", "spec.minInterval"}},
		{"fault every 30 minutes", mutate(`"CRON_TZ=Europe/Berlin 0 3 1 * *"`, `"*/30 * * * *"`), []string{"spec.schedule", "fires every 30m0s"}},
		{"override below the override floor", mutate("  scenario: namespace-restore\n", "  scenario: namespace-restore\n  minInterval: 500ms\n"), []string{"spec.minInterval", "at least 1s"}},
		{"override not met", mutate(`"CRON_TZ=Europe/Berlin 0 3 1 * *"`, "\"*/5 * * * *\"\n  minInterval: 10m"), []string{"spec.schedule", "fires every 5m0s", "minimum interval 10m0s"}},
		{"kube-system target", mutate("namespace: shop", "namespace: kube-system"), []string{"spec.target.namespace", "protected"}},
		{"drillbot's own namespace", mutate("namespace: shop", "namespace: drillbot-system"), []string{"spec.target.namespace", "protected"}},
		{"Velero's namespace", mutate("namespace: shop", "namespace: velero"), []string{"spec.target.namespace", "protected"}},
		{"expected alert without a name", mutate("", "  alerts:\n    expect:\n      - within: 2m\n"), []string{"spec.alerts.expect[0].name", "Required"}},
		{"expected alert without a deadline", mutate("", "  alerts:\n    expect:\n      - name: VeleroRestoreFailed\n"), []string{"spec.alerts.expect[0].within", "Required"}},
		{"expected alert with bad matchers", mutate("", "  alerts:\n    expect:\n      - name: X\n        matchers: '{namespace=shop'\n        within: 2m\n"), []string{"spec.alerts.expect[0].matchers", "not Alertmanager matchers"}},
		{"detection deadline past the recover timeout", mutate("", "  alerts:\n    expect:\n      - name: X\n        within: 2h\n"), []string{"spec.alerts.expect[0].within", "longer than the recover timeout 1h0m0s"}},
		{"resolution waited for too long", mutate("", "  alerts:\n    expect:\n      - name: X\n        within: 2m\n        resolveWithin: 3h\n"), []string{"spec.alerts.expect[0].resolveWithin", "at most 1h0m0s"}},
		{"the same alert twice", mutate("", "  alerts:\n    expect:\n      - {name: X, within: 2m}\n      - {name: X, within: 3m}\n"), []string{"spec.alerts.expect[1]", "Duplicate"}},
		{"bad stop condition", mutate("", "  alerts:\n    stopWhen: ['severity==\"critical\"']\n"), []string{"spec.alerts.stopWhen[0]", "not Alertmanager matchers"}},
		{"unknown alerts field", mutate("", "  alerts:\n    page: true\n"), []string{"spec.alerts.page", "unknown field"}},
		{"a check with a target", "apiVersion: drillbot.io/v1alpha1\nkind: Drill\nmetadata: {name: cov}\nspec:\n  scenario: backup-coverage\n  objectives: {rto: 1m, rpo: 1h}\n  target: {namespace: shop}\n  params: {namespaces: {matchLabels: {env: production}}}\n",
			[]string{"spec.target", "backup-coverage checks the namespaces its params select"}},
		{"a check without a selector", "apiVersion: drillbot.io/v1alpha1\nkind: Drill\nmetadata: {name: cov}\nspec:\n  scenario: backup-coverage\n  objectives: {rto: 1m, rpo: 1h}\n  params: {namespaces: {}}\n",
			[]string{"spec.params.namespaces", "Required"}},
		{"a data check on a kind that restores no data", "apiVersion: drillbot.io/v1alpha1\nkind: Drill\nmetadata: {name: pk}\nspec:\n  scenario: pod-kill\n  objectives: {rto: 1m}\n  target: {namespace: shop, selector: {app: web}}\n  verify: {job: {template: {spec: {containers: [{name: c, image: x}]}}}}\n",
			[]string{"spec.verify", "pod-kill restores no data"}},
		{"a data check naming no check", mutate("", "  verify: {}\n"), []string{"spec.verify", "Required", "job, http"}},
		{"an http check without a service", mutate("", "  verify: {http: {port: http, path: /newest}}\n"), []string{"spec.verify.http.service", "Required"}},
		{"an http check with a bad port", mutate("", "  verify: {http: {service: db, port: \"70000\", path: /newest}}\n"), []string{"spec.verify.http.port", "1 to 65535"}},
		{"an http check with a bad port name", mutate("", "  verify: {http: {service: db, port: Not_A_Name, path: /newest}}\n"), []string{"spec.verify.http.port"}},
		{"an http check path with a query", mutate("", "  verify: {http: {service: db, port: http, path: \"/newest?x=1\"}}\n"), []string{"spec.verify.http.path", "no query"}},
		{"an http check path without a slash", mutate("", "  verify: {http: {service: db, port: http, path: newest}}\n"), []string{"spec.verify.http.path"}},
		{"an http check of another scheme", mutate("", "  verify: {http: {service: db, port: http, path: /newest, scheme: ftp}}\n"), []string{"spec.verify.http.scheme", "ftp"}},
		{"an http check with an unknown field", mutate("", "  verify: {http: {service: db, port: http, path: /newest, url: x}}\n"), []string{"url"}},
		{"a data check without a container", mutate("", "  verify: {job: {template: {spec: {containers: []}}}}\n"), []string{"spec.verify.job.template.spec.containers", "Required"}},
		{"a data check without an image", mutate("", "  verify: {job: {template: {spec: {containers: [{name: c}]}}}}\n"), []string{"spec.verify.job.template.spec.containers[0].image", "Required"}},
		{"a data check that retries", mutate("", "  verify: {job: {template: {spec: {restartPolicy: OnFailure, containers: [{name: c, image: x}]}}}}\n"), []string{"spec.verify.job.template.spec.restartPolicy", "OnFailure"}},
		{"a data check with its own deadline", mutate("", "  verify: {job: {template: {spec: {activeDeadlineSeconds: 60, containers: [{name: c, image: x}]}}}}\n"), []string{"spec.verify.job.template.spec.activeDeadlineSeconds", "recover phase"}},
		{"an unknown field in a data check's pod", mutate("", "  verify: {job: {template: {spec: {containers: [{name: c, image: x, imagePull: Never}]}}}}\n"), []string{"spec.verify.job.template.spec.containers[0].imagePull", "unknown field"}},
		{"history limit of zero", mutate("  scenario: namespace-restore\n", "  scenario: namespace-restore\n  failedRunsHistoryLimit: 0\n"), []string{"spec.failedRunsHistoryLimit", "at least 1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defs, err := drill.Parse("drills/x.yaml", []byte(tc.doc), reg, drill.Protect("drillbot-system", "velero"))
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.doc)
			}
			if defs != nil {
				t.Errorf("returned %d definitions alongside an error", len(defs))
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestParseAlerts(t *testing.T) {
	doc := mutate("", "  alerts:\n    expect:\n      - name: KyvernoAdmissionDown\n        matchers: '{namespace=\"kyverno\"}'\n        within: 2m\n        resolveWithin: 5m\n    stopWhen: ['{severity=\"critical\"}']\n")
	defs, err := drill.Parse("x.yaml", []byte(doc), scenarios.Registry(scenarios.Deps{}))
	if err != nil {
		t.Fatal(err)
	}
	a := defs[0].Alerts
	if len(a.Expect) != 1 || a.Expect[0].Within != 2*time.Minute || a.Expect[0].ResolveWithin != 5*time.Minute || len(a.StopWhen) != 1 {
		t.Fatalf("%+v", a)
	}
	x := a.Expect[0]
	for _, tc := range []struct {
		labels map[string]string
		want   bool
	}{
		{map[string]string{"alertname": "KyvernoAdmissionDown", "namespace": "kyverno", "severity": "page"}, true},
		{map[string]string{"alertname": "KyvernoAdmissionDown", "namespace": "other"}, false},
		{map[string]string{"alertname": "Other", "namespace": "kyverno"}, false},
	} {
		if got := x.Matches(tc.labels); got != tc.want {
			t.Errorf("%s matches %v: %v, want %v", x, tc.labels, got, tc.want)
		}
	}
	if !a.StopWhen[0].Matches(map[string]string{"alertname": "EtcdDown", "severity": "critical"}) || a.StopWhen[0].Matches(map[string]string{"severity": "warning"}) {
		t.Errorf("stop condition %s", a.StopWhen[0])
	}
}

func TestParseValid(t *testing.T) {
	defs, err := drill.Parse("x.yaml", []byte(valid), scenarios.Registry(scenarios.Deps{}))
	if err != nil {
		t.Fatal(err)
	}
	d := defs[0]
	if d.Name != "ns-restore" || d.RTO != 30*time.Minute || d.RPO != time.Hour {
		t.Errorf("got name %q rto %v rpo %v", d.Name, d.RTO, d.RPO)
	}
	want := drill.Timeouts{Preflight: time.Minute, Inject: drill.DefaultInjectTimeout, Recover: time.Hour,
		Verify: drill.DefaultVerifyTimeout, Revert: drill.DefaultRevertTimeout}
	if d.Timeouts != want {
		t.Errorf("timeouts %+v, want %+v (recover defaults to twice the RTO)", d.Timeouts, want)
	}
	// CRON_TZ is honoured: 03:00 in Berlin on the 1st is 01:00 or 02:00 UTC.
	next := d.Schedule.Next(time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC))
	if got := next.UTC(); !got.Equal(time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)) {
		t.Errorf("next run %v, want 2026-12-01 02:00 UTC", got)
	}
}

func TestScheduleLimits(t *testing.T) {
	reg := scenarios.Registry(scenarios.Deps{})
	probe := `apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata: {name: probe}
spec:
  scenario: admission-probe
  schedule: "%s"
  objectives: {rto: 1m}
  target: {namespace: shop}
  params: {attempt: {image: registry.example/x:1}}
`
	cases := []struct {
		name, doc string
		ok        bool
	}{
		{"explicit override allows a fault every 10 minutes", mutate(`"CRON_TZ=Europe/Berlin 0 3 1 * *"`, "\"*/10 * * * *\"\n  minInterval: 10m"), true},
		{"hourly fault by default", mutate(`"CRON_TZ=Europe/Berlin 0 3 1 * *"`, `"@hourly"`), true},
		{"a read-only probe every 5 minutes", strings.Replace(probe, "%s", "*/5 * * * *", 1), true},
		{"a read-only probe every 30s still hammers", strings.Replace(probe, "%s", "@every 30s", 1), false},
		{"leap day only: fires within 5 years", mutate(`"CRON_TZ=Europe/Berlin 0 3 1 * *"`, `"0 3 29 2 *"`), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := drill.Parse("x.yaml", []byte(tc.doc), reg, drill.At(time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)))
			if (err == nil) != tc.ok {
				t.Errorf("ok %v, err %v", tc.ok, err)
			}
		})
	}
}

func TestParseDescriptorAndMultiDocument(t *testing.T) {
	second := strings.Replace(strings.Replace(valid, "ns-restore", "ns-restore-2", 1), `"CRON_TZ=Europe/Berlin 0 3 1 * *"`, "'@monthly'", 1)
	defs, err := drill.Parse("x.yaml", []byte(valid+"---\n"+second), scenarios.Registry(scenarios.Deps{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(defs) != 2 || defs[1].Name != "ns-restore-2" || defs[1].Schedule == nil {
		t.Fatalf("got %+v", defs)
	}
}

func TestLoadPathsAllOrNothing(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.yaml", valid)
	write("b.yaml", mutate("rto: 30m", "rto: 5x"))
	write("c.yaml", valid) // same name as a.yaml
	write("notes.txt", "ignored")
	defs, err := drill.LoadPaths([]string{dir}, scenarios.Registry(scenarios.Deps{}))
	if err == nil || defs != nil {
		t.Fatalf("want an error and no drills, got %d drills, err %v", len(defs), err)
	}
	for _, w := range []string{"b.yaml: spec.objectives.rto", "c.yaml: metadata.name: Duplicate", "also in " + filepath.Join(dir, "a.yaml")} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not mention %q:\n%v", w, err)
		}
	}
}

func TestShippedCatalogIsValid(t *testing.T) {
	defs, err := drill.LoadPaths([]string{"../../drills"}, scenarios.Registry(scenarios.Deps{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(defs) == 0 {
		t.Fatal("drills/ is empty")
	}
}

// A ConfigMap mounted as a volume (how the chart ships drills) holds each
// key as a symlink into ..data, itself a symlink to the ..<timestamp>
// directory the kubelet swaps in atomically. Each drill loads once.
func TestLoadPathsConfigMapVolume(t *testing.T) {
	dir := t.TempDir()
	ts := filepath.Join(dir, "..2026_11_25_08_30_19.4209920781")
	if err := os.Mkdir(ts, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ts, "a.yaml"), []byte(valid), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, l := range []struct{ target, name string }{{filepath.Base(ts), "..data"}, {"..data/a.yaml", "a.yaml"}} {
		if err := os.Symlink(l.target, filepath.Join(dir, l.name)); err != nil {
			t.Fatal(err)
		}
	}
	defs, err := drill.LoadPaths([]string{dir}, scenarios.Registry(scenarios.Deps{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(defs) != 1 || defs[0].Source != filepath.Join(dir, "a.yaml") {
		t.Fatalf("want a.yaml once, got %d drills: %+v", len(defs), defs)
	}
}

// A data check's pod template is decoded as Kubernetes' own type.
func TestParseDataCheck(t *testing.T) {
	doc := mutate("", "  verify:\n    job:\n      template:\n        spec:\n          containers:\n            - name: check\n              image: drillbot.local/sampleapp\n              args: [check, /data/records]\n")
	defs, err := drill.Parse("drills/x.yaml", []byte(doc), scenarios.Registry(scenarios.Deps{}), drill.Protect("drillbot-system", "velero"))
	if err != nil {
		t.Fatal(err)
	}
	c := defs[0].Spec.Verify.Job.Template.Spec.Containers[0]
	if c.Image != "drillbot.local/sampleapp" || strings.Join(c.Args, " ") != "check /data/records" {
		t.Errorf("container %+v", c)
	}
}
