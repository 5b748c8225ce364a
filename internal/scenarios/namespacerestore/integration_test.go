package namespacerestore_test

// Integration tests: the namespace-restore drill against the real local
// cluster (etcd, kube-apiserver, controller-manager, scheduler, kwok) and a
// real Velero server writing to a real S3 store. Each test reads like a
// Velero e2e case: create resources, back up, run the drill, verify, clean.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/kube"
	nr "github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
	"github.com/drillbot-io/drillbot/test/localcluster"
	"github.com/drillbot-io/drillbot/test/testharness"
)

var cluster *localcluster.Cluster

func TestMain(m *testing.M) { os.Exit(localcluster.RunTests(m, &cluster)) }

const runNamespace = testharness.RunNamespace

func newHarness(t *testing.T) *testharness.Harness { return testharness.New(t, cluster) }

// drillFor is the namespace-restore drill of ns with the given backup source.
func drillFor(h *testharness.Harness, ns, backupParams string) drill.Definition {
	return h.Drill(fmt.Sprintf(`apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata:
  name: %s
spec:
  scenario: namespace-restore
  objectives: {rto: 5m, rpo: 1h}
  timeouts: {recover: 3m, revert: 3m}
  target: {namespace: %s}
  params:
    backup: %s
`, ns, ns, backupParams))
}

// app creates a namespace with a Deployment of 3, a Service, a ConfigMap and
// a Secret, and waits for it to be Ready.
func app(t *testing.T, ns string, optIn bool) *corev1.Namespace {
	t.Helper()
	ctx := context.Background()
	labels := map[string]string{}
	if optIn {
		labels[v1alpha1.LabelAllowDisaster] = "true"
	}
	created := testharness.Namespace(t, cluster, ns, labels)
	deployment(t, ns, "web", 3)
	fatalIf(t, errOf(cluster.Kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "app-config"}, Data: map[string]string{"mode": "prod"}}, metav1.CreateOptions{})))
	fatalIf(t, errOf(cluster.Kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db-password"}, StringData: map[string]string{"password": "s3cret"}}, metav1.CreateOptions{})))
	fatalIf(t, errOf(cluster.Kube.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{})))
	waitReady(t, ns)
	return created
}

func deployment(t *testing.T, ns, name string, replicas int32) {
	t.Helper()
	l := map[string]string{"app": name}
	fatalIf(t, errOf(cluster.Kube.AppsV1().Deployments(ns).Create(context.Background(), &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(replicas), Selector: &metav1.LabelSelector{MatchLabels: l},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: l},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/" + name + ":1"}}}}},
	}, metav1.CreateOptions{})))
}

func waitReady(t *testing.T, ns string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := nr.WaitWorkloadsReady(ctx, cluster.Kube, ns); err != nil {
		t.Fatal(err)
	}
}

func errOf[T any](_ T, err error) error { return err }

