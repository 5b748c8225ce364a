package failoverrestore_test

// Integration tests: a regional failover between two real local clusters
// sharing one S3 store, as production and its DR region share a bucket.
// The package's cluster is the source (production): it backs up namespace
// shop with its real Velero. The DR cluster reads those backups through a
// ReadOnly storage location (Velero's backup sync) and drillbot runs there.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	nr "github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
	"github.com/drillbot-io/drillbot/test/localcluster"
	"github.com/drillbot-io/drillbot/test/testharness"
)

// cluster is the source, started by the test with the Widget CRD
// installed before its Velero (see localcluster.Config.CRDs).
var cluster *localcluster.Cluster

var widgetsGVR = schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}

const widgetCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
`

func failoverDrill(h *testharness.Harness, name, copyNS, rpo, extra string) drill.Definition {
	return h.Drill(failoverDoc(name, copyNS, rpo, extra))
}

func failoverDoc(name, copyNS, rpo, extra string) string {
	return fmt.Sprintf(`apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata: {name: %s}
spec:
  scenario: failover-restore
  objectives: {rto: 5m, rpo: %s}
  timeouts: {recover: 3m, revert: 3m}
  target: {namespace: %s}
  params: {sourceNamespace: shop, storageLocation: default%s}
`, name, rpo, copyNS, extra)
}

// TestFailoverRestore: PASS, a stale backup refused, a missing object
// named, the copy removed after PASS, FAIL and a SIGKILL mid-restore, and
// nothing written to the source cluster nor to the backups in the shared
// store.
func TestFailoverRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	if _, err := localcluster.BinsFromEnv(); err != nil {
		if os.Getenv(localcluster.RequireEnv) != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	ctx := context.Background()
	cluster = localcluster.Another(t, localcluster.Config{CRDs: [][]byte{[]byte(widgetCRD)}})
	dr := localcluster.Another(t, localcluster.Config{S3URL: cluster.S3URL, ReadOnlyBSL: true})
	optIn(t, dr)
	sourceApp(t)
	backupAndSync(t, dr, "shop-1")
	before := sourceState(t)
	stored := storeFiles(t)

	t.Run("PASS", func(t *testing.T) {
		h := testharness.New(t, dr)
		run := h.Run(failoverDrill(h, "failover-pass", "shop-copy-pass", "1h", ""))
		if run.Status.Verdict != v1alpha1.VerdictPass {
			t.Fatalf("verdict %s: %s (findings %q)", run.Status.Verdict, run.Status.Reason, run.Status.Findings)
		}
		if run.Status.RTO == "" || run.Status.RPOSource != "restored marker ConfigMap "+nr.MarkerName {
			t.Errorf("RTO %q, RPO %q from %q", run.Status.RTO, run.Status.RPO, run.Status.RPOSource)
		}
		var names []string
		for _, p := range run.Status.Breakdown {
			names = append(names, p.Name)
		}
		if got := strings.Join(names, ","); got != "restore-finished,workloads-ready" {
			t.Errorf("breakdown %s, want the restore and the readiness shares", got)
		}
		findings := strings.Join(run.Status.Findings, "\n")
		for _, want := range []string{"restored Velero backup shop-1", "objects of the backup checked in the copy", "left to their controllers"} {
			if !strings.Contains(findings, want) {
				t.Errorf("findings %q, want %q", findings, want)
			}
		}
		copyGone(t, dr, "shop-copy-pass")
		journalReverted(t, run)
	})

	t.Run("stale backup refused", func(t *testing.T) {
		h := testharness.New(t, dr)
		// The backup is older than a 2 s RPO target by now.
		run := h.Run(failoverDrill(h, "failover-stale", "shop-copy-stale", "2s", ""))
		if run.Status.Verdict != v1alpha1.VerdictFail || !strings.Contains(run.Status.Reason, "beyond the RPO target 2s") ||
			!strings.Contains(run.Status.Reason, "shop-1") {
			t.Fatalf("verdict %s: %s, want FAIL naming the stale backup", run.Status.Verdict, run.Status.Reason)
		}
		if len(run.Status.Journal) != 0 || run.Status.DisasterAt != nil {
			t.Errorf("a refused run started: journal %v", run.Status.Journal)
		}
		if w := h.TargetWrites(); len(w) > 0 {
			t.Errorf("a refused run wrote: %v", w)
		}
	})

	t.Run("missing object named", func(t *testing.T) {
		// Production runs an operator whose CRD the DR cluster was never
		// given: its objects are in the backup and cannot come back.
		if _, err := cluster.Dynamic.Resource(widgetsGVR).Namespace("shop").Create(ctx, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "example.com/v1", "kind": "Widget", "metadata": map[string]any{"name": "blue"}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		backupAndSync(t, dr, "shop-2")
		h := testharness.New(t, dr)
		run := h.Run(failoverDrill(h, "failover-missing", "shop-copy-missing", "1h", ""))
		if run.Status.Verdict != v1alpha1.VerdictFail ||
			!strings.Contains(run.Status.Reason, "this cluster does not serve example.com/v1/Widget (a CRD or API missing here): not restored (1): blue") {
			t.Fatalf("verdict %s: %s, want FAIL naming widget blue", run.Status.Verdict, run.Status.Reason)
		}
		t.Logf("reason: %s; findings: %q", run.Status.Reason, run.Status.Findings)
		copyGone(t, dr, "shop-copy-missing")
		journalReverted(t, run)
	})

	// The source: untouched, no restore there; the shared store: the
	// backups unchanged. What Velero in the DR cluster writes to the store
	// for its restores (their logs and results, under restores/, even with
	// a ReadOnly location) is all that is new.
	after := sourceState(t)
	for k, v := range before {
		if after[k] != v {
			t.Errorf("the source's %s changed: resourceVersion %s -> %s", k, v, after[k])
		}
	}
	restores, err := cluster.Dynamic.Resource(nr.RestoresGVR).Namespace(cluster.VeleroNamespace).List(ctx, metav1.ListOptions{})
	if err != nil || len(restores.Items) != 0 {
		t.Errorf("restores in the source cluster: %v (%v)", restores, err)
	}
	for path, mod := range stored {
		if now, ok := storeFiles(t)[path]; !ok || !now.Equal(mod) {
			t.Errorf("the shared store's %s was changed or removed", path)
		}
	}
	var added []string
	for path := range storeFiles(t) {
		if _, ok := stored[path]; !ok && !strings.Contains(path, "/backups/shop-2/") && !strings.Contains(path, "/restores/") {
			added = append(added, path)
		}
	}
	for _, p := range added {
		t.Errorf("the DR cluster wrote %s to the shared store", p)
	}
	var restoreFiles []string
	for path := range storeFiles(t) {
		if strings.Contains(path, "/restores/") {
			restoreFiles = append(restoreFiles, path)
		}
	}
	t.Logf("written to the shared store by the DR cluster's Velero for its restores: %q", restoreFiles)

	t.Run("SIGKILL mid-restore", func(t *testing.T) { sigkillMidRestore(t, dr) })

	// Last: its backup of every namespace is a candidate for shop too.
	t.Run("all namespaces backed up, the source mistyped: refused before any write", func(t *testing.T) { mistypedSource(t, dr) })
}

// mistypedSource: a backup of all namespaces (no
// includedNamespaces) is taken by its spec to hold any namespace, even a
// typo. Its own resource list, read through the DR cluster's real Velero,
// holds nothing of it: the run refuses before any write, with no copy
// namespace and no Velero restore in the DR cluster. The only object it
// creates is the DownloadRequest that reads the list.
func mistypedSource(t *testing.T, dr *localcluster.Cluster) {
	ctx := context.Background()
	backupNamespacesAndSync(t, dr, "all-1", nil)
	h := testharness.New(t, dr)
	doc := strings.Replace(failoverDoc("failover-typo", "shpo-copy", "1h", ""), "sourceNamespace: shop", "sourceNamespace: shpo", 1)
	run := h.Run(h.Drill(doc))
	if run.Status.Verdict != v1alpha1.VerdictFail || !strings.Contains(run.Status.Reason, "backup all-1 holds no object in namespace shpo") ||
		!strings.Contains(run.Status.Reason, "shop") {
		t.Fatalf("verdict %s: %s, want FAIL refusing backup all-1, which holds nothing of shpo (and naming shop, which it holds)", run.Status.Verdict, run.Status.Reason)
	}
	if len(run.Status.Journal) != 0 || run.Status.DisasterAt != nil {
		t.Errorf("a refused run started: journal %v, disaster at %v", run.Status.Journal, run.Status.DisasterAt)
	}
	reads := 0
	for _, w := range h.TargetWrites() {
		if w == "POST /apis/velero.io/v1/namespaces/"+dr.VeleroNamespace+"/downloadrequests" {
			reads++
			continue
		}
		t.Errorf("a refused run wrote: %s", w)
	}
	if reads == 0 || reads > 3 {
		t.Errorf("%d DownloadRequests, want 1 to 3 (the candidates' resource lists)", reads)
	}
	if _, err := dr.Kube.CoreV1().Namespaces().Get(ctx, "shpo-copy", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the copy shpo-copy exists (%v)", err)
	}
	restores, err := dr.Dynamic.Resource(nr.RestoresGVR).Namespace(dr.VeleroNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range restores.Items {
		backup, _, _ := unstructured.NestedString(r.Object, "spec", "backupName")
		if strings.HasPrefix(r.GetName(), "failover-typo-") || backup == "all-1" {
			t.Errorf("velero restore %s in the DR cluster", r.GetName())
		}
	}
}

// sigkillMidRestore: `drillbot run` in the DR cluster is killed while its
// Velero restore writes into the copy; `drillbot serve` finds the run's
// open journal entry, waits for the restore to end and deletes the copy.
func sigkillMidRestore(t *testing.T, dr *localcluster.Cluster) {
	ctx := context.Background()
	bin := testharness.Binary(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "failover-kill.yaml")
	if err := os.WriteFile(file, []byte(failoverDoc("failover-kill", "shop-copy-kill", "1h", "")), 0o600); err != nil {
		t.Fatal(err)
	}
	run := exec.Command(bin, "run", "-f", file, "--kubeconfig", dr.Kubeconfig, "-n", testharness.RunNamespace, "--heartbeat-interval", "1s")
	var out strings.Builder
	run.Stdout, run.Stderr = &out, &out
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	// Killed as soon as its restore exists: Velero is restoring into the copy.
	restore := waitFor(t, "the run's Velero restore", func() (string, bool) {
		list, err := dr.Dynamic.Resource(nr.RestoresGVR).Namespace(dr.VeleroNamespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return "", false
		}
		for _, r := range list.Items {
			if strings.HasPrefix(r.GetName(), "failover-kill-") {
				return r.GetName(), true
			}
		}
		return "", false
	})
	if err := run.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = run.Wait()
	r, _ := dr.Dynamic.Resource(nr.RestoresGVR).Namespace(dr.VeleroNamespace).Get(ctx, restore, metav1.GetOptions{})
	phase, _, _ := unstructured.NestedString(r.Object, "status", "phase")
	t.Logf("killed with restore %s %q", restore, phase)
	if _, err := dr.Kube.CoreV1().Namespaces().Get(ctx, "shop-copy-kill", metav1.GetOptions{}); err != nil {
		t.Fatalf("the copy is not there after the kill: %v\n%s", err, out.String())
	}
	// A daemon with the drill in its catalog (no schedule): its sweep
	// resolves the dead run.
	logs := serve(t, bin, dr, dir)
	var done v1alpha1.DrillRun
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon logs:\n%s", logs())
		}
	})
	waitFor(t, "the run completed by the daemon's sweep", func() (string, bool) {
		runs, err := dr.Dynamic.Resource(v1alpha1.DrillRunResource).Namespace(testharness.RunNamespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return "", false
		}
		for _, r := range runs.Items {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(r.Object, &done); err != nil {
				t.Fatal(err)
			}
			if done.Spec.Drill == "failover-kill" {
				return "", done.Status.Phase == v1alpha1.PhaseCompleted
			}
		}
		return "", false
	})
	if done.Status.Verdict != v1alpha1.VerdictFail || !strings.Contains(done.Status.Reason, "interrupted during") {
		t.Errorf("verdict %s %q, want FAIL (interrupted)", done.Status.Verdict, done.Status.Reason)
	}
	journalReverted(t, &done)
	copyGone(t, dr, "shop-copy-kill")
}

// serve starts `drillbot serve` on c with the drills in dir and returns
// its logs.
func serve(t *testing.T, bin string, c *localcluster.Cluster, dir string) func() string {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--kubeconfig", c.Kubeconfig, "-n", testharness.RunNamespace, "--drills", dir,
		"--listen", "127.0.0.1:0", "--heartbeat-interval", "1s", "--sweep-interval", "1s")
	r, w := io.Pipe()
	cmd.Stdout, cmd.Stderr = w, w
	var (
		mu   sync.Mutex
		logs strings.Builder
	)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			mu.Lock()
			logs.WriteString(sc.Text() + "\n")
			mu.Unlock()
		}
	}()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); w.Close() })
	return func() string { mu.Lock(); defer mu.Unlock(); return logs.String() }
}

func waitFor(t *testing.T, what string, cond func() (string, bool)) string {
	t.Helper()
	var got string
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 3*time.Minute, true, func(context.Context) (bool, error) {
		var ok bool
		got, ok = cond()
		return ok, nil
	})
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return got
}

// optIn labels the DR cluster's storage location: its owner allows drills
// to restore the source's backups there.
func optIn(t *testing.T, dr *localcluster.Cluster) {
	t.Helper()
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:"true"}}}`, v1alpha1.LabelAllowDisaster)
	if _, err := dr.Dynamic.Resource(nr.BSLGVR).Namespace(dr.VeleroNamespace).Patch(context.Background(), "default",
		"application/merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// sourceApp is production's namespace shop: a Deployment, a Service,
// configuration, a Secret and drillbot's RPO marker, stamped now (the
// source cluster's drillbot keeps it stamped).
func sourceApp(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if _, err := cluster.Kube.CoreV1().Namespaces().Get(ctx, "shop", metav1.GetOptions{}); err == nil {
		if err := nr.TouchMarker(ctx, cluster.Kube, "shop", time.Now()); err != nil {
			t.Fatal(err)
		}
		return
	}
	testharness.Namespace(t, cluster, "shop", nil)
	testharness.Deployment(t, cluster, "shop", "web", map[string]string{"app": "web"}, 2)
	must(t, errOf(cluster.Kube.CoreV1().ConfigMaps("shop").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "prices"}, Data: map[string]string{"a": "1"}}, metav1.CreateOptions{})))
	must(t, errOf(cluster.Kube.CoreV1().Secrets("shop").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db"}, StringData: map[string]string{"password": "x"}}, metav1.CreateOptions{})))
	must(t, errOf(cluster.Kube.CoreV1().Services("shop").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{})))
	must(t, nr.TouchMarker(ctx, cluster.Kube, "shop", time.Now()))
	if err := nr.WaitWorkloadsReady(ctx, cluster.Kube, "shop"); err != nil {
		t.Fatal(err)
	}
}

