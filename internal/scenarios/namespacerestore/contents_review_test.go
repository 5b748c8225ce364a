package namespacerestore

// Adversarial review of the backup-contents evidence (contents.go): the
// check that, before the namespace is deleted, every object of it is in
// the backup's resource list, or newer than the backup (the RPO window).
// Every TestReview* below but the ones named TestReviewGuard* fails on the
// change as reviewed: each is a defect. TestReviewGuard* pass: they pin
// what was probed and found sound.

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery/cached/memory"
	fakediscovery "k8s.io/client-go/discovery/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/drillbot-io/drillbot/internal/engine"
)

// longAgo is when the application's objects were made: long before any
// backup of these tests.
var longAgo = started.Add(-30 * 24 * time.Hour)

// shopHeld is a resource list holding shop's prices ConfigMap and web
// Deployment, and the namespace itself.
func shopHeld() map[string][]string {
	return map[string][]string{
		"v1/ConfigMap":       {"shop/prices"},
		"apps/v1/Deployment": {"shop/web"},
		"v1/Namespace":       {"shop"},
	}
}

// shopObjects are the objects shopHeld holds, made long ago, and more.
func shopObjects(more ...runtime.Object) []runtime.Object {
	return append([]runtime.Object{
		object("v1", "ConfigMap", "prices", longAgo),
		object("apps/v1", "Deployment", "web", longAgo),
	}, more...)
}

// serve adds a namespaced kind to the discovery of s's cluster.
func serve(s *scenario, groupVersion string, r metav1.APIResource) {
	fd := s.deps.Kube.Discovery().(*fakediscovery.FakeDiscovery)
	for _, l := range fd.Resources {
		if l.GroupVersion == groupVersion {
			l.APIResources = append(l.APIResources, r)
			return
		}
	}
	fd.Resources = append(fd.Resources, &metav1.APIResourceList{GroupVersion: groupVersion, APIResources: []metav1.APIResource{r}})
}

// injectDeleted runs Inject and reports whether the namespace was deleted.
func injectDeleted(t *testing.T, s *scenario) (bool, error) {
	t.Helper()
	var j journal
	err := s.Inject(context.Background(), &j)
	kube := s.deps.Kube.(interface{ Actions() []k8stesting.Action })
	for _, a := range kube.Actions() {
		if a.GetVerb() == "delete" && a.GetResource().Resource == "namespaces" {
			return true, err
		}
	}
	if len(j.entries) > 0 {
		t.Errorf("not deleted, yet the journal holds %v", j.entries)
	}
	return false, err
}

// TestReviewClockSkewBetweenVeleroAndTheAPIServer: an object's
// creationTimestamp is stamped by the API server's clock, the backup's
// status.startTimestamp by Velero's (backup_controller.go: b.clock.Now()).
// LeftOut compares the two directly (EVIDENCE rule 4: one clock decides).
// The Backup object's own metadata.creationTimestamp is on the API
// server's clock and no later than the backup's real start; it shows the
// disagreement, and the code ignores it.
//
//   - Velero's clock behind: an object made five minutes before the Backup
//     object even existed, and left out by the backup's filters, is called
//     "newer than the backup" (the RPO window): the namespace is deleted
//     and the object lost, named only as a finding (rule 7).
//   - Velero's clock ahead: an object made after the Backup object was
//     created, not in the backup because it is newer, is called left out
//     and the drill is refused (rule 8: worse than the truth).
func TestReviewClockSkewBetweenVeleroAndTheAPIServer(t *testing.T) {
	cases := []struct {
		name          string
		backupCreated time.Time // Backup metadata.creationTimestamp: the API server's clock
		flagsCreated  time.Time // the object's: the API server's clock
		refused       bool
	}{
		{name: "velero 10m behind: an object older than the Backup object is not the window",
			backupCreated: started.Add(10 * time.Minute), flagsCreated: started.Add(5 * time.Minute), refused: true},
		{name: "velero 10m ahead: an object newer than the Backup object is the window, not left out",
			backupCreated: started.Add(-10 * time.Minute), flagsCreated: started.Add(-5 * time.Minute), refused: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := contentsScenario(t, resourceList{list: shopHeld()}, shopObjects(object("v1", "ConfigMap", "flags", tc.flagsCreated))...)
			s.backup.CreationTimestamp = metav1.NewTime(tc.backupCreated)
			deleted, err := injectDeleted(t, s)
			if tc.refused {
				if deleted || !engine.IsRefused(err) || !strings.Contains(err.Error(), "configmaps/flags") {
					t.Fatalf("deleted=%v, Inject error %v, window %v: configmaps/flags was made before Backup %s existed (API server's clock), the backup left it out; want a refusal naming it",
						deleted, err, s.window, s.backup.Name)
				}
				return
			}
			if !deleted || err != nil {
				t.Fatalf("deleted=%v, Inject error %v: configmaps/flags was made after Backup %s existed (API server's clock): it is the RPO window, not left out",
					deleted, err, s.backup.Name)
			}
			if strings.Join(s.window, ",") != "configmaps/flags" {
				t.Errorf("window %v, want configmaps/flags", s.window)
			}
		})
	}
}

