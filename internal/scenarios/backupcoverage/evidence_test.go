package backupcoverage

// Tests written as the adversary would: a
// namespace that looks covered while no backup of this cluster holds it,
// or holds all of it; and, the other way (rule 8), a namespace fully
// covered that must stay compliant.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	nr "github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
)

// world is what the check reads: namespaces and PVCs, Velero's objects.
type world struct {
	kube   []runtime.Object
	velero []any
	// volumes is each backup's volume information (Velero's record of its
	// volumes' data); a backup not in it has none stored.
	volumes map[string][]nr.VolumeInfo
}

// volumeRecords is a fake VolumeReader over world.volumes.
type volumeRecords struct {
	infos map[string][]nr.VolumeInfo
	err   error
	reads []string
}

func (v *volumeRecords) BackupVolumeInfos(_ context.Context, _, backup string) ([]nr.VolumeInfo, error) {
	v.reads = append(v.reads, backup)
	if v.err != nil {
		return nil, v.err
	}
	infos, ok := v.infos[backup]
	if !ok {
		return nil, fmt.Errorf("backup %s's volume information: %w", backup, nr.ErrNotStored)
	}
	return infos, nil
}

// boundPVC is a PVC of namespace bound to a volume, of size.
func boundPVC(namespace, name, size string) *corev1.PersistentVolumeClaim {
	p := pvc(namespace, name)
	p.Spec.VolumeName = "pv-" + name
	p.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}
	return p
}

// shop is a production namespace created a day ago.
func shop() *corev1.Namespace {
	n := ns("shop", "production")
	n.CreationTimestamp = metav1.NewTime(now.Add(-24 * time.Hour))
	return n
}

func pvc(namespace, name string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}}
}

// held is a backup of sched in location loc with the given spec.
func held(name, sched, loc string, age time.Duration, spec velerov1.BackupSpec) velerov1.Backup {
	b := backup(name, sched, velerov1.BackupPhaseCompleted, age)
	spec.StorageLocation = loc
	b.Spec = spec
	return b
}

func readOnly(name string) velerov1.BackupStorageLocation {
	l := location(name, false, velerov1.BackupStorageLocationPhaseAvailable)
	l.Spec.AccessMode = velerov1.BackupStorageLocationAccessModeReadOnly
	return l
}

// runCheck runs the whole check against fakes and returns its verification.
func runCheck(t *testing.T, params string, w world) engine.Verification {
	t.Helper()
	kube := fake.NewClientset(w.kube...)
	var objs []runtime.Object
	for _, o := range w.velero {
		u, err := nr.ToUnstructured(o)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, u)
	}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		nr.BackupsGVR: "BackupList", nr.SchedulesGVR: "ScheduleList", nr.BSLGVR: "BackupStorageLocationList", nr.RestoresGVR: "RestoreList"}, objs...)
	spec := v1alpha1.DrillSpec{Scenario: Name, Objectives: v1alpha1.Objectives{RTO: "1m", RPO: "1h"}, Params: []byte(params)}
	if errs := (Kind{}).ValidateParams(spec, field.NewPath("spec", "params")); len(errs) > 0 {
		t.Fatalf("params %s: %v", params, errs)
	}
	def := drill.Definition{Name: "cov", Spec: spec}
	def.FromSpec()
	sc, err := Kind{Deps: Deps{Kube: kube, Dynamic: dyn, Volumes: &volumeRecords{infos: w.volumes}, Clock: clocktesting.NewFakePassiveClock(now)}}.New(def, "run-1")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := sc.Recover(ctx, marks{}); err != nil {
		t.Fatal(err)
	}
	v, err := sc.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range append(kube.Actions(), dyn.Actions()...) {
		if a.GetVerb() != "list" {
			t.Errorf("the check did %s %s", a.GetVerb(), a.GetResource().Resource)
		}
	}
	return v
}

const production = `{"namespaces":{"matchLabels":{"env":"production"}}}`

