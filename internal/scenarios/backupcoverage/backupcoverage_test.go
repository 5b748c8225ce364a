package backupcoverage

import (
	"context"
	"strings"
	"testing"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	nr "github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
)

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func ns(name string, env string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"env": env}}}
}

func schedule(name string, paused bool, tmpl velerov1.BackupSpec) velerov1.Schedule {
	return velerov1.Schedule{TypeMeta: metav1.TypeMeta{APIVersion: "velero.io/v1", Kind: "Schedule"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "velero"},
		Spec:       velerov1.ScheduleSpec{Schedule: "0 * * * *", Paused: paused, Template: tmpl}}
}

func backup(name, sched string, phase velerov1.BackupPhase, age time.Duration) velerov1.Backup {
	start := metav1.NewTime(now.Add(-age))
	return velerov1.Backup{TypeMeta: metav1.TypeMeta{APIVersion: "velero.io/v1", Kind: "Backup"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "velero", Labels: map[string]string{velerov1.ScheduleNameLabel: sched}},
		Spec:       velerov1.BackupSpec{StorageLocation: "default"},
		Status:     velerov1.BackupStatus{Phase: phase, StartTimestamp: &start}}
}

func withSpec(b velerov1.Backup, spec velerov1.BackupSpec) velerov1.Backup {
	spec.StorageLocation = b.Spec.StorageLocation
	b.Spec = spec
	return b
}

func location(name string, def bool, phase velerov1.BackupStorageLocationPhase) velerov1.BackupStorageLocation {
	return velerov1.BackupStorageLocation{TypeMeta: metav1.TypeMeta{APIVersion: "velero.io/v1", Kind: "BackupStorageLocation"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "velero"},
		Spec:       velerov1.BackupStorageLocationSpec{Default: def, Provider: "aws"}, Status: velerov1.BackupStorageLocationStatus{Phase: phase}}
}

// TestJudge: each broken promise is named per namespace; the RPO is the
// stalest namespace's.
func TestJudge(t *testing.T) {
	avail := []velerov1.BackupStorageLocation{location("default", true, velerov1.BackupStorageLocationPhaseAvailable),
		location("broken", false, velerov1.BackupStorageLocationPhaseUnavailable)}
	cases := []struct {
		name         string
		nss          []corev1.Namespace
		schedules    []velerov1.Schedule
		backups      []velerov1.Backup
		failures     []string
		findings     []string
		inconclusive string
		rpoFrom      string
		covered      int32 // of the namespaces
		accept       map[string]string
	}{
		{name: "covered and fresh", nss: []corev1.Namespace{*ns("shop", "production"), *ns("billing", "production")},
			schedules: []velerov1.Schedule{schedule("hourly", false, velerov1.BackupSpec{IncludedNamespaces: []string{"shop", "bill*"}})},
			backups: []velerov1.Backup{backup("hourly-2", "hourly", velerov1.BackupPhaseCompleted, 20*time.Minute),
				backup("hourly-1", "hourly", velerov1.BackupPhaseCompleted, 80*time.Minute),
				backup("hourly-3", "hourly", velerov1.BackupPhasePartiallyFailed, 5*time.Minute)},
			findings: []string{"namespace billing: schedule hourly, newest Completed backup hourly-2, 20m0s old", "backup coverage: 2 of 2 namespaces"}, rpoFrom: "hourly-2", covered: 2},
		{name: "uncovered", nss: []corev1.Namespace{*ns("shop", "production"), *ns("new-team", "production")},
			schedules: []velerov1.Schedule{schedule("hourly", false, velerov1.BackupSpec{IncludedNamespaces: []string{"shop"}})},
			backups:   []velerov1.Backup{backup("hourly-1", "hourly", velerov1.BackupPhaseCompleted, time.Minute)},
			failures:  []string{"namespace new-team: no unpaused Velero Schedule includes it"}, covered: 1},
		{name: "excluded and paused do not cover", nss: []corev1.Namespace{*ns("shop", "production")},
			schedules: []velerov1.Schedule{schedule("all", false, velerov1.BackupSpec{ExcludedNamespaces: []string{"shop"}}),
				schedule("paused", true, velerov1.BackupSpec{IncludedNamespaces: []string{"shop"}})},
			backups:  []velerov1.Backup{backup("paused-1", "paused", velerov1.BackupPhaseCompleted, time.Minute)},
			failures: []string{"namespace shop: no unpaused Velero Schedule includes it"}},
		{name: "stale", nss: []corev1.Namespace{*ns("shop", "production")},
			schedules: []velerov1.Schedule{schedule("daily", false, velerov1.BackupSpec{})},
			backups:   []velerov1.Backup{backup("daily-1", "daily", velerov1.BackupPhaseCompleted, 3*time.Hour)},
			failures:  []string{"namespace shop: newest Completed backup daily-1 started 3h0m0s ago, beyond the RPO target 1h0m0s"}, rpoFrom: "daily-1"},
		{name: "never completed", nss: []corev1.Namespace{*ns("shop", "production")},
			schedules: []velerov1.Schedule{schedule("hourly", false, velerov1.BackupSpec{})},
			backups:   []velerov1.Backup{backup("hourly-1", "hourly", velerov1.BackupPhaseFailed, time.Minute)},
			failures:  []string{"namespace shop: no Completed backup of schedule hourly"}},
		{name: "location down", nss: []corev1.Namespace{*ns("shop", "production")},
			schedules: []velerov1.Schedule{schedule("hourly", false, velerov1.BackupSpec{StorageLocation: "broken"})},
			backups:   []velerov1.Backup{backup("hourly-1", "hourly", velerov1.BackupPhaseCompleted, time.Minute)},
			failures:  []string{"namespace shop: storage location broken not Available"}, rpoFrom: "hourly-1"},
		// a partial schedule is no longer compliant
		// unless the drill accepts it by name (see TestCoverageEvidence).
		{name: "partial", nss: []corev1.Namespace{*ns("shop", "production")},
			schedules: []velerov1.Schedule{schedule("db-only", false, velerov1.BackupSpec{IncludedResources: []string{"persistentvolumeclaims"}})},
			backups:   []velerov1.Backup{backup("db-only-1", "db-only", velerov1.BackupPhaseCompleted, time.Minute)},
			failures:  []string{"namespace shop: schedule db-only leaves out: every resource but persistentvolumeclaims (includedResources)"}, rpoFrom: "db-only-1"},
		{name: "partial, accepted", nss: []corev1.Namespace{*ns("shop", "production")}, accept: map[string]string{"shop": "volumes only"},
			schedules: []velerov1.Schedule{schedule("db-only", false, velerov1.BackupSpec{IncludedResources: []string{"persistentvolumeclaims"}})},
			backups:   []velerov1.Backup{withSpec(backup("db-only-1", "db-only", velerov1.BackupPhaseCompleted, time.Minute), velerov1.BackupSpec{IncludedResources: []string{"persistentvolumeclaims"}})},
			findings:  []string{"namespace shop: schedule db-only leaves out: every resource but persistentvolumeclaims (includedResources); accepted (acceptPartial): volumes only"}, rpoFrom: "db-only-1", covered: 1},
		{name: "no namespace matches", inconclusive: "no namespace matches env=production: nothing to check"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := Inputs{Schedules: tc.schedules, Backups: tc.backups, Locations: avail, Accepted: tc.accept}
			for _, n := range tc.nss {
				in.Namespaces = append(in.Namespaces, Namespace{Name: n.Name, Created: n.CreationTimestamp})
			}
			v := Judge(Cover(in), "env=production", time.Hour, now)
			fails, finds := strings.Join(v.Failures, "\n"), strings.Join(v.Findings, "\n")
			if len(tc.failures) == 0 && fails != "" {
				t.Errorf("failures %q, want none", fails)
			}
			for _, w := range tc.failures {
				if !strings.Contains(fails, w) {
					t.Errorf("failures %q, want %q", fails, w)
				}
			}
			for _, w := range tc.findings {
				if !strings.Contains(finds, w) {
					t.Errorf("findings %q, want %q", finds, w)
				}
			}
			if v.Inconclusive == "" && (v.Posture == nil || v.Posture.Compliant != tc.covered || int(v.Posture.Total) != len(tc.nss)) {
				t.Errorf("posture %+v, want %d of %d namespaces", v.Posture, tc.covered, len(tc.nss))
			}
			if v.Inconclusive != tc.inconclusive {
				t.Errorf("inconclusive %q, want %q", v.Inconclusive, tc.inconclusive)
			}
			if tc.rpoFrom == "" {
				if v.DataTimestamp != nil && len(tc.failures) == 0 {
					t.Errorf("RPO measured from %s", v.RPOSource)
				}
			} else if v.DataTimestamp == nil || !strings.Contains(v.RPOSource, tc.rpoFrom) {
				t.Errorf("RPO from %q (%v), want the stalest namespace's %s", v.RPOSource, v.DataTimestamp, tc.rpoFrom)
			}
		})
	}
}