// TestReviewKindsDrillbotMayNotListAreNotJudged: the chart's
// least-privilege RBAC never grants Secrets (InventoryGrants), nor any
// CRD's kind. A backup made with excludedResources: [secrets] (or a label
// selector the Secrets lack) holds none of them; the check cannot see
// them. Decided after the review: the backup's own spec says whether it
// may have left objects of a kind drillbot cannot list out (resource
// filters matched as Velero resolves them, label selectors, a resource
// policy): then the drill is refused naming the kind and the filter;
// without such a filter the kind is named as not covered (a finding), not
// refused, or no least-privilege install could ever run the drill. The
// exclude label on an object drillbot cannot see is the one case left.
func TestReviewKindsDrillbotMayNotListAreNotJudged(t *testing.T) {
	cases := []struct {
		name    string
		spec    func(*velerov1.BackupSpec)
		refused string
	}{
		{name: "excluded by name", spec: func(s *velerov1.BackupSpec) { s.ExcludedResources = []string{"secrets"} }, refused: "secrets (excludedResources)"},
		{name: "excluded by kind", spec: func(s *velerov1.BackupSpec) { s.ExcludedResources = []string{"Secret"} }, refused: "secrets (excludedResources)"},
		{name: "not included", spec: func(s *velerov1.BackupSpec) { s.IncludedResources = []string{"configmaps", "deployments.apps"} }, refused: "secrets (includedResources)"},
		{name: "a label selector", spec: func(s *velerov1.BackupSpec) {
			s.LabelSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "shop"}}
		}, refused: "secrets (labelSelector)"},
		{name: "included by *", spec: func(s *velerov1.BackupSpec) { s.IncludedResources = []string{"*"} }},
		{name: "another kind excluded", spec: func(s *velerov1.BackupSpec) { s.ExcludedResources = []string{"events"} }},
		{name: "no filter", spec: func(*velerov1.BackupSpec) {}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			secret := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
				ObjectMeta: metav1.ObjectMeta{Name: "db-password", Namespace: "shop", CreationTimestamp: metav1.NewTime(longAgo)}}
			s, _ := contentsScenario(t, resourceList{list: shopHeld()}, shopObjects(secret)...)
			tc.spec(&s.backup.Spec)
			serve(s, "v1", metav1.APIResource{Name: "secrets", SingularName: "secret", Namespaced: true, Kind: "Secret", Verbs: veleroServed})
			s.deps.Metadata.(*metadatafake.FakeMetadataClient).PrependReactor("list", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
				return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "", errors.New("drillbot may not list secrets"))
			})
			deleted, err := injectDeleted(t, s)
			if tc.refused == "" {
				if !deleted || err != nil || strings.Join(s.skipped, ",") != "secrets" {
					t.Fatalf("deleted=%v, Inject error %v, not covered %v: nothing in the backup's spec leaves secrets out; want the drill run and secrets named as not covered", deleted, err, s.skipped)
				}
				return
			}
			if deleted || !engine.IsRefused(err) || !strings.Contains(err.Error(), tc.refused) {
				t.Fatalf("deleted=%v, Inject error %v: want a refusal naming %q", deleted, err, tc.refused)
			}
		})
	}
}