// TestCoverageEvidence: each namespace is judged by the backups of this
// cluster that hold it, and hold all of it.
func TestCoverageEvidence(t *testing.T) {
	rw := location("default", true, velerov1.BackupStorageLocationPhaseAvailable)
	all := velerov1.BackupSpec{IncludedNamespaces: []string{"*"}}
	hourly := schedule("hourly", false, all)
	// A backup as Velero 1.18 leaves it: includes normalized to "*", CSI
	// snapshots auto-excluded.
	real := velerov1.BackupSpec{IncludedNamespaces: []string{"*"},
		ExcludedResources: []string{"volumesnapshots.snapshot.storage.k8s.io", "volumesnapshotcontents.snapshot.storage.k8s.io"}}
	cases := []struct {
		name      string
		params    string
		w         world
		compliant int32
		failures  []string // each must be in the failures; none: no failure
		findings  []string
	}{
		// Case 4: backups that do not hold the namespace.
		{name: "schedule edited after its newest backup", w: world{kube: []runtime.Object{shop()}, velero: []any{&rw, &hourly,
			ptr.To(held("hourly-1", "hourly", "default", 10*time.Minute, velerov1.BackupSpec{IncludedNamespaces: []string{"billing"}}))}},
			failures: []string{"namespace shop: no Completed backup of schedule hourly (nor any other) in this cluster's storage locations holds it"}},
		{name: "another cluster's backup synced through a ReadOnly location", w: world{kube: []runtime.Object{shop()}, velero: []any{&rw, ptr.To(readOnly("shared")), &hourly,
			ptr.To(held("hourly-1", "hourly", "shared", 10*time.Minute, all))}},
			failures: []string{"namespace shop: no Completed backup", "hourly-1 (storage location shared is ReadOnly: another cluster's)"}},
		{name: "backup in a location this cluster no longer has", w: world{kube: []runtime.Object{shop()}, velero: []any{&rw, &hourly,
			ptr.To(held("hourly-1", "hourly", "gone", 10*time.Minute, all))}},
			failures: []string{"namespace shop: no Completed backup", "hourly-1 (storage location gone not found)"}},
		{name: "namespace created after its newest backup started", w: world{kube: []runtime.Object{func() runtime.Object {
			n := shop()
			n.CreationTimestamp = metav1.NewTime(now.Add(-5 * time.Minute))
			return n
		}()}, velero: []any{&rw, &hourly, ptr.To(held("hourly-1", "hourly", "default", 10*time.Minute, all))}},
			failures: []string{"namespace shop: no Completed backup", "hourly-1 (started before the namespace was created"}},
		{name: "Velero's glob: alternatives exclude it", w: world{kube: []runtime.Object{shop()}, velero: []any{&rw, &hourly,
			ptr.To(held("hourly-1", "hourly", "default", 10*time.Minute, velerov1.BackupSpec{ExcludedNamespaces: []string{"{shop,billing}"}}))}},
			failures: []string{"namespace shop: no Completed backup"}},
		{name: "Velero's glob: a negated class excludes it", w: world{kube: []runtime.Object{shop()}, velero: []any{&rw, &hourly,
			ptr.To(held("hourly-1", "hourly", "default", 10*time.Minute, velerov1.BackupSpec{ExcludedNamespaces: []string{"[!x]hop"}}))}},
			failures: []string{"namespace shop: no Completed backup"}},
		{name: "Velero's glob includes it", w: world{kube: []runtime.Object{shop()}, velero: []any{&rw, &hourly,
			ptr.To(held("hourly-1", "hourly", "default", 10*time.Minute, velerov1.BackupSpec{IncludedNamespaces: []string{"s[a-z]o?", "billing"}}))}},
			compliant: 1, findings: []string{"namespace shop: schedule hourly, newest Completed backup hourly-1, 10m0s old"}},
		{name: "a newer backup in a ReadOnly location is not counted, this cluster's own is", w: world{kube: []runtime.Object{shop()}, velero: []any{&rw, ptr.To(readOnly("shared")), &hourly,
			ptr.To(held("hourly-2", "hourly", "shared", 5*time.Minute, all)), ptr.To(held("hourly-1", "hourly", "default", 30*time.Minute, all))}},
			compliant: 1, findings: []string{"newest Completed backup hourly-1, 30m0s old", "not counted: hourly-2 (storage location shared is ReadOnly: another cluster's)"}},

		// Case 12: partial and data-less backups.
		{name: "label selector", w: world{kube: []runtime.Object{shop()}, velero: []any{&rw,
			ptr.To(schedule("hourly", false, velerov1.BackupSpec{LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}})),
			ptr.To(held("hourly-1", "hourly", "default", 10*time.Minute, velerov1.BackupSpec{LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}}))}},
			failures: []string{"namespace shop: newest Completed backup hourly-1 leaves out: objects not matching labelSelector app=db",
				"namespace shop: schedule hourly leaves out: objects not matching labelSelector app=db"}},
		{name: "or label selectors", w: world{kube: []runtime.Object{shop()}, velero: []any{&rw, &hourly,
			ptr.To(held("hourly-1", "hourly", "default", 10*time.Minute, velerov1.BackupSpec{OrLabelSelectors: []*metav1.LabelSelector{
				{MatchLabels: map[string]string{"app": "db"}}, {MatchLabels: map[string]string{"app": "web"}}}}))}},
			failures: []string{"leaves out: objects not matching orLabelSelectors app=db or app=web"}},
		{name: "secrets excluded", w: world{kube: []runtime.Object{shop()}, velero: []any{&rw, &hourly,
			ptr.To(held("hourly-1", "hourly", "default", 10*time.Minute, velerov1.BackupSpec{ExcludedResources: []string{"secrets", "events"}}))}},
			failures: []string{"namespace shop: newest Completed backup hourly-1 leaves out: secrets (excludedResources)"}},
		{name: "only some resources", w: world{kube: []runtime.Object{shop()}, velero: []any{&rw, &hourly,
			ptr.To(held("hourly-1", "hourly", "default", 10*time.Minute, velerov1.BackupSpec{IncludedNamespaceScopedResources: []string{"configmaps", "deployments"}}))}},
			failures: []string{"leaves out: every resource but configmaps, deployments (includedNamespaceScopedResources)"}},
		{name: "volume data: skipped by Velero, a bound PVC", w: world{kube: []runtime.Object{shop(), boundPVC("shop", "data-db-0", "1Gi")}, velero: []any{&rw, &hourly,
			ptr.To(held("hourly-1", "hourly", "default", 10*time.Minute, all))},
			volumes: map[string][]nr.VolumeInfo{"hourly-1": {{PVCName: "data-db-0", PVCNamespace: "shop", PVName: "pv-data-db-0", Skipped: true, SkippedReason: "no applicable volumesnapshotter found"}}}},
			failures: []string{"namespace shop: newest Completed backup hourly-1 leaves out: the data of PVC data-db-0 (1Gi): Velero skipped its data: no applicable volumesnapshotter found"}},
		{name: "volume data: a bound PVC, a backup without volume information", w: world{kube: []runtime.Object{shop(), boundPVC("shop", "data-db-0", "1Gi")}, velero: []any{&rw, &hourly,
			ptr.To(held("hourly-1", "hourly", "default", 10*time.Minute, all))}},
			failures: []string{"leaves out: the data of PVC data-db-0 (the backup has no volume information, taken before Velero 1.13: not known to hold it)"}},
		{name: "volume data: no snapshots, no PVC to hold", w: world{kube: []runtime.Object{shop()}, velero: []any{&rw, &hourly,
			ptr.To(held("hourly-1", "hourly", "default", 10*time.Minute, velerov1.BackupSpec{SnapshotVolumes: ptr.To(false)}))}},
			compliant: 1},
		{name: "volume data: an unbound PVC holds nothing", w: world{kube: []runtime.Object{shop(), pvc("shop", "data-db-0")}, velero: []any{&rw, &hourly,
			ptr.To(held("hourly-1", "hourly", "default", 10*time.Minute, velerov1.BackupSpec{SnapshotVolumes: ptr.To(false)}))}},
			compliant: 1},
		{name: "volume data: file-system backup Completed", w: world{kube: []runtime.Object{shop(), boundPVC("shop", "data-db-0", "1Gi")}, velero: []any{&rw, &hourly,
			ptr.To(held("hourly-1", "hourly", "default", 10*time.Minute, velerov1.BackupSpec{SnapshotVolumes: ptr.To(false)}))},
			volumes: map[string][]nr.VolumeInfo{"hourly-1": {{PVCName: "data-db-0", PVCNamespace: "shop", PVName: "pv-data-db-0", BackupMethod: "PodVolumeBackup", Result: "succeeded",
				PVBInfo: &nr.PodVolumeInfo{VolumeName: "data", PodName: "db-0", PodNamespace: "shop", Phase: "Completed"}}}}},
			compliant: 1},
		{name: "volume data: the newest backup lacks it, an older one within the RPO holds it", w: world{kube: []runtime.Object{shop(), boundPVC("shop", "data-db-0", "1Gi")}, velero: []any{&rw, &hourly,
			ptr.To(held("hourly-2", "hourly", "default", 10*time.Minute, all)), ptr.To(held("hourly-1", "hourly", "default", 40*time.Minute, all))},
			volumes: map[string][]nr.VolumeInfo{
				"hourly-2": {{PVCName: "data-db-0", PVCNamespace: "shop", PVName: "pv-data-db-0", BackupMethod: "PodVolumeBackup", Result: "failed", PVBInfo: &nr.PodVolumeInfo{Phase: "Failed"}}},
				"hourly-1": {{PVCName: "data-db-0", PVCNamespace: "shop", PVName: "pv-data-db-0", BackupMethod: "CSISnapshot", SnapshotDataMoved: true, Result: "succeeded"}}}},
			compliant: 1, findings: []string{"newest Completed backup holding all of it, hourly-1, 40m0s old",
				`newer backup hourly-2 leaves out: the data of PVC data-db-0 (1Gi): its PodVolumeBackup Failed did not succeed (result "failed")`}},
		{name: "schedule that will back no volume data up", w: world{kube: []runtime.Object{shop(), boundPVC("shop", "data-db-0", "1Gi")}, velero: []any{&rw,
			ptr.To(schedule("hourly", false, velerov1.BackupSpec{SnapshotVolumes: ptr.To(false), DefaultVolumesToFsBackup: ptr.To(false)})),
			ptr.To(held("hourly-1", "hourly", "default", 10*time.Minute, all))},
			volumes: map[string][]nr.VolumeInfo{"hourly-1": {{PVCName: "data-db-0", PVCNamespace: "shop", PVName: "pv-data-db-0", BackupMethod: "NativeSnapshot", Result: "succeeded"}}}},
			failures: []string{"namespace shop: schedule hourly leaves out: the data of PVC data-db-0 (snapshotVolumes false, defaultVolumesToFsBackup not true"}},
		{name: "a real Velero backup is complete", w: world{kube: []runtime.Object{shop(), pvc("shop", "data-db-0")}, velero: []any{&rw, &hourly,
			ptr.To(held("hourly-1", "hourly", "default", 10*time.Minute, real))}},
			compliant: 1},
		{name: "schedule to a ReadOnly location", w: world{kube: []runtime.Object{shop()}, velero: []any{&rw, ptr.To(readOnly("shared")),
			ptr.To(schedule("hourly", false, velerov1.BackupSpec{StorageLocation: "shared"})),
			ptr.To(held("hourly-1", "hourly", "default", 10*time.Minute, all))}},
			failures: []string{"namespace shop: schedule hourly writes to storage location shared, which is ReadOnly: Velero refuses every new backup there"}},
		{name: "schedule edited to leave out secrets after a complete backup", w: world{kube: []runtime.Object{shop()}, velero: []any{&rw,
			ptr.To(schedule("hourly", false, velerov1.BackupSpec{ExcludedResources: []string{"secrets"}})),
			ptr.To(held("hourly-1", "hourly", "default", 10*time.Minute, all))}},
			failures: []string{"namespace shop: schedule hourly leaves out: secrets (excludedResources)"}},
		{name: "a newer partial backup, an older complete one within the RPO", w: world{kube: []runtime.Object{shop()}, velero: []any{&rw, &hourly,
			ptr.To(held("manual-1", "", "default", 5*time.Minute, velerov1.BackupSpec{IncludedResources: []string{"configmaps"}})),
			ptr.To(held("hourly-1", "hourly", "default", 30*time.Minute, all))}},
			compliant: 1, findings: []string{"newest Completed backup holding all of it, hourly-1, 30m0s old", "newer backup manual-1 leaves out: every resource but configmaps (includedResources)"}},
		{name: "a newer partial backup, the complete one beyond the RPO", w: world{kube: []runtime.Object{shop()}, velero: []any{&rw, &hourly,
			ptr.To(held("hourly-2", "hourly", "default", 5*time.Minute, velerov1.BackupSpec{IncludedResources: []string{"configmaps"}})),
			ptr.To(held("hourly-1", "hourly", "default", 3*time.Hour, all))}},
			failures: []string{"namespace shop: newest Completed backup holding all of it, hourly-1, started 3h0m0s ago, beyond the RPO target 1h0m0s"}},
		{name: "partial, accepted by name", params: `{"namespaces":{"matchLabels":{"env":"production"}},"acceptPartial":[{"namespace":"shop","reason":"stateless: only its config matters"}]}`,
			w: world{kube: []runtime.Object{shop()}, velero: []any{&rw,
				ptr.To(schedule("hourly", false, velerov1.BackupSpec{IncludedResources: []string{"configmaps"}})),
				ptr.To(held("hourly-1", "hourly", "default", 10*time.Minute, velerov1.BackupSpec{IncludedResources: []string{"configmaps"}}))}},
			compliant: 1, findings: []string{"namespace shop: backup hourly-1 leaves out: every resource but configmaps (includedResources); accepted (acceptPartial): stateless: only its config matters"}},
		{name: "accepting a partial backup accepts no ReadOnly location", params: `{"namespaces":{"matchLabels":{"env":"production"}},"acceptPartial":[{"namespace":"shop","reason":"config only"}]}`,
			w: world{kube: []runtime.Object{shop()}, velero: []any{&rw, ptr.To(readOnly("shared")), &hourly,
				ptr.To(held("hourly-1", "hourly", "shared", 10*time.Minute, all))}},
			failures: []string{"namespace shop: no Completed backup"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			params := tc.params
			if params == "" {
				params = production
			}
			v := runCheck(t, params, tc.w)
			fails, finds := strings.Join(v.Failures, "\n"), strings.Join(v.Findings, "\n")
			if len(tc.failures) == 0 && fails != "" {
				t.Errorf("failures:\n%s\nwant none", fails)
			}
			for _, w := range tc.failures {
				if !strings.Contains(fails, w) {
					t.Errorf("failures:\n%s\nwant %q", fails, w)
				}
			}
			for _, w := range tc.findings {
				if !strings.Contains(finds, w) {
					t.Errorf("findings:\n%s\nwant %q", finds, w)
				}
			}
			if v.Inconclusive != "" || v.Posture == nil || v.Posture.Compliant != tc.compliant || v.Posture.Total != 1 {
				t.Errorf("posture %+v (inconclusive %q), want %d of 1 compliant", v.Posture, v.Inconclusive, tc.compliant)
			}
			if tc.compliant == 1 && v.DataTimestamp == nil {
				t.Errorf("a compliant namespace, no RPO measured (%s)", v.RPOSource)
			}
		})
	}
}

