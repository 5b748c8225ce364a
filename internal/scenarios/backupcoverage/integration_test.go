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
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	nr "github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
	"github.com/drillbot-io/drillbot/test/localcluster"
	"github.com/drillbot-io/drillbot/test/testharness"
)

var cluster *localcluster.Cluster

func TestMain(m *testing.M) { os.Exit(localcluster.RunTests(m, &cluster)) }

// coverageDrill is a backup-coverage drill of the namespaces labelled env;
// each of params is one more line of its params (YAML).
func coverageDrill(h *testharness.Harness, env, rpo string, params ...string) string {
	doc := fmt.Sprintf(`apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata: {name: coverage-%s}
spec:
  scenario: backup-coverage
  objectives: {rto: 1m, rpo: %s}
  params:
    namespaces: {matchLabels: {env: %s}}
`, env, rpo, env)
	for _, p := range params {
		doc += "    " + p + "\n"
	}
	return doc
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
	sched, backup := scheduledBackup(t, "hourly-"+env, velerov1.BackupSpec{IncludedNamespaces: []string{shop, billing}, StorageLocation: "default"})

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

	// What a restore drill leaves: shop deleted and made again by a real
	// Velero restore from the backup, so newer than the backup that holds
	// it. That backup still counts (not a FAIL after every restore drill),
	// named with the restore that made the namespace.
	t.Run("restored from its backup", func(t *testing.T) {
		if err := cluster.Kube.CoreV1().Namespaces().Delete(ctx, shop, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
			_, err := cluster.Kube.CoreV1().Namespaces().Get(ctx, shop, metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		}); err != nil {
			t.Fatalf("namespace %s not gone: %v", shop, err)
		}
		restore := "restore-" + env
		create(t, nr.RestoresGVR, &velerov1.Restore{TypeMeta: metav1.TypeMeta{APIVersion: velerov1.SchemeGroupVersion.String(), Kind: "Restore"},
			ObjectMeta: metav1.ObjectMeta{Name: restore, Namespace: cluster.VeleroNamespace},
			Spec:       velerov1.RestoreSpec{BackupName: backup, IncludedNamespaces: []string{shop}}})
		r, err := cluster.WaitRestore(ctx, restore)
		if err != nil || r.Status.Phase != velerov1.RestorePhaseCompleted {
			t.Fatalf("restore %s: %s (%v)", restore, r.Status.Phase, err)
		}
		made, err := cluster.Kube.CoreV1().Namespaces().Get(ctx, shop, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var managers []string
		for _, m := range made.ManagedFields {
			managers = append(managers, m.Manager)
		}
		t.Logf("restore %s ran %s to %s; namespace %s created %s, written by %v", restore, r.Status.StartTimestamp.UTC().Format(time.RFC3339),
			r.Status.CompletionTimestamp.UTC().Format(time.RFC3339), shop, made.CreationTimestamp.UTC().Format(time.RFC3339), managers)
		h := testharness.New(t, cluster)
		run := h.Run(h.Drill(coverageDrill(h, env, "1h")))
		findings := strings.Join(run.Status.Findings, "\n")
		if run.Status.Verdict != v1alpha1.VerdictPass || !strings.Contains(findings, "namespace "+shop+": backup "+backup+" started before the namespace was created") ||
			!strings.Contains(findings, "counted: Velero restore "+restore+" made the namespace from it") {
			t.Fatalf("verdict %s: %s; findings:\n%s\nwant PASS on %s, made by %s", run.Status.Verdict, run.Status.Reason, findings, backup, restore)
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

// TestPartialBackup: a real Schedule and backup that
// leave out the namespace's Secrets make it uncompliant, naming what is
// left out; the same, accepted by name in the drill, PASS with the reason
// in the findings. Velero's own exclusions (CSI snapshot objects) in the
// real backup's spec are no gap.
func TestPartialBackup(t *testing.T) {
	localcluster.Require(t, cluster)
	env := "cfg-" + localcluster.RandomSuffix()
	cfg := "config-" + env
	testharness.Namespace(t, cluster, cfg, map[string]string{"env": env})
	sched, backup := scheduledBackup(t, "nosecrets-"+env, velerov1.BackupSpec{IncludedNamespaces: []string{cfg}, ExcludedResources: []string{"secrets"}, StorageLocation: "default"})

	t.Run("FAIL: leaves out Secrets", func(t *testing.T) {
		h := testharness.New(t, cluster)
		run := h.Run(h.Drill(coverageDrill(h, env, "1h")))
		if run.Status.Verdict != v1alpha1.VerdictFail ||
			!strings.Contains(run.Status.Reason, "namespace "+cfg+": newest Completed backup "+backup+" leaves out: secrets (excludedResources);") ||
			!strings.Contains(run.Status.Reason, "namespace "+cfg+": schedule "+sched.Name+" leaves out: secrets (excludedResources)") {
			t.Fatalf("verdict %s: %s, want FAIL naming the Secrets left out", run.Status.Verdict, run.Status.Reason)
		}
		if w := h.TargetWrites(); len(w) > 0 {
			t.Errorf("the check wrote: %v", w)
		}
	})

	t.Run("PASS: accepted by name", func(t *testing.T) {
		h := testharness.New(t, cluster)
		run := h.Run(h.Drill(coverageDrill(h, env, "1h", "acceptPartial: [{namespace: "+cfg+", reason: \"its Secrets come from the vault\"}]")))
		if run.Status.Verdict != v1alpha1.VerdictPass {
			t.Fatalf("verdict %s: %s", run.Status.Verdict, run.Status.Reason)
		}
		findings := strings.Join(run.Status.Findings, "\n")
		if !strings.Contains(findings, "namespace "+cfg+": backup "+backup+" leaves out: secrets (excludedResources); accepted (acceptPartial): its Secrets come from the vault") {
			t.Errorf("findings %q do not name what is left out and why it is accepted", findings)
		}
	})
}

// TestAnotherClustersBackup: a DR cluster reads the
// source's bucket through a ReadOnly storage location, and has a Schedule
// of the same name including a namespace of the same name. The source's
// backup, synced into the DR cluster, is not the DR cluster's evidence:
// FAIL, naming it as not counted.
func TestAnotherClustersBackup(t *testing.T) {
	localcluster.Require(t, cluster)
	ctx := context.Background()
	dr := localcluster.Another(t, localcluster.Config{S3URL: cluster.S3URL, ReadOnlyBSL: true})
	env := "prod-" + localcluster.RandomSuffix()
	shop := "shop-" + env
	testharness.Namespace(t, cluster, shop, map[string]string{"env": env})
	testharness.Namespace(t, dr, shop, map[string]string{"env": env})
	schedName := "hourly-" + env
	backup := schedName + "-" + time.Now().UTC().Format("20060102150405")
	create(t, nr.BackupsGVR, &velerov1.Backup{TypeMeta: metav1.TypeMeta{APIVersion: velerov1.SchemeGroupVersion.String(), Kind: "Backup"},
		ObjectMeta: metav1.ObjectMeta{Name: backup, Namespace: cluster.VeleroNamespace, Labels: map[string]string{velerov1.ScheduleNameLabel: schedName}},
		Spec:       velerov1.BackupSpec{IncludedNamespaces: []string{shop}, StorageLocation: "default"}})
	if b, err := cluster.WaitBackup(ctx, backup); err != nil || b.Status.Phase != velerov1.BackupPhaseCompleted {
		t.Fatalf("source backup %s: %s (%v)", backup, b.Status.Phase, err)
	}
	createIn(t, dr, nr.SchedulesGVR, &velerov1.Schedule{TypeMeta: metav1.TypeMeta{APIVersion: velerov1.SchemeGroupVersion.String(), Kind: "Schedule"},
		ObjectMeta: metav1.ObjectMeta{Name: schedName, Namespace: dr.VeleroNamespace},
		Spec:       velerov1.ScheduleSpec{Schedule: "0 * * * *", Template: velerov1.BackupSpec{IncludedNamespaces: []string{shop}}}})
	if b, err := dr.WaitBackup(ctx, backup); err != nil || b.Status.Phase != velerov1.BackupPhaseCompleted {
		t.Fatalf("synced backup %s in the DR cluster: %s (%v)", backup, b.Status.Phase, err)
	}
	h := testharness.New(t, dr)
	run := h.Run(h.Drill(coverageDrill(h, env, "1h")))
	for _, want := range []string{
		"namespace " + shop + ": no Completed backup of schedule " + schedName + " (nor any other) in this cluster's storage locations holds it; not counted: " +
			backup + " (storage location default is ReadOnly: another cluster's)",
		"namespace " + shop + ": schedule " + schedName + " writes to storage location default, which is ReadOnly",
	} {
		if run.Status.Verdict != v1alpha1.VerdictFail || !strings.Contains(run.Status.Reason, want) {
			t.Errorf("verdict %s: %s, want FAIL with %q", run.Status.Verdict, run.Status.Reason, want)
		}
	}
	if w := h.TargetWrites(); len(w) > 0 {
		t.Errorf("the check wrote: %v", w)
	}
}

// scheduledBackup creates a real Schedule with template and a backup of it
// as `velero backup create --from-schedule` makes one (its template, its
// schedule label), and waits until Velero completed it: Velero's schedule
// controller would take the next at the full hour.
func scheduledBackup(t *testing.T, name string, template velerov1.BackupSpec) (sched *velerov1.Schedule, backup string) {
	t.Helper()
	sched = &velerov1.Schedule{TypeMeta: metav1.TypeMeta{APIVersion: velerov1.SchemeGroupVersion.String(), Kind: "Schedule"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: cluster.VeleroNamespace},
		Spec:       velerov1.ScheduleSpec{Schedule: "0 * * * *", Template: template}}
	create(t, nr.SchedulesGVR, sched)
	backup = sched.Name + "-" + time.Now().UTC().Format("20060102150405")
	create(t, nr.BackupsGVR, &velerov1.Backup{TypeMeta: metav1.TypeMeta{APIVersion: velerov1.SchemeGroupVersion.String(), Kind: "Backup"},
		ObjectMeta: metav1.ObjectMeta{Name: backup, Namespace: cluster.VeleroNamespace, Labels: map[string]string{velerov1.ScheduleNameLabel: sched.Name}},
		Spec:       sched.Spec.Template})
	if b, err := cluster.WaitBackup(context.Background(), backup); err != nil || b.Status.Phase != velerov1.BackupPhaseCompleted {
		t.Fatalf("backup %s: %s (%v)", backup, b.Status.Phase, err)
	}
	return sched, backup
}

// TestVolumeDataNotBackedUp: a namespace whose PVC holds data, backed up
// by the real Velero (Completed) with no volume snapshotter and no
// file-system backup here: Velero's own record of the backup's volumes
// says the data was skipped, and the check FAILs naming the PVC, its size
// and why. Its only write is the DownloadRequest that reads that record.
func TestVolumeDataNotBackedUp(t *testing.T) {
	localcluster.Require(t, cluster)
	env := "vol-" + localcluster.RandomSuffix()
	db := "db-" + env
	testharness.Namespace(t, cluster, db, map[string]string{"env": env})
	testharness.BoundVolume(t, cluster, db, "orders", []byte("order 1\n"))
	_, backup := scheduledBackup(t, "hourly-"+env, velerov1.BackupSpec{IncludedNamespaces: []string{db}, StorageLocation: "default"})

	h := testharness.New(t, cluster)
	run := h.Run(h.Drill(coverageDrill(h, env, "1h")))
	want := "namespace " + db + ": newest Completed backup " + backup + " leaves out: the data of PVC orders (1Gi): Velero skipped its data"
	if run.Status.Verdict != v1alpha1.VerdictFail || !strings.Contains(run.Status.Reason, want) {
		t.Fatalf("verdict %s: %s\nwant FAIL: %s", run.Status.Verdict, run.Status.Reason, want)
	}
	for _, w := range h.TargetWrites() {
		if w != "POST /apis/velero.io/v1/namespaces/"+cluster.VeleroNamespace+"/downloadrequests" {
			t.Errorf("the check wrote more than its DownloadRequest: %s", w)
		}
	}
}

func create(t *testing.T, gvr schema.GroupVersionResource, obj any) {
	t.Helper()
	createIn(t, cluster, gvr, obj)
}

func createIn(t *testing.T, c *localcluster.Cluster, gvr schema.GroupVersionResource, obj any) {
	t.Helper()
	u, err := nr.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Dynamic.Resource(gvr).Namespace(c.VeleroNamespace).Create(context.Background(), u, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}
