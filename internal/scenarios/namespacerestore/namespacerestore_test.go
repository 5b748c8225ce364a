package namespacerestore

import (
	"context"
	"strings"
	"testing"
	"time"

	goruntime "runtime"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery/cached/memory"
	fakediscovery "k8s.io/client-go/discovery/fake"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	"k8s.io/utils/ptr"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
)

func namespace(name string, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

func optedIn(name string) *corev1.Namespace {
	return namespace(name, map[string]string{v1alpha1.LabelAllowDisaster: "true"})
}

func unstructuredOf(t *testing.T, obj any) runtime.Object {
	t.Helper()
	u, err := ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func backup(name, schedule string, phase velerov1.BackupPhase, namespaces ...string) *velerov1.Backup {
	return &velerov1.Backup{
		TypeMeta:   metav1.TypeMeta{APIVersion: "velero.io/v1", Kind: "Backup"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "velero", Labels: map[string]string{velerov1.ScheduleNameLabel: schedule}},
		Spec:       velerov1.BackupSpec{IncludedNamespaces: namespaces},
		Status:     velerov1.BackupStatus{Phase: phase},
	}
}

func bsl(phase velerov1.BackupStorageLocationPhase) *velerov1.BackupStorageLocation {
	return &velerov1.BackupStorageLocation{
		TypeMeta:   metav1.TypeMeta{APIVersion: "velero.io/v1", Kind: "BackupStorageLocation"},
		ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "velero"},
		Spec:       velerov1.BackupStorageLocationSpec{Default: true, Provider: "aws"},
		Status:     velerov1.BackupStorageLocationStatus{Phase: phase},
	}
}

// TestPreflightRefusesWithoutWriting runs Preflight against fakes and checks
// that a refusal made no write call to either client.
func TestPreflightRefusesWithoutWriting(t *testing.T) {
	cases := []struct {
		name    string
		ns      *corev1.Namespace
		target  string
		velero  func(t *testing.T) []runtime.Object
		wantErr string
		refused bool
	}{
		{name: "namespace without opt-in label", ns: namespace("shop", nil), target: "shop",
			wantErr: "lacks the label drillbot.io/allow-disaster=true", refused: true},
		{name: "opt-in label not true", ns: namespace("shop", map[string]string{v1alpha1.LabelAllowDisaster: "yes"}), target: "shop",
			wantErr: "not opted in", refused: true},
		{name: "missing namespace", ns: optedIn("other"), target: "shop", wantErr: "does not exist", refused: true},
		{name: "protected namespace even when labelled", ns: optedIn("kube-system"), target: "kube-system", wantErr: "protected", refused: true},
		{name: "velero's own namespace", ns: optedIn("velero"), target: "velero", wantErr: "protected", refused: true},
		{name: "storage location unavailable", ns: optedIn("shop"), target: "shop",
			velero: func(t *testing.T) []runtime.Object {
				return []runtime.Object{unstructuredOf(t, bsl(velerov1.BackupStorageLocationPhaseUnavailable))}
			}, wantErr: `BackupStorageLocation default is "Unavailable"`},
		{name: "schedule without backups", ns: optedIn("shop"), target: "shop",
			velero: func(t *testing.T) []runtime.Object {
				return []runtime.Object{unstructuredOf(t, bsl(velerov1.BackupStorageLocationPhaseAvailable))}
			}, wantErr: "has no backups"},
		{name: "newest backup partially failed", ns: optedIn("shop"), target: "shop",
			velero: func(t *testing.T) []runtime.Object {
				old := backup("shop-daily-1", "shop-daily", velerov1.BackupPhaseCompleted, "shop")
				old.CreationTimestamp = metav1.Unix(1000, 0)
				newest := backup("shop-daily-2", "shop-daily", velerov1.BackupPhasePartiallyFailed, "shop")
				newest.CreationTimestamp = metav1.Unix(2000, 0)
				return []runtime.Object{unstructuredOf(t, bsl(velerov1.BackupStorageLocationPhaseAvailable)), unstructuredOf(t, old), unstructuredOf(t, newest)}
			}, wantErr: `backup shop-daily-2 is "PartiallyFailed", not Completed`},
		{name: "backup still running is skipped for the newest finished one", ns: optedIn("shop"), target: "shop",
			velero: func(t *testing.T) []runtime.Object {
				failed := backup("shop-daily-1", "shop-daily", velerov1.BackupPhaseFailed, "shop")
				failed.CreationTimestamp = metav1.Unix(1000, 0)
				running := backup("shop-daily-2", "shop-daily", velerov1.BackupPhaseInProgress, "shop")
				running.CreationTimestamp = metav1.Unix(2000, 0)
				return []runtime.Object{unstructuredOf(t, bsl(velerov1.BackupStorageLocationPhaseAvailable)), unstructuredOf(t, failed), unstructuredOf(t, running)}
			}, wantErr: `backup shop-daily-1 is "Failed"`},
		{name: "backup whose exclude glob takes the namespace", ns: optedIn("shop"), target: "shop",
			velero: func(t *testing.T) []runtime.Object {
				b := backup("b", "shop-daily", velerov1.BackupPhaseCompleted)
				b.Spec.ExcludedNamespaces = []string{"sh*"}
				return []runtime.Object{unstructuredOf(t, bsl(velerov1.BackupStorageLocationPhaseAvailable)), unstructuredOf(t, b)}
			}, wantErr: "does not include namespace shop"},
		{name: "backup of another namespace", ns: optedIn("shop"), target: "shop",
			velero: func(t *testing.T) []runtime.Object {
				return []runtime.Object{unstructuredOf(t, bsl(velerov1.BackupStorageLocationPhaseAvailable)),
					unstructuredOf(t, backup("b", "shop-daily", velerov1.BackupPhaseCompleted, "billing"))}
			}, wantErr: "does not include namespace shop"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kube := fake.NewClientset(tc.ns)
			var objs []runtime.Object
			if tc.velero != nil {
				objs = tc.velero(t)
			}
			dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
				BackupsGVR: "BackupList", RestoresGVR: "RestoreList", BSLGVR: "BackupStorageLocationList",
			}, objs...)
			def := drill.Definition{Name: "d", Spec: v1alpha1.DrillSpec{Target: v1alpha1.Target{Namespace: tc.target},
				Params: []byte(`{"backup":{"schedule":"shop-daily"}}`)}}
			sc, err := Kind{Deps: Deps{Kube: kube, Dynamic: dyn}}.New(def, "run-1")
			if err != nil {
				t.Fatal(err)
			}
			err = sc.Preflight(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Preflight error %v, want it to mention %q", err, tc.wantErr)
			}
			if engine.IsRefused(err) != tc.refused {
				t.Errorf("IsRefused = %v, want %v", engine.IsRefused(err), tc.refused)
			}
			for _, a := range append(kube.Actions(), dyn.Actions()...) {
				if v := a.GetVerb(); v != "get" && v != "list" && v != "watch" {
					t.Errorf("preflight wrote: %s %s", v, a.GetResource().Resource)
				}
			}
		})
	}
}