func fatalIf(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// backupOf has the real Velero server back up ns, labelled as if made by
// the Velero Schedule named schedule (what `velero backup create
// --from-schedule` does), and waits for it to end.
func backupOf(t *testing.T, ns, name, schedule, location string, edits ...func(*velerov1.BackupSpec)) *velerov1.Backup {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := &velerov1.Backup{
		TypeMeta:   metav1.TypeMeta{APIVersion: "velero.io/v1", Kind: "Backup"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: cluster.VeleroNamespace, Labels: map[string]string{velerov1.ScheduleNameLabel: schedule}},
		Spec:       velerov1.BackupSpec{IncludedNamespaces: []string{ns}, StorageLocation: location},
	}
	for _, edit := range edits {
		edit(&b.Spec)
	}
	createBackupObject(t, b)
	var got velerov1.Backup
	_, err := kube.WaitObject(ctx, cluster.Dynamic, nr.BackupsGVR, cluster.VeleroNamespace, name, func(u *unstructured.Unstructured) (bool, error) {
		if u == nil {
			return false, nil
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &got); err != nil {
			return false, err
		}
		switch got.Status.Phase {
		case velerov1.BackupPhaseCompleted, velerov1.BackupPhasePartiallyFailed, velerov1.BackupPhaseFailed, velerov1.BackupPhaseFailedValidation:
			return true, nil
		}
		return false, nil // New, Queued, ReadyToStart, InProgress, Finalizing...
	})
	if err != nil {
		t.Fatal(err)
	}
	return &got
}

func createBackupObject(t *testing.T, obj *velerov1.Backup) {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: m}
	if _, err := cluster.Dynamic.Resource(nr.BackupsGVR).Namespace(cluster.VeleroNamespace).Create(context.Background(), u, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func restoresOf(t *testing.T, run string) int {
	t.Helper()
	list, err := cluster.Dynamic.Resource(nr.RestoresGVR).Namespace(cluster.VeleroNamespace).List(context.Background(),
		metav1.ListOptions{LabelSelector: v1alpha1.LabelRun + "=" + run})
	if err != nil {
		t.Fatal(err)
	}
	return len(list.Items)
}

func TestNamespaceRestorePasses(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ns := "nr-pass-" + localcluster.RandomSuffix()
	app(t, ns, true)
	ctx := context.Background()
	// The marker is the newest write before the backup: the restored data's age.
	markerAt := time.Now().Add(-2 * time.Second)
	if err := nr.TouchMarker(ctx, cluster.Kube, ns, markerAt); err != nil {
		t.Fatal(err)
	}
	if b := backupOf(t, ns, ns+"-daily-1", ns+"-daily", ""); b.Status.Phase != velerov1.BackupPhaseCompleted {
		t.Fatalf("backup %s", b.Status.Phase)
	}
	// Written after the backup: lost in the disaster, and not what RPO is measured from.
	if err := nr.TouchMarker(ctx, cluster.Kube, ns, time.Now()); err != nil {
		t.Fatal(err)
	}

	run := h.Run(drillFor(h, ns, fmt.Sprintf("{schedule: %s-daily}", ns)))

	st := run.Status
	if st.Verdict != v1alpha1.VerdictPass {
		t.Fatalf("verdict %s: %s\nsteps: %s", st.Verdict, st.Reason, localcluster.JSON(st.Steps))
	}
	rto, err := time.ParseDuration(st.RTO)
	if err != nil || rto <= 0 {
		t.Errorf("RTO %q", st.RTO)
	}
	if !strings.Contains(st.RPOSource, "restored marker") {
		t.Errorf("RPO source %q, want the restored marker", st.RPOSource)
	}
	rpo, err := time.ParseDuration(st.RPO)
	if err != nil {
		t.Fatalf("RPO %q", st.RPO)
	}
	if want := st.DisasterAt.Sub(markerAt); (rpo - want).Abs() > time.Millisecond {
		t.Errorf("RPO %v, want disaster minus the marker captured in the backup = %v", rpo, want)
	}
	var names []string
	var sum time.Duration
	for _, s := range st.Breakdown {
		names = append(names, s.Name)
		d, _ := time.ParseDuration(s.Duration)
		sum += d
	}
	if got := strings.Join(names, ","); got != "namespace-terminated,restore-completed,workloads-ready" {
		t.Errorf("breakdown %q", got)
	}
	if (sum - rto).Abs() > 3*time.Millisecond {
		t.Errorf("breakdown adds up to %v, RTO %v", sum, rto)
	}
	if len(st.Journal) != 1 || st.Journal[0].State != v1alpha1.JournalReverted {
		t.Errorf("journal %s", localcluster.JSON(st.Journal))
	}
	// kubectl describe drillrun tells the story in Events.
	reasons := map[string]bool{}
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		evs, err := cluster.Kube.CoreV1().Events(runNamespace).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + run.Name})
		if err != nil {
			return false, err
		}
		for _, e := range evs.Items {
			reasons[e.Reason] = true
		}
		return reasons["PASS"], nil
	})
	for _, r := range []string{"Preflight", "InjectingDone", "Milestone", "RevertingDone", "PASS"} {
		if !reasons[r] {
			t.Errorf("no %s Event on the DrillRun (have %v, %v)", r, reasons, err)
		}
	}
	// And the cluster agrees: the app is back and Ready.
	waitReady(t, ns)
	for _, name := range []string{"app-config", nr.MarkerName} {
		if _, err := cluster.Kube.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("configmap %s not restored: %v", name, err)
		}
	}
	if _, err := cluster.Kube.CoreV1().Secrets(ns).Get(ctx, "db-password", metav1.GetOptions{}); err != nil {
		t.Errorf("secret not restored: %v", err)
	}
}

func TestNamespaceWithoutOptInIsRefusedWithZeroWrites(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ns := "nr-noopt-" + localcluster.RandomSuffix()
	before := app(t, ns, false)
	backupOf(t, ns, ns+"-daily-1", ns+"-daily", "")

	run := h.Run(drillFor(h, ns, fmt.Sprintf("{schedule: %s-daily}", ns)))

	if run.Status.Verdict != v1alpha1.VerdictFail || !strings.Contains(run.Status.Reason, "not opted in") {
		t.Fatalf("verdict %s: %s", run.Status.Verdict, run.Status.Reason)
	}
	if w := h.TargetWrites(); len(w) > 0 {
		t.Errorf("refused drill wrote to the cluster: %v", w)
	}
	after, err := cluster.Kube.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{})
	if err != nil || after.UID != before.UID || after.DeletionTimestamp != nil {
		t.Errorf("namespace changed: %v", err)
	}
	if len(run.Status.Journal) != 0 || restoresOf(t, run.Name) != 0 {
		t.Errorf("refused run journaled %d faults, %d restores", len(run.Status.Journal), restoresOf(t, run.Name))
	}
}

