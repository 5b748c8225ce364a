package failoverrestore

// Written as the adversary would: a restore that brought
// nothing back, or a comparison that checked nothing, looks green; a
// healthy restore of drillbot's own RBAC looks red.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/metadata"
	metadatafake "k8s.io/client-go/metadata/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/engine"
	nr "github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
)

// lists is a ResourceLister playing Velero: each backup's resource list,
// and the backups it was asked about.
type lists struct {
	of    map[string]map[string][]string
	err   error
	asked []string
}

func (l *lists) BackupResourceList(_ context.Context, _, backup string) (map[string][]string, error) {
	l.asked = append(l.asked, backup)
	if l.err != nil {
		return nil, l.err
	}
	list, ok := l.of[backup]
	if !ok {
		return nil, fmt.Errorf("no list for %s", backup)
	}
	return list, nil
}

// shopList is what a backup of namespace shop lists.
func shopList() map[string][]string {
	return map[string][]string{
		"v1/Namespace":       {"shop"},
		"v1/ConfigMap":       {"shop/prices"},
		"apps/v1/Deployment": {"shop/web"},
		"v1/Pod":             {"shop/web-1"},
	}
}

// TestInjectRefusesABackupWithNothingOfTheSource: a backup of all
// namespaces (or one whose selector or excludes left the source out) is
// taken by its spec to hold the source; its own resource list must show
// objects in it, or the run refuses before any write: no journal entry,
// no copy, no restore.
func TestInjectRefusesABackupWithNothingOfTheSource(t *testing.T) {
	all := func(name string, age time.Duration) *velerov1.Backup {
		return backupOf(name, velerov1.BackupPhaseCompleted, age)
	}
	cases := []struct {
		name    string
		source  string
		backups []*velerov1.Backup
		lists   map[string]map[string][]string
		listErr error
		want    string // refusal (or error) substring; empty: proceeds
		refused bool
		backup  string // the backup restored
		finding string
	}{
		{name: "all namespaces, the source mistyped", source: "shpo", backups: []*velerov1.Backup{all("all-1", time.Minute)},
			lists: map[string]map[string][]string{"all-1": {"v1/Namespace": {"billing", "shop"}, "v1/ConfigMap": {"billing/x", "shop/prices"}}},
			want:  "backup all-1 holds no object in namespace shpo (its resource list names objects in 2 namespaces: billing, shop)", refused: true},
		{name: "a label selector left the source empty: only its namespace object", source: "shop", backups: []*velerov1.Backup{all("sel-1", time.Minute)},
			lists: map[string]map[string][]string{"sel-1": {"v1/Namespace": {"shop"}, "v1/ConfigMap": {"billing/x"}}},
			want:  "backup sel-1 holds no object in namespace shop", refused: true},
		{name: "only events of the source (never restored)", source: "shop", backups: []*velerov1.Backup{all("ev-1", time.Minute)},
			lists: map[string]map[string][]string{"ev-1": {"v1/Event": {"shop/e1"}, "events.k8s.io/v1/Event": {"shop/e1"}}},
			want:  "backup ev-1 holds no object in namespace shop", refused: true},
		{name: "the resource list cannot be read: an error, not a refusal", source: "shop", backups: []*velerov1.Backup{all("all-1", time.Minute)},
			listErr: apierrors.NewServiceUnavailable("velero down"), want: "read the resource list of backup all-1"},
		{name: "a download request that failed: unknown, not a failure", source: "shop", backups: []*velerov1.Backup{all("all-1", time.Minute)},
			listErr: errors.New("download request all-1-x expired before Velero processed it"), want: "read the resource list of backup all-1"},
		{name: "the source is in the backup", source: "shop", backups: []*velerov1.Backup{all("all-1", time.Minute)},
			lists: map[string]map[string][]string{"all-1": shopList()}, backup: "all-1"},
		{name: "the newest holds nothing of the source: an older one within the RPO that does", source: "shop",
			backups: []*velerov1.Backup{all("all-new", time.Minute), backupOf("shop-old", velerov1.BackupPhaseCompleted, 20*time.Minute, "shop")},
			lists:   map[string]map[string][]string{"all-new": {"v1/ConfigMap": {"billing/x"}}, "shop-old": shopList()},
			backup:  "shop-old", finding: "backup all-new, newer, holds no object in namespace shop: restored shop-old"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objs := []runtime.Object{u(t, good())}
			for _, b := range tc.backups {
				objs = append(objs, u(t, b))
			}
			kube := fake.NewClientset()
			dyn := dynamicWith(objs...)
			def := definition(fmt.Sprintf(`{"sourceNamespace":%q,"storageLocation":"production"}`, tc.source))
			sc, err := Kind{Deps: Deps{Kube: kube, Dynamic: dyn, Contents: &lists{of: tc.lists, err: tc.listErr},
				Clock: clocktesting.NewFakePassiveClock(now)}}.New(def, "run-1")
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := sc.Preflight(ctx); err != nil {
				t.Fatalf("preflight: %v", err)
			}
			j := &journal{}
			err = sc.Inject(ctx, j)
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
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Inject error %v, want it to mention %q", err, tc.want)
			}
			if got := engine.IsRefused(err); got != tc.refused {
				t.Errorf("refused = %v, want %v (%v)", got, tc.refused, err)
			}
			if tc.listErr != nil && !engine.IsUnknown(err) {
				t.Errorf("an unread resource list is not unknown (the run would FAIL on no evidence): %v", err)
			}
			if len(j.entries) != 0 {
				t.Errorf("journal %v: the run started", j.entries)
			}
			for _, a := range kube.Actions() {
				if v := a.GetVerb(); v != "get" && v != "list" && v != "watch" {
					t.Errorf("a refused run wrote: %s %s", v, a.GetResource().Resource)
				}
			}
			for _, a := range dyn.Actions() {
				if v := a.GetVerb(); v != "get" && v != "list" && v != "watch" {
					t.Errorf("a refused run wrote: %s %s", v, a.GetResource().Resource)
				}
			}
		})
	}
}