func TestNotReady(t *testing.T) {
	dep := func(name string, want, avail int32, gen, observed int64) *appsv1.Deployment {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: name, Generation: gen},
			Spec:       appsv1.DeploymentSpec{Replicas: ptr.To(want)},
			Status: appsv1.DeploymentStatus{ObservedGeneration: observed, Replicas: want, UpdatedReplicas: want,
				ReadyReplicas: avail, AvailableReplicas: avail},
		}
	}
	pod := func(name string, phase corev1.PodPhase, ready corev1.ConditionStatus) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.PodStatus{Phase: phase,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}}}}
	}
	cases := []struct {
		name string
		deps []*appsv1.Deployment
		sts  []*appsv1.StatefulSet
		ds   []*appsv1.DaemonSet
		pods []*corev1.Pod
		want string
	}{
		{name: "all ready", deps: []*appsv1.Deployment{dep("web", 3, 3, 1, 1)}, pods: []*corev1.Pod{pod("web-1", corev1.PodRunning, corev1.ConditionTrue)}},
		{name: "deployment short of replicas", deps: []*appsv1.Deployment{dep("web", 3, 2, 1, 1)}, want: "deployment/web (2/3 available)"},
		{name: "deployment status not yet observed", deps: []*appsv1.Deployment{dep("web", 3, 3, 2, 1)}, want: "deployment/web"},
		{name: "scaled to zero is ready", deps: []*appsv1.Deployment{dep("off", 0, 0, 1, 1)}},
		{name: "statefulset", sts: []*appsv1.StatefulSet{{ObjectMeta: metav1.ObjectMeta{Name: "db"}, Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](2)},
			Status: appsv1.StatefulSetStatus{ReadyReplicas: 1, AvailableReplicas: 1}}}, want: "statefulset/db (1/2 ready)"},
		{name: "daemonset", ds: []*appsv1.DaemonSet{{ObjectMeta: metav1.ObjectMeta{Name: "agent"},
			Status: appsv1.DaemonSetStatus{DesiredNumberScheduled: 2, NumberReady: 2, NumberAvailable: 1}}}, want: "daemonset/agent (2/2 ready)"},
		{name: "pod not ready", pods: []*corev1.Pod{pod("web-1", corev1.PodRunning, corev1.ConditionFalse)}, want: "pod/web-1 (Running)"},
		{name: "finished pods are ignored", pods: []*corev1.Pod{pod("job-1", corev1.PodSucceeded, corev1.ConditionFalse)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(NotReady(tc.deps, tc.sts, tc.ds, tc.pods), ", ")
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("NotReady = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestInventoryMissing(t *testing.T) {
	before := Inventory{"deployments.apps/web": {}, "configmaps/cfg": {}, "services/web": {}}
	after := Inventory{"services/web": {}, "configmaps/extra": {}}
	if got := strings.Join(before.Missing(after), ","); got != "configmaps/cfg,deployments.apps/web" {
		t.Errorf("Missing = %q", got)
	}
}

// A wait that ends by its deadline must fail: a false "recovered" would be
// false audit evidence.
func TestWaitWorkloadsReadyFailsWhenItsContextEnds(t *testing.T) {
	notReady := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](3)}, Status: appsv1.DeploymentStatus{AvailableReplicas: 1}}
	kube := fake.NewClientset(notReady)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Cancel once the wait has seen the deployment (its watch is open).
		for {
			watches := 0
			for _, a := range kube.Actions() {
				if a.GetVerb() == "watch" {
					watches++
				}
			}
			if watches == 4 { // deployments, statefulsets, daemonsets, pods
				time.Sleep(200 * time.Millisecond) // let the caches report synced
				cancel()
				return
			}
			goruntime.Gosched()
		}
	}()
	err := WaitWorkloadsReady(ctx, kube, "shop")
	if err == nil || !strings.Contains(err.Error(), "shop") {
		t.Fatalf("WaitWorkloadsReady = %v, want an error", err)
	}
}