// backupAndSync backs up shop in the source and waits until the DR
// cluster has synced it, Completed.
func backupAndSync(t *testing.T, dr *localcluster.Cluster, name string) {
	t.Helper()
	backupNamespacesAndSync(t, dr, name, []string{"shop"})
}

// backupNamespacesAndSync backs up namespaces (none: all of them) in the
// source and waits until the DR cluster has synced the backup, Completed.
func backupNamespacesAndSync(t *testing.T, dr *localcluster.Cluster, name string, namespaces []string) {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	b, err := cluster.Backup(ctx, name, namespaces...)
	if err != nil || b.Status.Phase != velerov1.BackupPhaseCompleted {
		t.Fatalf("backup %s: %s (%v)", name, b.Status.Phase, err)
	}
	took := time.Since(start)
	synced, err := dr.WaitBackup(ctx, name)
	if err != nil || synced.Status.Phase != velerov1.BackupPhaseCompleted {
		t.Fatalf("backup %s in the DR cluster: %s (%v)", name, synced.Status.Phase, err)
	}
	t.Logf("backup %s Completed after %s, synced to the DR cluster after %s", name, took.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// sourceState is the resourceVersion of every object drillbot might touch
// in the source: the namespace and what is in it.
func sourceState(t *testing.T) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	ns, err := cluster.Kube.CoreV1().Namespaces().Get(ctx, "shop", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out["namespace"] = ns.ResourceVersion
	cms, err := cluster.Kube.CoreV1().ConfigMaps("shop").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cms.Items {
		out["configmap/"+c.Name] = c.ResourceVersion
	}
	deps, err := cluster.Kube.AppsV1().Deployments("shop").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range deps.Items {
		out["deployment/"+d.Name] = d.ResourceVersion
	}
	return out
}

// storeFiles is the shared S3 store's files (versitygw's posix backend,
// in the source cluster's directory) with their modification times.
func storeFiles(t *testing.T) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	root := filepath.Join(cluster.Dir(), "s3")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.Contains(path, "/.vgwlocks/") { // versitygw's own locks, taken on reads too
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out[strings.TrimPrefix(path, root)] = info.ModTime()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func copyGone(t *testing.T, c *localcluster.Cluster, ns string) {
	t.Helper()
	if _, err := c.Kube.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the copy %s is still there (%v)", ns, err)
	}
}

func journalReverted(t *testing.T, run *v1alpha1.DrillRun) {
	t.Helper()
	if len(run.Status.Journal) != 1 {
		t.Fatalf("journal %v, want the copy's entry", run.Status.Journal)
	}
	if j := run.Status.Journal[0]; j.State != v1alpha1.JournalReverted {
		t.Errorf("journal entry %s %s %s", j.ID, j.State, j.Error)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func errOf(_ any, err error) error { return err }