// TestIncludesFollowsVelero: the spec's namespaces are Velero's globs
// (pkg/util/collections IncludesExcludes.ShouldInclude): an exclude
// pattern wins, an include pattern matches.
func TestIncludesFollowsVelero(t *testing.T) {
	cases := []struct {
		in, ex []string
		want   bool
	}{
		{want: true},
		{in: []string{"*"}, want: true},
		{in: []string{"shop"}, want: true},
		{in: []string{"billing"}},
		{in: []string{"sh*"}, want: true},
		{in: []string{"s?op"}, want: true},
		{in: []string{"[rs]hop"}, want: true},
		{in: []string{"shop-*"}},
		{ex: []string{"shop"}},
		{ex: []string{"sh*"}},
		{in: []string{"*"}, ex: []string{"s?op"}},
		{ex: []string{"*"}},
		{ex: []string{"shop-*"}, want: true},
		{in: []string{"sh*"}, ex: []string{"shop"}},
		// Braces, as gobwas/glob (so Velero) reads them.
		{in: []string{"{shop,billing}"}, want: true},
		{in: []string{"{billing,shop}"}, ex: []string{"{shop}"}},
		// A pattern that does not compile may include: the resource list
		// decides.
		{in: []string{"[a-cs]hop"}, want: true},
		{ex: []string{"[a-cs]hop"}, want: true},
	}
	for _, tc := range cases {
		b := &velerov1.Backup{Spec: velerov1.BackupSpec{IncludedNamespaces: tc.in, ExcludedNamespaces: tc.ex}}
		if got := includes(b, "shop"); got != tc.want {
			t.Errorf("includes(in %q, ex %q, shop) = %v, want %v", tc.in, tc.ex, got, tc.want)
		}
	}
}

// TestPreflightGlobs: a backup whose exclude glob leaves the source out
// is not restored; one whose include glob names it is.
func TestPreflightGlobs(t *testing.T) {
	excluded := backupOf("all-but-sh", velerov1.BackupPhaseCompleted, time.Minute)
	excluded.Spec.ExcludedNamespaces = []string{"sh*"}
	globbed := backupOf("sh-glob", velerov1.BackupPhaseCompleted, 10*time.Minute, "sh*")
	older := backupOf("shop-old", velerov1.BackupPhaseCompleted, 20*time.Minute, "shop")
	sc, err := Kind{Deps: Deps{Kube: fake.NewClientset(), Dynamic: dynamicWith(u(t, good()), u(t, excluded), u(t, globbed), u(t, older)),
		Clock: clocktesting.NewFakePassiveClock(now)}}.New(definition(params), "run-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Preflight(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := sc.(*scenario).backup.Name; got != "sh-glob" {
		t.Errorf("backup %s, want sh-glob (all-but-sh excludes shop by its glob)", got)
	}
}