// Recovery is seen when it happens, not when the phase deadline ends the
// wait: the wait must return by itself once everything is ready (a wait that
// blocked until its context ended inflated every RTO to the timeout).
func TestWaitWorkloadsReadyReturnsOnceReady(t *testing.T) {
	ready := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"},
		Spec:   appsv1.DeploymentSpec{Replicas: ptr.To[int32](1)},
		Status: appsv1.DeploymentStatus{Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1}}
	done := make(chan error, 1)
	go func() { done <- WaitWorkloadsReady(context.Background(), fake.NewClientset(ready), "shop") }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute): // a watchdog, not a measurement
		t.Fatal("WaitWorkloadsReady did not return although everything is ready")
	}
}

// TestRevertOfADeletionThatNeverHappened: the run stopped between its
// journal entry and the deletion; the same namespace (same UID) is there,
// so the undo restores nothing (a restore would resurrect objects removed
// since the backup).
func TestRevertOfADeletionThatNeverHappened(t *testing.T) {
	kc := fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", UID: "uid-1"}})
	dc := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{RestoresGVR: "RestoreList"})
	s := &scenario{deps: Deps{Kube: kc, Dynamic: dc}}
	e := v1alpha1.JournalEntry{ID: "1-delete-namespace", Undo: []byte(`{"namespace":"shop","veleroNamespace":"velero","backup":"b","restore":"r","uid":"uid-1"}`)}
	if err := s.Revert(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if n := len(dc.Actions()); n != 0 {
		t.Errorf("%d Velero calls (%v): a restore of a namespace that was never deleted", n, dc.Actions())
	}
}

