package failoverrestore

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/discovery/cached/memory"
	fakediscovery "k8s.io/client-go/discovery/fake"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	nr "github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
)

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func u(t *testing.T, obj any) runtime.Object {
	t.Helper()
	out, err := nr.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func location(access velerov1.BackupStorageLocationAccessMode, phase velerov1.BackupStorageLocationPhase, optIn bool) *velerov1.BackupStorageLocation {
	l := &velerov1.BackupStorageLocation{
		TypeMeta:   metav1.TypeMeta{APIVersion: "velero.io/v1", Kind: "BackupStorageLocation"},
		ObjectMeta: metav1.ObjectMeta{Name: "production", Namespace: "velero"},
		Spec:       velerov1.BackupStorageLocationSpec{Provider: "aws", AccessMode: access},
		Status:     velerov1.BackupStorageLocationStatus{Phase: phase},
	}
	if optIn {
		l.Labels = map[string]string{v1alpha1.LabelAllowDisaster: "true"}
	}
	return l
}

func good() *velerov1.BackupStorageLocation {
	return location(velerov1.BackupStorageLocationAccessModeReadOnly, velerov1.BackupStorageLocationPhaseAvailable, true)
}

// backupOf is a backup of ns in the production location that started age ago.
func backupOf(name string, phase velerov1.BackupPhase, age time.Duration, ns ...string) *velerov1.Backup {
	start := metav1.NewTime(now.Add(-age))
	return &velerov1.Backup{
		TypeMeta: metav1.TypeMeta{APIVersion: "velero.io/v1", Kind: "Backup"},
		// Synced backups are created when they reach the DR cluster: the
		// creation time says nothing about the data's age.
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "velero", CreationTimestamp: metav1.NewTime(now),
			Labels: map[string]string{velerov1.ScheduleNameLabel: "shop-hourly"}},
		Spec:   velerov1.BackupSpec{IncludedNamespaces: ns, StorageLocation: "production"},
		Status: velerov1.BackupStatus{Phase: phase, StartTimestamp: &start},
	}
}

func dynamicWith(objs ...runtime.Object) *dynamicfake.FakeDynamicClient {
	return dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		nr.BackupsGVR: "BackupList", nr.RestoresGVR: "RestoreList", nr.BSLGVR: "BackupStorageLocationList", DownloadRequestsGVR: "DownloadRequestList",
	}, objs...)
}

func definition(params string) drill.Definition {
	d := drill.Definition{Name: "failover", Spec: v1alpha1.DrillSpec{Scenario: Name, Target: v1alpha1.Target{Namespace: "shop-copy"},
		Objectives: v1alpha1.Objectives{RTO: "30m", RPO: "1h"}, Params: []byte(params)}}
	d.FromSpec() // as the loader does: the parsed targets
	return d
}

const params = `{"sourceNamespace":"shop","storageLocation":"production"}`

func TestValidateParams(t *testing.T) {
	cases := []struct {
		name, params, target, rpo, want string
		selector                        map[string]string
	}{
		{name: "valid", params: params, target: "shop-copy", rpo: "1h"},
		{name: "no source", params: `{"storageLocation":"production"}`, target: "shop-copy", rpo: "1h", want: "spec.params.sourceNamespace: Required"},
		{name: "bad source", params: `{"sourceNamespace":"Shop!","storageLocation":"production"}`, target: "shop-copy", rpo: "1h", want: "spec.params.sourceNamespace: Invalid"},
		{name: "copy is the source", params: params, target: "shop", rpo: "1h", want: "spec.target.namespace: Invalid value: \"shop\": the copy must not be the source"},
		{name: "no location", params: `{"sourceNamespace":"shop"}`, target: "shop-copy", rpo: "1h", want: "spec.params.storageLocation: Required"},
		{name: "no rpo", params: params, target: "shop-copy", want: "spec.objectives.rpo: Required"},
		{name: "selector", params: params, target: "shop-copy", rpo: "1h", selector: map[string]string{"app": "web"}, want: "spec.target: Forbidden"},
		{name: "empty excluded resource", params: `{"sourceNamespace":"shop","storageLocation":"production","excludedResources":[""]}`, target: "shop-copy", rpo: "1h",
			want: "spec.params.excludedResources[0]: Required"},
		{name: "unknown field", params: `{"sourceNamespace":"shop","storageLocation":"production","backup":{"name":"x"}}`, target: "shop-copy", rpo: "1h", want: "unknown field"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := v1alpha1.DrillSpec{Target: v1alpha1.Target{Namespace: tc.target, Selector: tc.selector},
				Objectives: v1alpha1.Objectives{RTO: "30m", RPO: v1alpha1.Duration(tc.rpo)}, Params: []byte(tc.params)}
			errs := Kind{}.ValidateParams(spec, field.NewPath("spec", "params"))
			got := errs.ToAggregate()
			switch {
			case tc.want == "" && got != nil:
				t.Fatalf("unexpected errors: %v", got)
			case tc.want != "" && (got == nil || !strings.Contains(got.Error(), tc.want)):
				t.Fatalf("errors %v, want %q", got, tc.want)
			}
		})
	}
}