// TestReviewRPOWindowAloneIsNotAPass: every application object of the
// namespace is newer than the backup (the application was deployed after
// the backup ran: the backup holds an empty namespace). The drill deletes
// it; the restore brings back nothing; Verify names them "lost within the
// RPO window" and neither fails nor says INCONCLUSIVE: a PASS that rests on
// no object restored (rule 1). The finding also counts them as "compared".
func TestReviewRPOWindowAloneIsNotAPass(t *testing.T) {
	newer := metav1.NewTime(started.Add(time.Minute))
	before := Inventory{"deployments.apps/web": {Created: newer}, "configmaps/prices": {Created: newer}, "serviceaccounts/default": {Created: newer}}
	s := verifyScenario(t, before,
		&metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"}, ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "shop"}})
	s.window = []string{"configmaps/prices", "deployments.apps/web"}
	v, err := s.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if v.Inconclusive == "" && len(v.Failures) == 0 {
		t.Fatalf("PASS with nothing restored: findings %q", v.Findings)
	}
}

// TestReviewReadOnlyKindsAreNotLeftOut: Velero backs up only kinds served
// with list, create, get and delete (pkg/discovery/helper.go
// filterByVerbs); the inventory lists every kind served with list. A
// read-only aggregated kind (OLM's packagemanifests, served in every
// namespace with get/list/watch and the age of its CatalogSource;
// metrics.k8s.io's PodMetrics) is in no backup and is not destroyed by the
// namespace deletion (nothing can delete it). The check calls it left out
// and refuses every drill on such a cluster (rule 8).
func TestReviewReadOnlyKindsAreNotLeftOut(t *testing.T) {
	pm := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "packages.operators.coreos.com/v1", Kind: "PackageManifest"},
		ObjectMeta: metav1.ObjectMeta{Name: "etcd", Namespace: "shop", CreationTimestamp: metav1.NewTime(longAgo)}}
	s, _ := contentsScenario(t, resourceList{list: shopHeld()}, shopObjects(pm)...)
	serve(s, "packages.operators.coreos.com/v1", metav1.APIResource{Name: "packagemanifests", Namespaced: true, Kind: "PackageManifest", Verbs: metav1.Verbs{"get", "list", "watch"}})
	deleted, err := injectDeleted(t, s)
	if !deleted || err != nil {
		t.Fatalf("deleted=%v, Inject error %v: a kind Velero never backs up and the namespace deletion cannot delete is no object the backup left out", deleted, err)
	}
}