func TestUnusableBackupIsRefusedBeforeDeletion(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		prepare func(t *testing.T, ns string)
		want    string
	}{
		{
			name:    "schedule has no backups",
			prepare: func(*testing.T, string) {},
			want:    "has no backups",
		},
		{
			// Velero itself fails a backup whose storage location does not exist.
			name: "newest backup failed validation in Velero",
			prepare: func(t *testing.T, ns string) {
				backupOf(t, ns, ns+"-daily-1", ns+"-daily", "")
				time.Sleep(1100 * time.Millisecond) // creation timestamps have 1s resolution: make the failed one newest
				if b := backupOf(t, ns, ns+"-daily-2", ns+"-daily", "no-such-location"); b.Status.Phase != velerov1.BackupPhaseFailedValidation {
					t.Fatalf("velero left the backup %s", b.Status.Phase)
				}
			},
			want: `-daily-2 is "FailedValidation", not Completed`,
		},
		{
			// A PartiallyFailed backup cannot be provoked on demand, so its
			// record is written as Velero writes one; Velero leaves backups
			// that are not New alone.
			name: "newest backup partially failed",
			prepare: func(t *testing.T, ns string) {
				b := &velerov1.Backup{
					TypeMeta: metav1.TypeMeta{APIVersion: "velero.io/v1", Kind: "Backup"},
					ObjectMeta: metav1.ObjectMeta{Name: ns + "-daily-9", Namespace: cluster.VeleroNamespace,
						Labels: map[string]string{velerov1.ScheduleNameLabel: ns + "-daily"}},
					Spec:   velerov1.BackupSpec{IncludedNamespaces: []string{ns}},
					Status: velerov1.BackupStatus{Phase: velerov1.BackupPhasePartiallyFailed, Errors: 2},
				}
				createBackupObject(t, b)
			},
			want: `-daily-9 is "PartiallyFailed", not Completed`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			ns := "nr-bad-" + localcluster.RandomSuffix()
			before := app(t, ns, true)
			tc.prepare(t, ns)

			run := h.Run(drillFor(h, ns, fmt.Sprintf("{schedule: %s-daily}", ns)))

			if run.Status.Verdict != v1alpha1.VerdictFail || !strings.Contains(run.Status.Reason, tc.want) {
				t.Fatalf("verdict %s: %s", run.Status.Verdict, run.Status.Reason)
			}
			if w := h.TargetWrites(); len(w) > 0 {
				t.Errorf("drill wrote before refusing: %v", w)
			}
			after, err := cluster.Kube.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{})
			if err != nil || after.UID != before.UID || after.DeletionTimestamp != nil {
				t.Errorf("namespace was touched: %v", err)
			}
		})
	}
}

// TestObjectNewerThanTheBackupIsLostWithinTheRPOWindow: a Deployment
// created after the last backup cannot come back from it; it is the RPO
// window (measured by the restored marker, within its target), named in the
// findings, not a failure.
func TestObjectNewerThanTheBackupIsLostWithinTheRPOWindow(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ns := "nr-late-" + localcluster.RandomSuffix()
	app(t, ns, true)
	if err := nr.TouchMarker(context.Background(), cluster.Kube, ns, time.Now()); err != nil {
		t.Fatal(err)
	}
	backupOf(t, ns, ns+"-daily-1", ns+"-daily", "")
	// Deployed after the last backup: no restore can bring it back.
	// Creation times are whole seconds: one made in the backup's second
	// may have existed when it was made (the drill refuses then), so the
	// Deployment comes a second later.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 100*time.Millisecond)))
	deployment(t, ns, "late", 2)
	waitReady(t, ns)

	run := h.Run(drillFor(h, ns, fmt.Sprintf("{schedule: %s-daily}", ns)))

	st := run.Status
	want := fmt.Sprintf("lost within the RPO window (1, created after backup %s-daily-1 was made, so not in it): deployments.apps/late", ns)
	if st.Verdict != v1alpha1.VerdictPass || !strings.Contains(strings.Join(st.Findings, "\n"), want) {
		t.Fatalf("verdict %s: %s; findings %q\nwant PASS naming: %s", st.Verdict, st.Reason, st.Findings, want)
	}
	if _, err := cluster.Kube.AppsV1().Deployments(ns).Get(context.Background(), "web", metav1.GetOptions{}); err != nil {
		t.Errorf("web not restored: %v", err)
	}
}