// verifyFixture is a DR cluster after the restore: discovery, the copy's
// objects (metadata) and the kinds drillbot may not list.
func verifyFixture(t *testing.T, copyObjs []runtime.Object, forbidden ...string) (discovery.CachedDiscoveryInterface, *metadatafake.FakeMetadataClient) {
	t.Helper()
	fd := fake.NewClientset().Discovery().(*fakediscovery.FakeDiscovery)
	list := metav1.Verbs{"list"}
	fd.Resources = []*metav1.APIResourceList{
		{GroupVersion: "v1", APIResources: []metav1.APIResource{
			{Name: "configmaps", Namespaced: true, Kind: "ConfigMap", Verbs: list},
			{Name: "secrets", Namespaced: true, Kind: "Secret", Verbs: list},
			{Name: "pods", Namespaced: true, Kind: "Pod", Verbs: list},
			{Name: "namespaces", Kind: "Namespace", Verbs: list}}},
		{GroupVersion: "rbac.authorization.k8s.io/v1", APIResources: []metav1.APIResource{
			{Name: "roles", Namespaced: true, Kind: "Role", Verbs: list},
			{Name: "rolebindings", Namespaced: true, Kind: "RoleBinding", Verbs: list}}},
		{GroupVersion: "example.com/v1", APIResources: []metav1.APIResource{
			{Name: "widgets", Namespaced: true, Kind: "Widget", Verbs: list}}},
	}
	scheme := runtime.NewScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	md := metadatafake.NewSimpleMetadataClient(scheme, copyObjs...)
	for _, r := range forbidden {
		md.PrependReactor("list", r, func(a k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: r}, "", fmt.Errorf("RBAC"))
		})
	}
	return memory.NewMemCacheClient(fd), md
}

func inCopy(apiVersion, kind, name string, labels map[string]string) runtime.Object {
	return &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: apiVersion, Kind: kind},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop-copy", Labels: labels}}
}

var drillbotRBAC = map[string]string{v1alpha1.LabelRBAC: "true"}

// restored are the labels Velero puts on what restore run-1 made.
var restored = map[string]string{velerov1.RestoreNameLabel: "run-1"}