// TestReviewNamespaceObjectTheBackupLacks: the drill deletes the
// namespace itself. A backup that does not hold it (excludedResources:
// [namespaces]; includedNamespaces "*" with a label selector the namespace
// does not match) restores a bare namespace (Velero restore.go
// getNamespace): its labels and annotations (Pod Security admission,
// istio-injection, NetworkPolicy selectors, drillbot's own opt-in) are
// lost. The check never looks for v1/Namespace in the list (rule 7).
func TestReviewNamespaceObjectTheBackupLacks(t *testing.T) {
	cases := []struct {
		name    string
		list    map[string][]string
		refused bool
	}{
		{name: "namespace held (guard)", list: shopHeld()},
		{name: "namespace not held", list: map[string][]string{"v1/ConfigMap": {"shop/prices"}, "apps/v1/Deployment": {"shop/web"}}, refused: true},
		{name: "only another namespace held", list: map[string][]string{"v1/ConfigMap": {"shop/prices"}, "apps/v1/Deployment": {"shop/web"}, "v1/Namespace": {"billing"}}, refused: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := contentsScenario(t, resourceList{list: tc.list}, shopObjects()...)
			deleted, err := injectDeleted(t, s)
			if tc.refused {
				if deleted || !engine.IsRefused(err) || !strings.Contains(err.Error(), "namespace") {
					t.Fatalf("deleted=%v, Inject error %v: backup %s does not hold namespace shop itself; want a refusal", deleted, err, s.backup.Name)
				}
				return
			}
			if !deleted || err != nil {
				t.Fatalf("deleted=%v, Inject error %v", deleted, err)
			}
		})
	}
}

// TestReviewOwnedButNotControlledLeftOut: the inventory skips every object
// with an ownerReference ("remade by their owners"), so the check never
// judges one. An ownerReference without controller: true is a
// garbage-collection link only: nothing remakes the object. A ConfigMap
// tied to its Deployment for clean-up, left out by the backup, is deleted
// with the namespace and never comes back, and Verify never misses it
// (rule 7).
func TestReviewOwnedButNotControlledLeftOut(t *testing.T) {
	seed := object("v1", "ConfigMap", "seed-data", longAgo)
	seed.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: "uid-web"}}
	s, _ := contentsScenario(t, resourceList{list: shopHeld()}, shopObjects(seed)...)
	deleted, err := injectDeleted(t, s)
	if deleted || !engine.IsRefused(err) || !strings.Contains(err.Error(), "configmaps/seed-data") {
		t.Fatalf("deleted=%v, Inject error %v: configmaps/seed-data (owned for garbage collection only, nothing remakes it) is not in backup %s; want a refusal naming it",
			deleted, err, s.backup.Name)
	}
}

// TestReviewExcludeLabelIsNotTheWindow: an object carrying
// velero.io/exclude-from-backup=true is in no backup, this one, the next
// or the fresh one backup.create takes. Made after the backup started, the
// check calls it the RPO window ("created after backup X started, so not
// in it"), lets the drill destroy it, and says a later backup would have
// held it; made before, the same object refuses the drill. Its own label
// (in the metadata the inventory already reads) says why it is not held:
// left out, whatever its age (rule 7; rule 3: what happened, not a guess
// from timestamps).
func TestReviewExcludeLabelIsNotTheWindow(t *testing.T) {
	cache := object("v1", "ConfigMap", "cache-seed", started.Add(time.Minute))
	cache.Labels = map[string]string{velerov1.ExcludeFromBackupLabel: "true"}
	s, _ := contentsScenario(t, resourceList{list: shopHeld()}, shopObjects(cache)...)
	deleted, err := injectDeleted(t, s)
	if deleted || !engine.IsRefused(err) || !strings.Contains(err.Error(), "configmaps/cache-seed") {
		t.Fatalf("deleted=%v, Inject error %v, window %v: configmaps/cache-seed carries %s=true, no backup holds it; want it refused as left out, not lost as the RPO window",
			deleted, err, s.window, velerov1.ExcludeFromBackupLabel)
	}
}