// TestRestoreThatCannotBringAWorkloadBackFails: an admission policy made
// after the backup denies the Deployment web; Velero's restore cannot bring
// it back (PartiallyFailed), so the run FAILs, and its undo (the same
// restore) cannot succeed either: the fault stays open, said so.
func TestRestoreThatCannotBringAWorkloadBackFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t)
	ns := "nr-miss-" + localcluster.RandomSuffix()
	app(t, ns, true)
	backupOf(t, ns, ns+"-daily-1", ns+"-daily", "")
	denyDeployment(t, ns, "web")

	run := h.Run(drillFor(h, ns, fmt.Sprintf("{schedule: %s-daily}", ns)))

	st := run.Status
	if st.Verdict != v1alpha1.VerdictFail || !strings.Contains(st.Reason, string(velerov1.RestorePhasePartiallyFailed)) {
		t.Fatalf("verdict %s: %s\nwant FAIL naming the restore PartiallyFailed", st.Verdict, st.Reason)
	}
	if len(st.Journal) != 1 || st.Journal[0].State == v1alpha1.JournalReverted {
		t.Errorf("journal %s: the undo cannot bring web back, so it is not reverted", localcluster.JSON(st.Journal))
	}
	if _, err := cluster.Kube.CoreV1().ConfigMaps(ns).Get(ctx, "app-config", metav1.GetOptions{}); err != nil {
		t.Errorf("the rest not restored: %v", err)
	}
}

// denyDeployment makes the API server deny creating the Deployment name in
// ns (a ValidatingAdmissionPolicy and its binding), until the test ends.
func denyDeployment(t *testing.T, ns, name string) {
	t.Helper()
	ctx := context.Background()
	ar := cluster.Kube.AdmissionregistrationV1()
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "deny-" + ns},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
					Rule: admissionregistrationv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"deployments"}}}}}},
			Validations: []admissionregistrationv1.Validation{{Expression: fmt.Sprintf("object.metadata.name != %q", name), Message: name + " may not be created"}},
		},
	}
	fatalIf(t, errOf(ar.ValidatingAdmissionPolicies().Create(ctx, policy, metav1.CreateOptions{})))
	t.Cleanup(func() {
		_ = ar.ValidatingAdmissionPolicies().Delete(context.Background(), policy.Name, metav1.DeleteOptions{})
	})
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "deny-" + ns},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: policy.Name,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{corev1.LabelMetadataName: ns}}}},
	}
	fatalIf(t, errOf(ar.ValidatingAdmissionPolicyBindings().Create(ctx, binding, metav1.CreateOptions{})))
	t.Cleanup(func() {
		_ = ar.ValidatingAdmissionPolicyBindings().Delete(context.Background(), binding.Name, metav1.DeleteOptions{})
	})
	// The API server applies a new policy within a second or so: wait
	// until a dry-run create of the Deployment is denied.
	probe := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/" + name + ":1"}}}}}}
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := cluster.Kube.AppsV1().Deployments(ns).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err != nil && strings.Contains(err.Error(), "may not be created"), nil
	})
	fatalIf(t, err)
}