// TestVerifyWithNothingComparedIsNotAPass is EVIDENCE rule 1 as the
// adversary writes it: a namespace that held only what the cluster and
// drillbot make by themselves (the default ServiceAccount, the root CA
// ConfigMap, the RPO marker) comes back "complete" whether or not Velero
// restored anything. No comparison of application objects, no PASS.
func TestVerifyWithNothingComparedIsNotAPass(t *testing.T) {
	clusterMade := Inventory{"serviceaccounts/default": {}, "configmaps/kube-root-ca.crt": {}, "configmaps/" + MarkerName: {}}
	cases := []struct {
		name             string
		before           Inventory
		restoredBy       string // the restore-name label of what is back
		wantInconclusive string
		wantFinding      string
	}{
		{name: "empty namespace", before: Inventory{}, wantInconclusive: "no application object"},
		{name: "only what the cluster and drillbot make", before: clusterMade, wantInconclusive: "no application object"},
		{name: "an application object is compared", before: Inventory{"deployments.apps/web": {}, "serviceaccounts/default": {}},
			restoredBy: "run-1", wantFinding: "1 application objects compared with the inventory taken before the disaster: 1 back by Velero restore run-1"},
		// Rule 2: back, but not by this run's restore (an operator that
		// re-creates its objects, another run's restore).
		{name: "application objects back, none by this run's restore", before: Inventory{"deployments.apps/web": {}},
			wantInconclusive: "nothing shows this run's restore brought them back"},
		{name: "application objects back by another restore", before: Inventory{"deployments.apps/web": {}},
			restoredBy: "run-0", wantInconclusive: "carries velero.io/restore-name=run-1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// After the restore the namespace holds what it held before:
			// the comparison finds nothing missing in every case.
			var objs []runtime.Object
			for k := range tc.before {
				res, name, _ := strings.Cut(k, "/")
				gvk := map[string]schema.GroupVersionKind{
					"serviceaccounts":  {Version: "v1", Kind: "ServiceAccount"},
					"configmaps":       {Version: "v1", Kind: "ConfigMap"},
					"deployments.apps": {Group: "apps", Version: "v1", Kind: "Deployment"},
				}[res]
				var labels map[string]string
				if tc.restoredBy != "" {
					labels = map[string]string{velerov1.RestoreNameLabel: tc.restoredBy}
				}
				objs = append(objs, &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind},
					ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", Labels: labels}})
			}
			s := verifyScenario(t, tc.before, objs...)
			v, err := s.Verify(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(v.Failures) > 0 {
				t.Fatalf("failures %v: nothing is missing", v.Failures)
			}
			if tc.wantInconclusive != "" && !strings.Contains(v.Inconclusive, tc.wantInconclusive) {
				t.Errorf("inconclusive %q, want it to mention %q (a comparison of nothing is no evidence)", v.Inconclusive, tc.wantInconclusive)
			}
			if tc.wantInconclusive == "" && v.Inconclusive != "" {
				t.Errorf("inconclusive %q with an application object compared", v.Inconclusive)
			}
			if tc.wantFinding != "" && !strings.Contains(strings.Join(v.Findings, "\n"), tc.wantFinding) {
				t.Errorf("findings %q, want one mentioning %q", v.Findings, tc.wantFinding)
			}
		})
	}
}

// verifyScenario is a scenario whose preflight inventory was before, over
// a cluster (discovery, metadata, kube) that holds objs in namespace shop.
func verifyScenario(t *testing.T, before Inventory, objs ...runtime.Object) *scenario {
	t.Helper()
	b := backup("b", "shop-daily", velerov1.BackupPhaseCompleted, "shop")
	b.Status.StartTimestamp = &metav1.Time{Time: time.Unix(1000, 0)}
	return &scenario{deps: censusDeps(t, fake.NewClientset(), resourceList{}, objs...), ns: "shop", run: "run-1", inventory: before, backup: b}
}

// censusDeps are the dependencies of a scenario over kc, whose namespaced
// kinds are ConfigMaps, ServiceAccounts and Deployments, and whose objects
// (as metadata) are objs; list answers for the backup's contents.
func censusDeps(t *testing.T, kc *fake.Clientset, list ResourceLister, objs ...runtime.Object) Deps {
	t.Helper()
	fd := kc.Discovery().(*fakediscovery.FakeDiscovery)
	fd.Resources = []*metav1.APIResourceList{
		{GroupVersion: "v1", APIResources: []metav1.APIResource{
			{Name: "configmaps", Namespaced: true, Kind: "ConfigMap", Verbs: veleroServed},
			{Name: "serviceaccounts", Namespaced: true, Kind: "ServiceAccount", Verbs: veleroServed}}},
		{GroupVersion: "apps/v1", APIResources: []metav1.APIResource{
			{Name: "deployments", Namespaced: true, Kind: "Deployment", Verbs: veleroServed}}},
	}
	scheme := runtime.NewScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return Deps{Kube: kc, Discovery: memory.NewMemCacheClient(fd), Metadata: metadatafake.NewSimpleMetadataClient(scheme, objs...), Contents: list}
}