// TestPreflight: every refusal is made before any write, and the backup
// picked is the newest Completed one of the source in the location.
func TestPreflight(t *testing.T) {
	cases := []struct {
		name       string
		params     string
		namespaces []runtime.Object
		velero     func(t *testing.T) []runtime.Object
		want       string // error substring; empty: passes
		refused    bool
		backup     string // the backup picked
		finding    string
	}{
		{name: "restores the newest Completed backup", velero: func(t *testing.T) []runtime.Object {
			return []runtime.Object{u(t, good()), u(t, backupOf("b-old", velerov1.BackupPhaseCompleted, 50*time.Minute, "shop")),
				u(t, backupOf("b-new", velerov1.BackupPhaseCompleted, 10*time.Minute, "shop"))}
		}, backup: "b-new"},
		{name: "the copy exists", namespaces: []runtime.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop-copy"}}},
			velero: func(t *testing.T) []runtime.Object { return []runtime.Object{u(t, good())} },
			want:   "target namespace shop-copy exists", refused: true},
		{name: "no storage location", velero: func(t *testing.T) []runtime.Object { return nil },
			want: "no Velero BackupStorageLocation velero/production", refused: true},
		{name: "location not opted in", velero: func(t *testing.T) []runtime.Object {
			return []runtime.Object{u(t, location(velerov1.BackupStorageLocationAccessModeReadOnly, velerov1.BackupStorageLocationPhaseAvailable, false))}
		}, want: "lacks the label drillbot.io/allow-disaster=true", refused: true},
		{name: "location ReadWrite", velero: func(t *testing.T) []runtime.Object {
			return []runtime.Object{u(t, location("", velerov1.BackupStorageLocationPhaseAvailable, true))}
		}, want: "is ReadWrite", refused: true},
		{name: "ReadWrite allowed for a copy in the same cluster",
			params: `{"sourceNamespace":"shop","storageLocation":"production","allowReadWriteLocation":true}`,
			velero: func(t *testing.T) []runtime.Object {
				return []runtime.Object{u(t, location(velerov1.BackupStorageLocationAccessModeReadWrite, velerov1.BackupStorageLocationPhaseAvailable, true)),
					u(t, backupOf("b", velerov1.BackupPhaseCompleted, time.Minute, "shop"))}
			}, backup: "b"},
		{name: "location unavailable", velero: func(t *testing.T) []runtime.Object {
			return []runtime.Object{u(t, location(velerov1.BackupStorageLocationAccessModeReadOnly, velerov1.BackupStorageLocationPhaseUnavailable, true))}
		}, want: `is "Unavailable", not Available`},
		{name: "no backup of the source", velero: func(t *testing.T) []runtime.Object {
			other := backupOf("billing", velerov1.BackupPhaseCompleted, time.Minute, "billing")
			elsewhere := backupOf("elsewhere", velerov1.BackupPhaseCompleted, time.Minute, "shop")
			elsewhere.Spec.StorageLocation = "default"
			return []runtime.Object{u(t, good()), u(t, other), u(t, elsewhere)}
		}, want: "no backup of namespace shop in location production", refused: true},
		{name: "stale backup", velero: func(t *testing.T) []runtime.Object {
			return []runtime.Object{u(t, good()), u(t, backupOf("b", velerov1.BackupPhaseCompleted, 3*time.Hour, "shop"))}
		}, want: "started 3h0m0s ago (2026-12-01T09:00:00Z): beyond the RPO target 1h0m0s", refused: true},
		{name: "only failed backups", velero: func(t *testing.T) []runtime.Object {
			return []runtime.Object{u(t, good()), u(t, backupOf("b", velerov1.BackupPhasePartiallyFailed, time.Minute, "shop"))}
		}, want: "no Completed backup of namespace shop in location production: the newest, b, is PartiallyFailed", refused: true},
		{name: "newest partially failed: the older Completed one, named", velero: func(t *testing.T) []runtime.Object {
			return []runtime.Object{u(t, good()), u(t, backupOf("b-old", velerov1.BackupPhaseCompleted, 30*time.Minute, "shop")),
				u(t, backupOf("b-new", velerov1.BackupPhasePartiallyFailed, 5*time.Minute, "shop")),
				u(t, backupOf("b-running", velerov1.BackupPhaseInProgress, time.Minute, "shop"))}
		}, backup: "b-old", finding: "the newest backup of namespace shop, b-new, ended PartiallyFailed: restored the older Completed b-old"},
		{name: "all namespaces backed up", velero: func(t *testing.T) []runtime.Object {
			return []runtime.Object{u(t, good()), u(t, backupOf("all", velerov1.BackupPhaseCompleted, time.Minute))}
		}, backup: "all"},
		{name: "schedule narrows", params: `{"sourceNamespace":"shop","storageLocation":"production","schedule":"shop-daily"}`,
			velero: func(t *testing.T) []runtime.Object {
				return []runtime.Object{u(t, good()), u(t, backupOf("hourly", velerov1.BackupPhaseCompleted, time.Minute, "shop"))}
			}, want: "no backup of namespace shop by schedule shop-daily", refused: true},
		{name: "protected copy", params: params, velero: func(t *testing.T) []runtime.Object { return nil }, want: "protected", refused: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kube := fake.NewClientset(tc.namespaces...)
			dyn := dynamicWith(tc.velero(t)...)
			def := definition(params)
			if tc.params != "" {
				def.Spec.Params = []byte(tc.params)
			}
			if tc.name == "protected copy" {
				def.Spec.Target.Namespace = "velero"
			}
			sc, err := Kind{Deps: Deps{Kube: kube, Dynamic: dyn, Clock: clocktesting.NewFakePassiveClock(now)}}.New(def, "run-1")
			if err != nil {
				t.Fatal(err)
			}
			err = sc.Preflight(context.Background())
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				s := sc.(*scenario)
				if s.backup.Name != tc.backup {
					t.Errorf("backup %s, want %s", s.backup.Name, tc.backup)
				}
				if tc.finding != "" && !strings.Contains(strings.Join(s.findings, "\n"), tc.finding) {
					t.Errorf("findings %q, want %q", s.findings, tc.finding)
				}
			} else {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Preflight error %v, want it to mention %q", err, tc.want)
				}
				if engine.IsRefused(err) != tc.refused {
					t.Errorf("IsRefused = %v, want %v", engine.IsRefused(err), tc.refused)
				}
			}
			for _, a := range append(kube.Actions(), dyn.Actions()...) {
				if v := a.GetVerb(); v != "get" && v != "list" && v != "watch" {
					t.Errorf("preflight wrote: %s %s", v, a.GetResource().Resource)
				}
			}
		})
	}
}