// backup: {create: true}: drillbot stamps the marker, has Velero back the
// namespace up, and only then deletes it. The RPO is then the gap between the
// marker write and the disaster.
func TestNamespaceRestoreWithFreshBackup(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ns := "nr-fresh-" + localcluster.RandomSuffix()
	app(t, ns, true)
	before := time.Now()

	run := h.Run(drillFor(h, ns, "{create: true}"))

	st := run.Status
	if st.Verdict != v1alpha1.VerdictPass {
		t.Fatalf("verdict %s: %s", st.Verdict, st.Reason)
	}
	ctx := context.Background()
	cm, err := cluster.Kube.CoreV1().ConfigMaps(ns).Get(ctx, nr.MarkerName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	marker, err := time.Parse(time.RFC3339Nano, cm.Data[nr.MarkerKey])
	if err != nil || marker.Before(before) || marker.After(st.DisasterAt.Time) {
		t.Fatalf("restored marker %q: written by this run before the disaster? (err %v)", cm.Data[nr.MarkerKey], err)
	}
	rpo, _ := time.ParseDuration(st.RPO)
	if want := st.DisasterAt.Sub(marker); (rpo - want).Abs() > time.Millisecond {
		t.Errorf("RPO %v, want %v", rpo, want)
	}
	// The backup drillbot took is labelled with the run, for the orphan sweep.
	b, err := cluster.Dynamic.Resource(nr.BackupsGVR).Namespace(cluster.VeleroNamespace).Get(ctx, run.Name, metav1.GetOptions{})
	if err != nil || b.GetLabels()[v1alpha1.LabelRun] != run.Name {
		t.Errorf("backup %s: %v labels %v", run.Name, err, b.GetLabels())
	}
}

// TestVolumeDataTheBackupLacksIsRefused: the namespace holds a PVC bound to
// a volume with data on it; the real Velero backs the namespace up
// (Completed) but, with no volume snapshotter and no file-system backup
// here, records the volume's data as skipped. The drill reads that record
// through a DownloadRequest and refuses before the journal: the namespace,
// the PVC and the bytes on the volume are untouched, and the only write is
// the DownloadRequest.
func TestVolumeDataTheBackupLacksIsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t)
	ns := "nr-vol-" + localcluster.RandomSuffix()
	before := app(t, ns, true)
	data := []byte("order 1\norder 2\n")
	pvc, dir := testharness.BoundVolume(t, cluster, ns, "orders", data)
	if b := backupOf(t, ns, ns+"-daily-1", ns+"-daily", ""); b.Status.Phase != velerov1.BackupPhaseCompleted {
		t.Fatalf("velero left the backup %s", b.Status.Phase)
	}

	run := h.Run(drillFor(h, ns, fmt.Sprintf("{schedule: %s-daily}", ns)))

	refusedUntouched(t, h, run, before,
		fmt.Sprintf("velero backup %s-daily-1 does not hold the data of PVC orders (1Gi): Velero skipped its data", ns))
	still, err := cluster.Kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "orders", metav1.GetOptions{})
	if err != nil || still.UID != pvc.UID || still.Status.Phase != corev1.ClaimBound || still.DeletionTimestamp != nil {
		t.Errorf("the PVC was touched: %v", err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "data")); err != nil || string(got) != string(data) {
		t.Errorf("the volume's data: %q (%v), want %q", got, err, data)
	}
}

// refusedUntouched checks run was refused naming each of want, wrote
// nothing but its DownloadRequests, restored nothing and left the
// namespace as it was.
func refusedUntouched(t *testing.T, h *testharness.Harness, run *v1alpha1.DrillRun, before *corev1.Namespace, want ...string) {
	t.Helper()
	for _, w := range want {
		if run.Status.Verdict != v1alpha1.VerdictFail || !strings.Contains(run.Status.Reason, w) {
			t.Fatalf("verdict %s: %s\nwant FAIL refusing: %s", run.Status.Verdict, run.Status.Reason, w)
		}
	}
	if len(run.Status.Journal) > 0 {
		t.Errorf("refused, yet the journal holds %v", run.Status.Journal)
	}
	for _, w := range h.TargetWrites() {
		if w != "POST /apis/velero.io/v1/namespaces/"+cluster.VeleroNamespace+"/downloadrequests" {
			t.Errorf("the drill wrote more than its DownloadRequests: %s", w)
		}
	}
	after, err := cluster.Kube.CoreV1().Namespaces().Get(context.Background(), before.Name, metav1.GetOptions{})
	if err != nil || after.UID != before.UID || after.DeletionTimestamp != nil {
		t.Errorf("namespace was touched: %v", err)
	}
	if n := restoresOf(t, run.Name); n != 0 {
		t.Errorf("%d restores made by a refused run", n)
	}
}

// TestObjectsTheBackupLeftOutAreRefused: a real Velero backup made with
// excludedResources leaves the namespace's ConfigMap out; the drill refuses
// before its first write to the namespace, naming it, and the namespace is
// untouched.
func TestObjectsTheBackupLeftOutAreRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ns := "nr-left-" + localcluster.RandomSuffix()
	before := app(t, ns, true)
	b := backupOf(t, ns, ns+"-daily-1", ns+"-daily", "", func(s *velerov1.BackupSpec) { s.ExcludedResources = []string{"configmaps"} })
	if b.Status.Phase != velerov1.BackupPhaseCompleted {
		t.Fatalf("velero left the backup %s", b.Status.Phase)
	}

	run := h.Run(drillFor(h, ns, fmt.Sprintf("{schedule: %s-daily}", ns)))

	refusedUntouched(t, h, run, before,
		fmt.Sprintf("velero backup %s-daily-1 leaves out 1 objects of namespace %s that existed when it was made", ns, ns), "configmaps/app-config")
}