// TestReviewWindowNotLookedForIsNotLost: Verify consults the window before
// it checks whether the object's API group could be looked for at all. A
// Deployment of the window that is back (a GitOps controller re-applied it)
// while discovery of apps/v1 fails is reported "lost within the RPO
// window": a loss asserted from an error (rule 5).
func TestReviewWindowNotLookedForIsNotLost(t *testing.T) {
	before := Inventory{"configmaps/prices": {}, "deployments.apps/canary": {Created: metav1.NewTime(started.Add(time.Minute))}}
	s := verifyScenario(t, before,
		&metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Name: "prices", Namespace: "shop", Labels: map[string]string{velerov1.RestoreNameLabel: "run-1"}}},
		&metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
			ObjectMeta: metav1.ObjectMeta{Name: "canary", Namespace: "shop"}})
	s.window = []string{"deployments.apps/canary"}
	fd := s.deps.Kube.Discovery().(*fakediscovery.FakeDiscovery)
	s.deps.Discovery = memory.NewMemCacheClient(flakyGroup{FakeDiscovery: fd, gv: "apps/v1"})
	v, err := s.Verify(context.Background())
	if got := strings.Join(v.Findings, "\n"); strings.Contains(got, "lost within the RPO window") {
		t.Fatalf("findings %q (error %v): deployments.apps/canary was not looked for (discovery of apps failed), yet it is reported lost", got, err)
	}
}

// TestReviewGuardTimestampsAndNames passes: what was probed and found
// sound in LeftOut's use of the start time and of names.
func TestReviewGuardTimestampsAndNames(t *testing.T) {
	cases := []struct {
		name    string
		start   *metav1.Time
		list    map[string][]string
		objs    []runtime.Object
		refused string
		window  string
	}{
		// No creation time: nothing can be called newer than the backup.
		{name: "no creation time refuses what is not held", list: shopHeld(),
			objs: shopObjects(object("v1", "ConfigMap", "flags", started.Add(time.Hour))), refused: "configmaps/flags"},
		// Deleted and re-created (same name) after the backup: the backup
		// holds the older one, the restore brings it back: not the window.
		{name: "re-created after the backup, held by name", start: &metav1.Time{Time: started}, list: shopHeld(),
			objs: []runtime.Object{object("v1", "ConfigMap", "prices", started.Add(time.Hour)), object("apps/v1", "Deployment", "web", longAgo)}},
		// The same second on both sides (metav1.Time keeps seconds): not
		// "after", so left out: the safe side.
		{name: "made in the second the Backup object was made", start: &metav1.Time{Time: started}, list: shopHeld(),
			objs: shopObjects(object("v1", "ConfigMap", "flags", started)), refused: "configmaps/flags"},
		// Any version of the kind holds it (Velero's preferred one, or all
		// with EnableAPIGroupVersions).
		{name: "a non-preferred version holds it", start: &metav1.Time{Time: started},
			list: map[string][]string{"v1/ConfigMap": {"shop/prices"}, "apps/v1beta1/Deployment": {"shop/web"}, "v1/Namespace": {"shop"}}, objs: shopObjects()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := contentsScenario(t, resourceList{list: tc.list}, tc.objs...)
			s.backup.CreationTimestamp = metav1.Time{}
			if tc.start != nil {
				s.backup.CreationTimestamp = *tc.start
			}
			deleted, err := injectDeleted(t, s)
			if tc.refused != "" {
				if deleted || !engine.IsRefused(err) || !strings.Contains(err.Error(), tc.refused) {
					t.Fatalf("deleted=%v, Inject error %v, want a refusal naming %s", deleted, err, tc.refused)
				}
				return
			}
			if !deleted || err != nil || strings.Join(s.window, ",") != tc.window {
				t.Fatalf("deleted=%v, Inject error %v, window %v (want %q)", deleted, err, s.window, tc.window)
			}
		})
	}
}

// TestReviewGuardMalformedList passes: a list Velero could not have
// written stops the run before the fault (INCONCLUSIVE), never holds
// anything.
func TestReviewGuardMalformedList(t *testing.T) {
	for _, key := range []string{"ConfigMap", "a/b/c/ConfigMap"} {
		s, _ := contentsScenario(t, resourceList{list: map[string][]string{key: {"shop/prices"}}}, shopObjects()...)
		deleted, err := injectDeleted(t, s)
		if deleted || !engine.IsUnknown(err) {
			t.Errorf("key %q: deleted=%v, Inject error %v, want unknown", key, deleted, err)
		}
	}
}
