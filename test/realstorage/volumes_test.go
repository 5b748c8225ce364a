package realstorage_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
	"github.com/drillbot-io/drillbot/test/localcluster"
	"github.com/drillbot-io/drillbot/test/testharness"
)

// TestNamespaceRestoreBringsVolumeDataBack: a Deployment's pod writes to a
// local volume; Velero backs the volume's data up (file-system backup by
// the node-agent, opted in by the pod's annotation); namespace-restore
// deletes the namespace (the volume is Released, its data kept on the
// host but no longer the claim's), restores it, and the claim comes back
// bound to another volume with the same bytes, copied from the backup by
// Velero's data mover. Without a data check the drill is INCONCLUSIVE: a
// claim Bound and its PodVolumeRestore Completed are not proof of the
// data; the test reads the bytes themselves.
func TestNamespaceRestoreBringsVolumeDataBack(t *testing.T) {
	ctx := context.Background()
	h := testharness.New(t, cluster)
	ns := "rs-vol-" + localcluster.RandomSuffix()
	testharness.Namespace(t, cluster, ns, testharness.OptIn)
	data := make([]byte, 1<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	dir := localVolume(t, "pv-"+ns+"-data", ns, "data")
	if err := os.WriteFile(filepath.Join(dir, "orders"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	// The volume the restored claim will bind: empty until Velero copies
	// the backup's data into it.
	spare := localVolume(t, "pv-"+ns+"-spare", "", "")
	dataClaim(t, ns, "pv-"+ns+"-data")
	dbApp(t, ns, true)
	b := takeBackup(t, ns)

	run := h.Run(h.Drill(restoreDrill(ns, b.Name, "")))

	st := run.Status
	if st.Verdict != v1alpha1.VerdictInconclusive || !strings.Contains(st.Reason, "the data of 1 restored volumes was not read") {
		t.Fatalf("verdict %s: %s, want INCONCLUSIVE: no data check read the data\n%s", st.Verdict, st.Reason, testharness.Story(st))
	}
	if m := testharness.Milestones(st); !strings.Contains(m, "volumes-restored") {
		t.Errorf("milestones %s, want volumes-restored", m)
	}
	if f := strings.Join(st.Findings, "\n"); !strings.Contains(f, "1 of 1 bound PVCs have their data in backup "+b.Name) {
		t.Errorf("findings %q, want the volume held", f)
	}
	pvc, err := cluster.Kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data", metav1.GetOptions{})
	if err != nil || pvc.Spec.VolumeName != "pv-"+ns+"-spare" {
		t.Fatalf("restored claim %v (%v), want it bound to the spare volume", pvc.Spec.VolumeName, err)
	}
	got, err := os.ReadFile(filepath.Join(spare, "orders"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("restored volume holds %d bytes (%v), want the %d bytes backed up", len(got), err, len(data))
	}
}

// localVolume makes a local volume on the real node, bound to claim ns/claim
// when claim is set, removed when the test ends.
func localVolume(t *testing.T, name, ns, claim string) string {
	t.Helper()
	dir, err := cluster.LocalVolume(context.Background(), name, "1Gi", ns, claim)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cluster.Kube.CoreV1().PersistentVolumes().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return dir
}

func waitReady(t *testing.T, ns, name string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), time.Second, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		d, err := cluster.Kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		return err == nil && d.Status.ReadyReplicas == 1 && d.Status.UpdatedReplicas == 1, nil
	})
	if err != nil {
		t.Fatalf("deployment %s/%s not Ready: %v", ns, name, err)
	}
}

// dbApp runs the sample app as Deployment "db" in ns behind Service db
// (port http), mounting the claim "data" at /data, the volume opted in to
// file-system backup when backedUp, with env; it waits until it is Ready.
func dbApp(t *testing.T, ns string, backedUp bool, env ...corev1.EnvVar) {
	t.Helper()
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "db"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "db"},
		Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}}}
	if _, err := cluster.Kube.CoreV1().Services(ns).Create(context.Background(), svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tpl := localcluster.SampleApp(map[string]string{"app": "db"})
	if backedUp {
		tpl.Annotations = map[string]string{"backup.velero.io/backup-volumes": "data"}
	}
	tpl.Spec.Volumes = append(tpl.Spec.Volumes, corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}})
	app := &tpl.Spec.Containers[0]
	app.VolumeMounts = append(app.VolumeMounts, corev1.VolumeMount{Name: "data", MountPath: "/data"})
	app.Env = append(app.Env, env...)
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}, Template: tpl}}
	if _, err := cluster.Kube.AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitReady(t, ns, "db")
}