// TestVerifyEvidence: a comparison that checked nothing never passes
// (EVIDENCE rule 1), and drillbot's own RBAC, restored into the copy, is
// left out on both sides (rule 8).
func TestVerifyEvidence(t *testing.T) {
	marker := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: nr.MarkerName, Namespace: "shop-copy"},
		Data: map[string]string{nr.MarkerKey: now.Add(-5 * time.Minute).Format(time.RFC3339Nano)}}
	cases := []struct {
		name         string
		list         map[string][]string
		copy         []runtime.Object
		forbidden    []string
		fail         string // a failure substring
		inconclusive []string
		finding      string
		pass         bool
	}{
		{name: "drillbot's own Role and RoleBinding restored with the app: PASS",
			list: map[string][]string{"v1/ConfigMap": {"shop/prices"}, "rbac.authorization.k8s.io/v1/Role": {"shop/drillbot"},
				"rbac.authorization.k8s.io/v1/RoleBinding": {"shop/drillbot"}},
			copy: []runtime.Object{inCopy("v1", "ConfigMap", "prices", restored),
				inCopy("rbac.authorization.k8s.io/v1", "Role", "drillbot", drillbotRBAC),
				inCopy("rbac.authorization.k8s.io/v1", "RoleBinding", "drillbot", drillbotRBAC)},
			pass: true, finding: "drillbot's own RBAC, restored with the namespace, left out on both sides: rolebindings.rbac.authorization.k8s.io 1, roles.rbac.authorization.k8s.io 1"},
		{name: "the app's own Role, lost, is still missing",
			list: map[string][]string{"v1/ConfigMap": {"shop/prices"}, "rbac.authorization.k8s.io/v1/Role": {"shop/app"}},
			copy: []runtime.Object{inCopy("v1", "ConfigMap", "prices", restored), inCopy("rbac.authorization.k8s.io/v1", "Role", "drillbot", drillbotRBAC)},
			fail: "in the backup but not restored (1): roles.rbac.authorization.k8s.io/app"},
		{name: "only drillbot's RBAC in the backup: nothing of the app checked",
			list:         map[string][]string{"rbac.authorization.k8s.io/v1/Role": {"shop/drillbot"}},
			copy:         []runtime.Object{inCopy("rbac.authorization.k8s.io/v1", "Role", "drillbot", drillbotRBAC)},
			inconclusive: []string{"no object of backup b in namespace shop could be checked in the copy", "drillbot's own RBAC: roles.rbac.authorization.k8s.io 1"}},
		{name: "only kinds drillbot may not list: INCONCLUSIVE naming them",
			list:         map[string][]string{"v1/Secret": {"shop/db"}, "example.com/v1/Widget": {"shop/blue", "shop/green"}},
			forbidden:    []string{"secrets", "widgets"},
			inconclusive: []string{"no object of backup b in namespace shop could be checked", "drillbot may not list (RBAC): secrets 1, widgets.example.com 2"}},
		{name: "only pods, left to their controllers: INCONCLUSIVE",
			list:         map[string][]string{"v1/Pod": {"shop/web-1"}},
			inconclusive: []string{"no object of backup b in namespace shop could be checked", "left to their controllers: pods 1"}},
		// Rule 2: in the copy, but made by something else (an operator, a
		// policy engine's generate rule), not by this run's restore.
		{name: "objects in the copy, none by this run's restore: INCONCLUSIVE",
			list:         map[string][]string{"v1/ConfigMap": {"shop/prices"}},
			copy:         []runtime.Object{inCopy("v1", "ConfigMap", "prices", map[string]string{velerov1.RestoreNameLabel: "run-0"})},
			inconclusive: []string{"carries velero.io/restore-name=run-1", "configmaps/prices"}},
		{name: "kinds not listed beside checked ones: PASS, the kinds named",
			list:      map[string][]string{"v1/ConfigMap": {"shop/prices"}, "example.com/v1/Widget": {"shop/blue"}},
			copy:      []runtime.Object{inCopy("v1", "ConfigMap", "prices", restored)},
			forbidden: []string{"widgets"},
			pass:      true, finding: "not checked, drillbot may not list them (RBAC): widgets.example.com 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			disc, md := verifyFixture(t, tc.copy, tc.forbidden...)
			v, err := verifyRestored(t, fake.NewClientset(marker), md, disc, tc.list)
			if err != nil {
				t.Fatal(err)
			}
			fails, finds := strings.Join(v.Failures, "\n"), strings.Join(v.Findings, "\n")
			switch {
			case tc.pass && (fails != "" || v.Inconclusive != ""):
				t.Errorf("want PASS; failures %q, inconclusive %q", fails, v.Inconclusive)
			case tc.fail != "" && !strings.Contains(fails, tc.fail):
				t.Errorf("failures %q, want %q", fails, tc.fail)
			case tc.inconclusive != nil:
				if fails != "" {
					t.Errorf("failures %q, want none", fails)
				}
				for _, want := range tc.inconclusive {
					if !strings.Contains(v.Inconclusive, want) {
						t.Errorf("inconclusive %q, want %q", v.Inconclusive, want)
					}
				}
			}
			if tc.finding != "" && !strings.Contains(finds, tc.finding) {
				t.Errorf("findings %q, want %q", finds, tc.finding)
			}
		})
	}
}

// verifyRestored runs a drill of the source shop from backup b, whose
// resource list is list, to its Verify over a copy that md and disc show.
func verifyRestored(t *testing.T, kube kubernetes.Interface, md metadata.Interface, disc discovery.DiscoveryInterface, list map[string][]string) (engine.Verification, error) {
	t.Helper()
	b := backupOf("b", velerov1.BackupPhaseCompleted, 10*time.Minute, "shop")
	sc, err := Kind{Deps: Deps{Kube: kube, Dynamic: dynamicWith(u(t, good()), u(t, b)), Metadata: md, Discovery: disc,
		Contents: &lists{of: map[string]map[string][]string{"b": list}}, Clock: clocktesting.NewFakePassiveClock(now)}}.New(definition(params), "run-1")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := sc.Preflight(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sc.Inject(ctx, &journal{}); err != nil {
		t.Fatal(err)
	}
	return sc.Verify(ctx)
}
