package backupcoverage_test

// Integration tests: the backup-coverage check against the local cluster's
// real Velero: a real Schedule, a real backup of it, and namespaces that
// are and are not covered.

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/localcluster"
	nr "github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
	"github.com/drillbot-io/drillbot/internal/testharness"
)

var cluster *localcluster.Cluster

func TestMain(m *testing.M) { os.Exit(localcluster.RunTests(m, &cluster)) }

func coverageDrill(h *testharness.Harness, env, rpo string) string {
	return fmt.Sprintf(`apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata: {name: coverage-%s}
spec:
  scenario: backup-coverage
  objectives: {rto: 1m, rpo: %s}
  params: {namespaces: {matchLabels: {env: %s}}}
`, env, rpo, env)
}

// TestBackupCoverage: covered and fresh (PASS), a namespace no Schedule
// includes (FAIL naming it), the same backups against a tighter RPO (FAIL,
// stale), and never a write.
func TestBackupCoverage(t *testing.T) {
	localcluster.Require(t, cluster)
	ctx := context.Background()
	env := "prod-" + localcluster.RandomSuffix()
	shop, billing := "shop-"+env, "billing-"+env
	for _, n := range []string{shop, billing} {
		testharness.Namespace(t, cluster, n, map[string]string{"env": env})
	}
	// A real Schedule, and a backup of it as `velero backup create
	// --from-schedule` makes one (its template, its schedule label):
	// Velero's schedule controller would take the next at the full hour.
	sched := &velerov1.Schedule{TypeMeta: metav1.TypeMeta{APIVersion: velerov1.SchemeGroupVersion.String(), Kind: "Schedule"},
		ObjectMeta: metav1.ObjectMeta{Name: "hourly-" + env, Namespace: cluster.VeleroNamespace},
		Spec: velerov1.ScheduleSpec{Schedule: "0 * * * *",
			Template: velerov1.BackupSpec{IncludedNamespaces: []string{shop, billing}, StorageLocation: "default"}}}
	create(t, nr.SchedulesGVR, sched)
	backup := sched.Name + "-" + time.Now().UTC().Format("20060102150405")
	create(t, nr.BackupsGVR, &velerov1.Backup{TypeMeta: metav1.TypeMeta{APIVersion: velerov1.SchemeGroupVersion.String(), Kind: "Backup"},
		ObjectMeta: metav1.ObjectMeta{Name: backup, Namespace: cluster.VeleroNamespace, Labels: map[string]string{velerov1.ScheduleNameLabel: sched.Name}},
		Spec:       sched.Spec.Template})
	if b, err := cluster.WaitBackup(ctx, backup); err != nil || b.Status.Phase != velerov1.BackupPhaseCompleted {
		t.Fatalf("backup %s: %s (%v)", backup, b.Status.Phase, err)
	}

	t.Run("PASS", func(t *testing.T) {
		h := testharness.New(t, cluster)
		run := h.Run(h.Drill(coverageDrill(h, env, "1h")))
		if run.Status.Verdict != v1alpha1.VerdictPass {
			t.Fatalf("verdict %s: %s", run.Status.Verdict, run.Status.Reason)
		}
		if run.Status.RPO == "" || !strings.Contains(run.Status.RPOSource, backup) {
			t.Errorf("RPO %q from %q, want measured from %s", run.Status.RPO, run.Status.RPOSource, backup)
		}
		findings := strings.Join(run.Status.Findings, "\n")
		for _, n := range []string{shop, billing} {
			if !strings.Contains(findings, "namespace "+n+": schedule "+sched.Name+", newest Completed backup "+backup) {
				t.Errorf("findings %q do not account for %s", findings, n)
			}
		}
		if w := h.TargetWrites(); len(w) > 0 {
			t.Errorf("the check wrote: %v", w)
		}
	})

	t.Run("stale", func(t *testing.T) {
		time.Sleep(2 * time.Second)
		h := testharness.New(t, cluster)
		run := h.Run(h.Drill(coverageDrill(h, env, "1s")))
		if run.Status.Verdict != v1alpha1.VerdictFail || !strings.Contains(run.Status.Reason, "namespace "+shop+": newest Completed backup "+backup) ||
			!strings.Contains(run.Status.Reason, "beyond the RPO target 1s") {
			t.Fatalf("verdict %s: %s, want FAIL naming the stale namespaces", run.Status.Verdict, run.Status.Reason)
		}
	})

	t.Run("uncovered namespace", func(t *testing.T) {
		newTeam := "new-team-" + env
		testharness.Namespace(t, cluster, newTeam, map[string]string{"env": env})
		h := testharness.New(t, cluster)
		run := h.Run(h.Drill(coverageDrill(h, env, "1h")))
		if run.Status.Verdict != v1alpha1.VerdictFail || !strings.Contains(run.Status.Reason, "namespace "+newTeam+": no unpaused Velero Schedule includes it") {
			t.Fatalf("verdict %s: %s, want FAIL naming %s", run.Status.Verdict, run.Status.Reason, newTeam)
		}
		if w := h.TargetWrites(); len(w) > 0 {
			t.Errorf("the check wrote: %v", w)
		}
	})
}

func create(t *testing.T, gvr schema.GroupVersionResource, obj any) {
	t.Helper()
	u, err := nr.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.Dynamic.Resource(gvr).Namespace(cluster.VeleroNamespace).Create(context.Background(), u, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}