// TestCheckWritesNothing: the whole run against fakes makes only reads.
func TestCheckWritesNothing(t *testing.T) {
	kube := fake.NewClientset(ns("shop", "production"), ns("dev", "staging"))
	objs := []runtime.Object{}
	s, b, l := schedule("hourly", false, velerov1.BackupSpec{IncludedNamespaces: []string{"shop"}}),
		backup("hourly-1", "hourly", velerov1.BackupPhaseCompleted, time.Minute), location("default", true, velerov1.BackupStorageLocationPhaseAvailable)
	for _, o := range []any{&s, &b, &l} {
		u, err := nr.ToUnstructured(o)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, u)
	}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		nr.BackupsGVR: "BackupList", nr.SchedulesGVR: "ScheduleList", nr.BSLGVR: "BackupStorageLocationList", nr.RestoresGVR: "RestoreList"}, objs...)
	def := drill.Definition{Name: "cov", Spec: v1alpha1.DrillSpec{Scenario: Name, Objectives: v1alpha1.Objectives{RTO: "1m", RPO: "1h"},
		Params: []byte(`{"namespaces":{"matchLabels":{"env":"production"}}}`)}}
	def.FromSpec()
	sc, err := Kind{Deps: Deps{Kube: kube, Dynamic: dyn, Clock: clocktesting.NewFakePassiveClock(now)}}.New(def, "run-1")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := sc.Preflight(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sc.Inject(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := sc.Recover(ctx, marks{}); err != nil {
		t.Fatal(err)
	}
	v, err := sc.Verify(ctx)
	if err != nil || len(v.Failures) != 0 || !strings.Contains(strings.Join(v.Findings, " "), "namespace shop: schedule hourly") ||
		strings.Contains(strings.Join(v.Findings, " "), "dev") {
		t.Fatalf("verification %+v (%v)", v, err)
	}
	for _, a := range append(kube.Actions(), dyn.Actions()...) {
		if a.GetVerb() != "list" {
			t.Errorf("the check did %s %s", a.GetVerb(), a.GetResource().Resource)
		}
	}
}

type marks struct{}

func (marks) Mark(string) {}