type journal struct{ entries []Undo }

func (j *journal) Record(_ context.Context, _, _ string, undo any) error {
	j.entries = append(j.entries, undo.(Undo))
	return nil
}

// TestInjectRecordsBeforeCreatingTheCopy: the journal entry exists before
// the copy, and the copy carries the run's label the undo checks.
func TestInjectRecordsBeforeCreatingTheCopy(t *testing.T) {
	kube := fake.NewClientset()
	dyn := dynamicWith(u(t, good()), u(t, backupOf("b", velerov1.BackupPhaseCompleted, time.Minute, "shop")))
	sc, err := Kind{Deps: Deps{Kube: kube, Dynamic: dyn, Contents: &lists{of: map[string]map[string][]string{"b": shopList()}},
		Clock: clocktesting.NewFakePassiveClock(now)}}.New(definition(params), "run-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Preflight(context.Background()); err != nil {
		t.Fatal(err)
	}
	j := &failingJournal{}
	if err := sc.Inject(context.Background(), j); err == nil {
		t.Fatal("Inject went on after the journal failed")
	}
	if _, err := kube.CoreV1().Namespaces().Get(context.Background(), "shop-copy", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the copy was created though its undo was never recorded: %v", err)
	}
	ok := &journal{}
	if err := sc.Inject(context.Background(), ok); err != nil {
		t.Fatal(err)
	}
	want := Undo{Namespace: "shop-copy", Run: "run-1", VeleroNamespace: "velero", Restore: "run-1"}
	if len(ok.entries) != 1 || ok.entries[0] != want {
		t.Errorf("journal %+v, want %+v", ok.entries, want)
	}
	ns, err := kube.CoreV1().Namespaces().Get(context.Background(), "shop-copy", metav1.GetOptions{})
	if err != nil || ns.Labels[v1alpha1.LabelRun] != "run-1" {
		t.Fatalf("copy %v (%v), want labelled with the run", ns, err)
	}
}