// statefulApp runs the sample app as a stateful one (dbApp): a record
// appended to /data/records every second. It waits until it has written a
// few records.
func statefulApp(t *testing.T, ns, dir string, backedUp bool) {
	t.Helper()
	dbApp(t, ns, backedUp, corev1.EnvVar{Name: "RECORDS", Value: "/data/records"})
	waitRecords(t, dir)
}

// waitRecords waits until the sample app has written a few records in dir.
func waitRecords(t *testing.T, dir string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), time.Second, time.Minute, true, func(context.Context) (bool, error) {
		b, _ := os.ReadFile(filepath.Join(dir, "records"))
		// Records from before the backup's start, less the http check's
		// margin for the app's clock, to compare.
		return bytes.Count(b, []byte("\n")) >= 6, nil
	})
	if err != nil {
		t.Fatalf("the app wrote no records in %s: %v", dir, err)
	}
}

// dynamicClaim makes the claim "data" in ns, of the node's dynamic
// provisioner: its volume is made when its first pod is scheduled.
func dynamicClaim(t *testing.T, ns string) {
	t.Helper()
	claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: ptr.To(localcluster.LocalPathStorageClass),
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
	if _, err := cluster.Kube.CoreV1().PersistentVolumeClaims(ns).Create(context.Background(), claim, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// claimVolume is the volume the claim ns/name is bound to, and its
// directory on the node.
func claimVolume(t *testing.T, ns, name string) (*corev1.PersistentVolume, string) {
	t.Helper()
	ctx := context.Background()
	pvc, err := cluster.Kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil || pvc.Spec.VolumeName == "" {
		t.Fatalf("claim %s/%s: not bound (%v)", ns, name, err)
	}
	pv, err := cluster.Kube.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case pv.Spec.HostPath != nil:
		return pv, pv.Spec.HostPath.Path
	case pv.Spec.Local != nil:
		return pv, pv.Spec.Local.Path
	}
	t.Fatalf("volume %s is neither hostPath nor local", pv.Name)
	return nil, ""
}

// dataClaim makes the claim "data" in ns, bound to the local volume pv.
func dataClaim(t *testing.T, ns, pv string) {
	t.Helper()
	claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: ptr.To(localcluster.LocalStorageClass), VolumeName: pv,
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
	if _, err := cluster.Kube.CoreV1().PersistentVolumeClaims(ns).Create(context.Background(), claim, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// checkDrill is a namespace-restore drill of ns from backup with the
// sample app's own data check (sampleapp check) in spec.verify, and extra
// params.
func checkDrill(t *testing.T, ns, backup, params string) string {
	t.Helper()
	tpl := localcluster.SampleApp(nil)
	c := &tpl.Spec.Containers[0]
	c.Name, c.ReadinessProbe, c.Args = "check", nil, []string{"check", "/data/records"}
	c.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data", ReadOnly: true}}
	tpl.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data", ReadOnly: true}}}}
	tpl.Labels = nil
	js, err := json.Marshal(tpl)
	if err != nil {
		t.Fatal(err)
	}
	return restoreDrill(ns, backup, fmt.Sprintf("%s  verify:\n    job:\n      template: %s\n%s", params, js, httpCheck))
}

// httpCheck asks the sample app's /newest through Service db.
const httpCheck = "    http: {service: db, port: http, path: /newest}\n"

// restoreDrill is a namespace-restore drill of ns from backup; tail goes
// after its backup param (more params, then more of spec).
func restoreDrill(ns, backup, tail string) string {
	return fmt.Sprintf(`apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata:
  name: %s
spec:
  scenario: namespace-restore
  objectives: {rto: 5m, rpo: 1h}
  timeouts: {recover: 4m, revert: 3m}
  target: {namespace: %s}
  params:
    backup: {name: %s}
%s`, ns, ns, backup, tail)
}

func takeBackup(t *testing.T, ns string) velerov1.Backup {
	t.Helper()
	b, err := cluster.Backup(context.Background(), ns+"-1", ns)
	if err == nil {
		b, err = cluster.WaitBackup(context.Background(), b.Name)
	}
	if err != nil || b.Status.Phase != velerov1.BackupPhaseCompleted {
		t.Fatalf("backup %s: %s (%v)", b.Name, b.Status.Phase, err)
	}
	return b
}

// TestDataCheckMeasuresRPOFromTheRestoredData: a stateful app appends a
// chained record every second; Velero backs its volume up; the drill
// deletes the namespace, restores it, and its data check (the app's own
// checker, run as a Job on the restored claim) verifies the chain and
// names the newest record before the disaster. The restored app goes on
// writing records after the restore, newer than the disaster: the check
// must not take them for restored data. The RPO is the disaster minus the
// newest record the backup held, read here from the restored volume too.
func TestDataCheckMeasuresRPOFromTheRestoredData(t *testing.T) {
	ctx := context.Background()
	h := testharness.New(t, cluster)
	ns := "rs-chk-" + localcluster.RandomSuffix()
	testharness.Namespace(t, cluster, ns, testharness.OptIn)
	dir := localVolume(t, "pv-"+ns+"-data", ns, "data")
	spare := localVolume(t, "pv-"+ns+"-spare", "", "")
	dataClaim(t, ns, "pv-"+ns+"-data")
	statefulApp(t, ns, dir, true)
	// drillbot's RBAC first: the check's Role in the namespace comes back
	// only with a backup that holds it.
	def := h.Drill(checkDrill(t, ns, ns+"-1", ""))
	h.ServiceAccount(ctx, def)
	b := takeBackup(t, ns)

	run := h.Run(def)
	st := run.Status
	if st.Verdict != v1alpha1.VerdictPass {
		t.Fatalf("verdict %s: %s\n%s", st.Verdict, st.Reason, testharness.Story(st))
	}
	if m := testharness.Milestones(st); !strings.Contains(m, "volumes-restored") || !strings.Contains(m, "data-verified") {
		t.Errorf("milestones %s, want volumes-restored then data-verified", m)
	}
	if !strings.Contains(st.RPOSource, "data check") {
		t.Errorf("RPO source %q, want the data check", st.RPOSource)
	}
	f := strings.Join(st.Findings, "\n")
	if !strings.Contains(f, "passed (container check exited 0)") || !strings.Contains(f, "chain intact") {
		t.Errorf("findings %q, want the check's answer", f)
	}
	if !strings.Contains(f, "http data check http://db."+ns+":http/newest passed: as of ") || !strings.Contains(f, "(backup "+b.Name+"'s start, less 2s for clocks)") {
		t.Errorf("findings %q, want the http check's answer", f)
	}
	// What the restored volume holds: the backup's records, then the
	// restored app's, newer than the disaster.
	recs := records(t, filepath.Join(spare, "records"))
	var newest time.Time
	after := 0
	for _, at := range recs {
		if at.After(st.DisasterAt.Time) {
			after++
		} else {
			newest = at
		}
	}
	if newest.IsZero() || after == 0 {
		t.Fatalf("restored volume: newest record before the disaster %v, %d after: want both", newest, after)
	}
	if newest.After(b.Status.CompletionTimestamp.Time) {
		t.Errorf("newest restored record %v is after backup %s completed (%v): not from the backup", newest, b.Name, b.Status.CompletionTimestamp)
	}
	rpo, err := time.ParseDuration(st.RPO)
	if want := st.DisasterAt.Sub(newest); err != nil || (rpo-want).Abs() > time.Second {
		t.Errorf("RPO %s (%v), want the disaster minus the newest restored record, %s", st.RPO, err, want)
	}
	if _, err := cluster.Kube.BatchV1().Jobs(ns).Get(ctx, namespacerestore.DataCheckJobName(run.Name), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the check's Job is left behind (%v)", err)
	}
}

// TestDataCheckFailsAVolumeThatCameBackEmpty: the volume is not backed up
// and the drill accepts its loss, but checks the data: the restored claim
// binds an empty volume, the restored app starts a new chain, and every
// record it holds is newer than the disaster. Workloads Ready, Velero
// Completed, every object back: the data check alone says FAIL. The
// volume's reclaim policy is Delete, as a provisioner's usually is: Velero
// then restores the claim unbound, for a new volume (with Retain it keeps
// the claim on the old, Released volume, where it stays Pending).
func TestDataCheckFailsAVolumeThatCameBackEmpty(t *testing.T) {
	ctx := context.Background()
	h := testharness.New(t, cluster)
	ns := "rs-empty-" + localcluster.RandomSuffix()
	testharness.Namespace(t, cluster, ns, testharness.OptIn)
	dir := localVolume(t, "pv-"+ns+"-data", ns, "data")
	if _, err := cluster.Kube.CoreV1().PersistentVolumes().Patch(ctx, "pv-"+ns+"-data", types.MergePatchType,
		[]byte(`{"spec":{"persistentVolumeReclaimPolicy":"Delete"}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	localVolume(t, "pv-"+ns+"-spare", "", "")
	dataClaim(t, ns, "pv-"+ns+"-data")
	statefulApp(t, ns, dir, false)
	def := h.Drill(checkDrill(t, ns, ns+"-1", "    volumes: {accept: [data]}\n"))
	h.ServiceAccount(ctx, def)
	takeBackup(t, ns)

	run := h.Run(def)
	st := run.Status
	if st.Verdict != v1alpha1.VerdictFail || !strings.Contains(st.Reason, "the restored data failed the check") {
		t.Fatalf("verdict %s: %s, want FAIL by the data check\n%s", st.Verdict, st.Reason, testharness.Story(st))
	}
	if !strings.Contains(st.Reason, "the restored data differs from what it held before the disaster") || !strings.Contains(st.Reason, "newest none, was") {
		t.Errorf("reason %q, want the http check's FAIL too: no record before the backup's start came back", st.Reason)
	}
	if !strings.Contains(st.Reason, "none was restored") && !strings.Contains(st.Reason, "no record") && !strings.Contains(st.Reason, "no such file") {
		t.Errorf("reason %q, want the check's own words", st.Reason)
	}
}

// records reads the sample app's records file: each record's time.
func records(t *testing.T, path string) []time.Time {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []time.Time
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 {
			continue // a torn last line
		}
		at, err := time.Parse(time.RFC3339Nano, f[1])
		if err != nil {
			t.Fatalf("%s: %q: %v", path, l, err)
		}
		out = append(out, at)
	}
	return out
}

// TestVolumeNotOptedInIsRefusedUntouched: with the node-agent running, a
// pod whose volume is not opted in to file-system backup: Velero backs up
// the objects and skips the data, and the drill refuses before its first
// write, naming the claim and Velero's reason; the namespace, the claim
// and the bytes on the volume are untouched.
func TestVolumeNotOptedInIsRefusedUntouched(t *testing.T) {
	ctx := context.Background()
	h := testharness.New(t, cluster)
	ns := "rs-skip-" + localcluster.RandomSuffix()
	before := testharness.Namespace(t, cluster, ns, testharness.OptIn)
	dir := localVolume(t, "pv-"+ns+"-data", ns, "data")
	dataClaim(t, ns, "pv-"+ns+"-data")
	statefulApp(t, ns, dir, false)
	def := h.Drill(checkDrill(t, ns, ns+"-1", ""))
	takeBackup(t, ns)
	kept := recordsCount(t, dir)

	run := h.Run(def)
	st := run.Status
	if st.Verdict != v1alpha1.VerdictFail || !strings.Contains(st.Reason, "does not hold the data of PVC data (1Gi)") || len(st.Journal) > 0 {
		t.Fatalf("verdict %s: %s (journal %v), want refused before any write naming PVC data", st.Verdict, st.Reason, st.Journal)
	}
	// Velero's own reason, with the node-agent running (opt-in mode).
	if !strings.Contains(st.Reason, "podvolume: opted out") {
		t.Errorf("reason %q, want Velero's: the volume was not opted in", st.Reason)
	}
	after, err := cluster.Kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil || after.UID != before.UID || after.DeletionTimestamp != nil {
		t.Fatalf("namespace touched: %v", err)
	}
	pvc, err := cluster.Kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data", metav1.GetOptions{})
	if err != nil || pvc.Spec.VolumeName != "pv-"+ns+"-data" || pvc.Status.Phase != corev1.ClaimBound {
		t.Fatalf("claim touched: %v", err)
	}
	// The app goes on appending: the records written before the drill are
	// all still there, and the chain goes on.
	if n := recordsCount(t, dir); n < kept {
		t.Errorf("the volume holds %d records, %d before the drill", n, kept)
	}
}

func recordsCount(t *testing.T, dir string) int {
	t.Helper()
	return len(records(t, filepath.Join(dir, "records")))
}

// TestDynamicVolumeDataComesBack: the claim's volume is made by the node's
// dynamic provisioner (rancher/local-path-provisioner), as a cloud disk
// would be, with reclaim policy Delete: deleting the namespace deletes the
// claim, the volume and its directory on the node. Velero restores the
// claim unbound, the provisioner makes a new volume for it when the
// restored pod is scheduled, and the node-agent copies the backup's data
// into it. The drill's checks (the app's checker as a Job, and the app
// asked over HTTP) read the data: PASS, with the RPO from the data; the
// test reads the new volume's records.
func TestDynamicVolumeDataComesBack(t *testing.T) {
	ctx := context.Background()
	h := testharness.New(t, cluster)
	ns := "rs-dyn-" + localcluster.RandomSuffix()
	testharness.Namespace(t, cluster, ns, testharness.OptIn)
	dynamicClaim(t, ns)
	dbApp(t, ns, true, corev1.EnvVar{Name: "RECORDS", Value: "/data/records"})
	old, oldDir := claimVolume(t, ns, "data")
	if old.Annotations["pv.kubernetes.io/provisioned-by"] != "rancher.io/local-path" || old.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
		t.Fatalf("volume %s: provisioned by %q, reclaim %s: want the provisioner's, Delete", old.Name, old.Annotations["pv.kubernetes.io/provisioned-by"], old.Spec.PersistentVolumeReclaimPolicy)
	}
	waitRecords(t, oldDir)
	def := h.Drill(checkDrill(t, ns, ns+"-1", ""))
	h.ServiceAccount(ctx, def)
	takeBackup(t, ns)

	run := h.Run(def)
	st := run.Status
	if st.Verdict != v1alpha1.VerdictPass {
		t.Fatalf("verdict %s: %s\n%s", st.Verdict, st.Reason, testharness.Story(st))
	}
	if !strings.Contains(st.RPOSource, "data check") {
		t.Errorf("RPO source %q, want the data checks", st.RPOSource)
	}
	pv, dir := claimVolume(t, ns, "data")
	if pv.Name == old.Name || pv.Annotations["pv.kubernetes.io/provisioned-by"] != "rancher.io/local-path" {
		t.Fatalf("restored claim bound to %s (provisioned by %q), want a new volume of the provisioner", pv.Name, pv.Annotations["pv.kubernetes.io/provisioned-by"])
	}
	var newest time.Time
	for _, at := range records(t, filepath.Join(dir, "records")) {
		if !at.After(st.DisasterAt.Time) {
			newest = at
		}
	}
	rpo, err := time.ParseDuration(st.RPO)
	if want := st.DisasterAt.Sub(newest); newest.IsZero() || err != nil || (rpo-want).Abs() > time.Second {
		t.Errorf("RPO %s (%v), want the disaster minus the newest restored record (%v), %s", st.RPO, err, newest, want)
	}
	// The old volume went with its claim, and its directory with it.
	err = wait.PollUntilContextTimeout(ctx, time.Second, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := cluster.Kube.CoreV1().PersistentVolumes().Get(ctx, old.Name, metav1.GetOptions{})
		_, serr := os.Stat(oldDir)
		return apierrors.IsNotFound(err) && os.IsNotExist(serr), nil
	})
	if err != nil {
		t.Errorf("the deleted claim's volume %s or its directory %s is still there: %v", old.Name, oldDir, err)
	}
}