// TestNothingSelected: a selector that matches no namespace is no PASS
// (rule 1), whatever backups there are.
func TestNothingSelected(t *testing.T) {
	rw := location("default", true, velerov1.BackupStorageLocationPhaseAvailable)
	hourly := schedule("hourly", false, velerov1.BackupSpec{})
	v := runCheck(t, production, world{kube: []runtime.Object{ns("dev", "staging")},
		velero: []any{&rw, &hourly, ptr.To(held("hourly-1", "hourly", "default", time.Minute, velerov1.BackupSpec{}))}})
	if v.Inconclusive == "" || len(v.Failures) > 0 || v.DataTimestamp != nil {
		t.Fatalf("verification %+v, want INCONCLUSIVE: nothing to check", v)
	}
}

// TestValidateAcceptPartial: each accepted namespace is named, with a
// reason, once.
func TestValidateAcceptPartial(t *testing.T) {
	cases := []struct{ name, accept, want string }{
		{name: "valid", accept: `[{"namespace":"shop","reason":"config only"}]`},
		{name: "no reason", accept: `[{"namespace":"shop"}]`, want: "spec.params.acceptPartial[0].reason: Required value"},
		{name: "blank reason", accept: `[{"namespace":"shop","reason":"  "}]`, want: "spec.params.acceptPartial[0].reason: Required value"},
		{name: "no namespace", accept: `[{"reason":"x"}]`, want: "spec.params.acceptPartial[0].namespace: Required value"},
		{name: "not a namespace name", accept: `[{"namespace":"Shop*","reason":"x"}]`, want: "spec.params.acceptPartial[0].namespace: Invalid value"},
		{name: "twice", accept: `[{"namespace":"shop","reason":"x"},{"namespace":"shop","reason":"y"}]`, want: "spec.params.acceptPartial[1].namespace: Duplicate value"},
		{name: "unknown field", accept: `[{"namespace":"shop","reason":"x","resources":["secrets"]}]`, want: "spec.params.acceptPartial[0].resources: Forbidden: unknown field"},
		{name: "a bare name", accept: `["shop"]`, want: "spec.params.acceptPartial"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := v1alpha1.DrillSpec{Scenario: Name, Objectives: v1alpha1.Objectives{RTO: "1m", RPO: "1h"},
				Params: []byte(`{"namespaces":{"matchLabels":{"env":"production"}},"acceptPartial":` + tc.accept + `}`)}
			err := Kind{}.ValidateParams(spec, field.NewPath("spec", "params")).ToAggregate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("error %v, want none", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestVolumeInformationUnreadable: a backup's record of its volumes that
// cannot be read is no evidence either way (rule 5): the namespaces it
// speaks for are not judged, INCONCLUSIVE naming the error (the review's
// TestReviewUnreadableVolumeRecordMasksDefiniteFailures: what is found
// elsewhere still FAILs); each backup is read once.
func TestVolumeInformationUnreadable(t *testing.T) {
	rw := location("default", true, velerov1.BackupStorageLocationPhaseAvailable)
	all := velerov1.BackupSpec{IncludedNamespaces: []string{"*"}}
	objs := []runtime.Object{}
	for _, o := range []any{&rw, ptr.To(schedule("hourly", false, all)), ptr.To(held("hourly-1", "hourly", "default", 10*time.Minute, all))} {
		u, err := nr.ToUnstructured(o)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, u)
	}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		nr.BackupsGVR: "BackupList", nr.SchedulesGVR: "ScheduleList", nr.BSLGVR: "BackupStorageLocationList", nr.RestoresGVR: "RestoreList"}, objs...)
	billing := ns("billing", "production")
	billing.CreationTimestamp = metav1.NewTime(now.Add(-24 * time.Hour))
	kube := fake.NewClientset(shop(), billing, boundPVC("shop", "data-db-0", "1Gi"), boundPVC("billing", "ledger", "2Gi"))
	def := drill.Definition{Name: "cov", Spec: v1alpha1.DrillSpec{Scenario: Name, Objectives: v1alpha1.Objectives{RTO: "1m", RPO: "1h"}, Params: []byte(production)}}
	def.FromSpec()
	for _, tc := range []struct {
		name string
		err  error
	}{{"read fails", errors.New("download backup hourly-1's volume information: connection refused")}, {"read succeeds", nil}} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &volumeRecords{err: tc.err, infos: map[string][]nr.VolumeInfo{"hourly-1": {
				{PVCName: "data-db-0", PVCNamespace: "shop", PVName: "pv-data-db-0", BackupMethod: "PodVolumeBackup", Result: "succeeded"},
				{PVCName: "ledger", PVCNamespace: "billing", PVName: "pv-ledger", BackupMethod: "PodVolumeBackup", Result: "succeeded"}}}}
			sc, err := Kind{Deps: Deps{Kube: kube, Dynamic: dyn, Volumes: rec, Clock: clocktesting.NewFakePassiveClock(now)}}.New(def, "run-1")
			if err != nil {
				t.Fatal(err)
			}
			if err := sc.Recover(context.Background(), marks{}); err != nil {
				t.Fatal(err)
			}
			if tc.err != nil {
				v, err := sc.Verify(context.Background())
				if err != nil || len(v.Failures) > 0 || !strings.Contains(v.Inconclusive, "connection refused") || v.Posture.Compliant != 0 {
					t.Fatalf("failures %q (%v), inconclusive %q, posture %+v: want no namespace judged, INCONCLUSIVE naming the error", v.Failures, err, v.Inconclusive, v.Posture)
				}
				return
			}
			if len(rec.reads) != 1 {
				t.Errorf("volume information read for %v, want hourly-1 once for both namespaces", rec.reads)
			}
			v, err := sc.Verify(context.Background())
			if err != nil || len(v.Failures) > 0 || v.Posture.Compliant != 2 {
				t.Fatalf("failures %q (%v), posture %+v: want both compliant", v.Failures, err, v.Posture)
			}
		})
	}
}