type failingJournal struct{}

func (failingJournal) Record(context.Context, string, string, any) error {
	return apierrors.NewServiceUnavailable("etcd down")
}

// TestRevertDeletesOnlyTheRunsCopy: the undo deletes the copy labelled with
// its run, and nothing else of that name.
func TestRevertDeletesOnlyTheRunsCopy(t *testing.T) {
	done := &velerov1.Restore{TypeMeta: metav1.TypeMeta{APIVersion: "velero.io/v1", Kind: "Restore"},
		ObjectMeta: metav1.ObjectMeta{Name: "run-1", Namespace: "velero"}, Status: velerov1.RestoreStatus{Phase: velerov1.RestorePhaseCompleted}}
	cases := []struct {
		name    string
		ns      *corev1.Namespace
		deleted bool
	}{
		{name: "the run's copy", ns: &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop-copy", Labels: map[string]string{v1alpha1.LabelRun: "run-1"}}}, deleted: true},
		{name: "another run's", ns: &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop-copy", Labels: map[string]string{v1alpha1.LabelRun: "run-0"}}}},
		{name: "someone's namespace", ns: &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop-copy"}}},
		{name: "gone already"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var objs []runtime.Object
			if tc.ns != nil {
				objs = append(objs, tc.ns)
			}
			kube := fake.NewClientset(objs...)
			sc, err := Kind{Deps: Deps{Kube: kube, Dynamic: dynamicWith(u(t, done))}}.New(definition(params), "run-1")
			if err != nil {
				t.Fatal(err)
			}
			undo, _ := json.Marshal(Undo{Namespace: "shop-copy", Run: "run-1", VeleroNamespace: "velero", Restore: "run-1"})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := sc.Revert(ctx, v1alpha1.JournalEntry{ID: "1", Undo: undo}); err != nil {
				t.Fatal(err)
			}
			_, err = kube.CoreV1().Namespaces().Get(ctx, "shop-copy", metav1.GetOptions{})
			if gone := apierrors.IsNotFound(err); tc.ns != nil && gone != tc.deleted {
				t.Errorf("deleted = %v, want %v", gone, tc.deleted)
			}
		})
	}
}

// TestRevertWaitsForTheRestore: a restore still writing into the copy
// (the process died mid-restore) is waited for before the copy is deleted.
func TestRevertWaitsForTheRestore(t *testing.T) {
	running := &velerov1.Restore{TypeMeta: metav1.TypeMeta{APIVersion: "velero.io/v1", Kind: "Restore"},
		ObjectMeta: metav1.ObjectMeta{Name: "run-1", Namespace: "velero"}, Status: velerov1.RestoreStatus{Phase: velerov1.RestorePhaseInProgress}}
	kube := fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop-copy", Labels: map[string]string{v1alpha1.LabelRun: "run-1"}}})
	dyn := dynamicWith(u(t, running))
	sc, err := Kind{Deps: Deps{Kube: kube, Dynamic: dyn}}.New(definition(params), "run-1")
	if err != nil {
		t.Fatal(err)
	}
	undo, _ := json.Marshal(Undo{Namespace: "shop-copy", Run: "run-1", VeleroNamespace: "velero", Restore: "run-1"})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := sc.Revert(ctx, v1alpha1.JournalEntry{ID: "1", Undo: undo}); err == nil || !strings.Contains(err.Error(), "wait for Velero restore velero/run-1 to end") {
		t.Fatalf("Revert with the restore in progress: %v", err)
	}
	if _, err := kube.CoreV1().Namespaces().Get(context.Background(), "shop-copy", metav1.GetOptions{}); err != nil {
		t.Fatalf("the copy was deleted while its restore still ran: %v", err)
	}
}

// TestCompare: what the backup lists for the source against the copy.
func TestCompare(t *testing.T) {
	fd := fake.NewClientset().Discovery().(*fakediscovery.FakeDiscovery)
	fd.Resources = []*metav1.APIResourceList{
		{GroupVersion: "v1", APIResources: []metav1.APIResource{
			{Name: "configmaps", Namespaced: true, Kind: "ConfigMap", Verbs: metav1.Verbs{"list"}},
			{Name: "pods", Namespaced: true, Kind: "Pod", Verbs: metav1.Verbs{"list"}},
			{Name: "events", Namespaced: true, Kind: "Event", Verbs: metav1.Verbs{"list"}},
			{Name: "namespaces", Namespaced: false, Kind: "Namespace", Verbs: metav1.Verbs{"list"}},
			{Name: "persistentvolumes", Namespaced: false, Kind: "PersistentVolume", Verbs: metav1.Verbs{"list"}}}},
		{GroupVersion: "apps/v1", APIResources: []metav1.APIResource{
			{Name: "deployments", Namespaced: true, Kind: "Deployment", Verbs: metav1.Verbs{"list"}}}},
		{GroupVersion: "batch/v1", APIResources: []metav1.APIResource{
			{Name: "cronjobs", Namespaced: true, Kind: "CronJob", Verbs: metav1.Verbs{"list"}}}},
	}
	scheme := runtime.NewScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	obj := func(apiVersion, kind, ns, name string) runtime.Object {
		return &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}, ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	}
	md := metadatafake.NewSimpleMetadataClient(scheme,
		obj("v1", "ConfigMap", "shop-copy", "prices"),
		obj("v1", "ConfigMap", "shop", "stock"), // the source's, not the copy's
		obj("apps/v1", "Deployment", "shop-copy", "web"))
	list := map[string][]string{
		"v1/ConfigMap":          {"shop/prices", "shop/stock", "billing/x"},
		"v1/Pod":                {"shop/web-1", "shop/web-2"},
		"v1/Event":              {"shop/e1"},
		"v1/Namespace":          {"shop"},
		"v1/PersistentVolume":   {"pv-1"},
		"apps/v1/Deployment":    {"shop/web"},
		"batch/v1/CronJob":      {"shop/mailer"},
		"example.com/v1/Widget": {"shop/w1", "shop/w2"},
	}
	c, err := compare(context.Background(), memory.NewMemCacheClient(fd), md, list, "shop", "shop-copy", "run-1", []string{"cronjobs.batch"})
	if err != nil {
		t.Fatal(err)
	}
	fails, finds := strings.Join(c.failures(), "\n"), strings.Join(c.findings(), "\n")
	for _, want := range []string{
		"in the backup but not restored (1): configmaps/stock",
		"this cluster does not serve example.com/v1/Widget (a CRD or API missing here): not restored (2): w1, w2",
	} {
		if !strings.Contains(fails, want) {
			t.Errorf("failures %q, want %q", fails, want)
		}
	}
	for _, want := range []string{
		"3 objects of the backup checked",
		"left to their controllers (remade under new names; the readiness wait covers them): pods 2",
		"cluster-scoped, not restored into the copy by design: persistentvolumes 1",
		"excluded by the drill (params.excludedResources): cronjobs.batch 1",
	} {
		if !strings.Contains(finds, want) {
			t.Errorf("findings %q, want %q", finds, want)
		}
	}
	if strings.Contains(fails+finds, "events") || strings.Contains(fails, "billing") {
		t.Errorf("events (never restored) or another namespace's objects counted: %q %q", fails, finds)
	}
}

// TestVeleroContents: the DownloadRequest is created, its signed URL
// (set by Velero's server, played here) fetched and the gzipped list decoded.
func TestVeleroContents(t *testing.T) {
	cases := []struct {
		name   string
		status int
		want   string
	}{
		{name: "the list", status: http.StatusOK},
		{name: "no list in the store", status: http.StatusNotFound, want: "backup b has no resource list in its storage location"},
		{name: "store error", status: http.StatusForbidden, want: "download backup b's resource list: 403 Forbidden"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.status != http.StatusOK {
					w.WriteHeader(tc.status)
					return
				}
				gz := gzip.NewWriter(w)
				_ = json.NewEncoder(gz).Encode(map[string][]string{"v1/ConfigMap": {"shop/prices"}})
				_ = gz.Close()
			}))
			defer srv.Close()
			dyn := dynamicWith()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			answered, stop := context.WithCancel(ctx)
			defer stop()
			// Velero's server: answer the request with a URL (again and
			// again: the fake's watch misses an update made between its
			// list and its watch).
			go func() {
				for answered.Err() == nil {
					list, err := dyn.Resource(DownloadRequestsGVR).Namespace("velero").List(ctx, metav1.ListOptions{})
					if err == nil && len(list.Items) == 1 {
						req := list.Items[0]
						target, _, _ := unstructured.NestedString(req.Object, "spec", "target", "kind")
						if target != string(velerov1.DownloadTargetKindBackupResourceList) {
							t.Errorf("download target %q", target)
						}
						_ = unstructured.SetNestedField(req.Object, srv.URL+"/b.json.gz", "status", "downloadURL")
						_, _ = dyn.Resource(DownloadRequestsGVR).Namespace("velero").Update(ctx, &req, metav1.UpdateOptions{})
					}
					time.Sleep(10 * time.Millisecond)
				}
			}()
			list, err := VeleroContents{nr.VeleroDownloads{Dynamic: dyn}}.BackupResourceList(ctx, "velero", "b")
			stop()
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %v, want %q", err, tc.want)
				}
				return
			}
			if err != nil || strings.Join(list["v1/ConfigMap"], ",") != "shop/prices" {
				t.Fatalf("list %v, %v", list, err)
			}
		})
	}
}

// TestLastCompletedBackup: the report's backup age is the newest Completed
// backup of the source in the drill's location, not any backup's.
func TestLastCompletedBackup(t *testing.T) {
	at := func(b *velerov1.Backup, done time.Time) *velerov1.Backup {
		b.Status.CompletionTimestamp = &metav1.Time{Time: done}
		return b
	}
	elsewhere := at(backupOf("elsewhere", velerov1.BackupPhaseCompleted, time.Minute, "shop"), now)
	elsewhere.Spec.StorageLocation = "default"
	dyn := dynamicWith(
		u(t, at(backupOf("old", velerov1.BackupPhaseCompleted, 2*time.Hour, "shop"), now.Add(-time.Hour))),
		u(t, at(backupOf("failed", velerov1.BackupPhasePartiallyFailed, time.Minute, "shop"), now)),
		u(t, at(backupOf("billing", velerov1.BackupPhaseCompleted, time.Minute, "billing"), now)),
		u(t, elsewhere))
	got, ok, err := LastCompletedBackup(context.Background(), dyn, definition(params).Spec)
	if err != nil || !ok || !got.Equal(now.Add(-time.Hour)) {
		t.Fatalf("LastCompletedBackup = %v %v %v, want %v", got, ok, err, now.Add(-time.Hour))
	}
	_, ok, err = LastCompletedBackup(context.Background(), dynamicWith(), definition(params).Spec)
	if err != nil || ok {
		t.Errorf("with no backups: ok %v, err %v", ok, err)
	}
}
