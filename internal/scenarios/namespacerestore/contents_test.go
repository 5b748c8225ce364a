package namespacerestore

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery/cached/memory"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
)

// resourceList is a backup's resource list, or the error reading it.
type resourceList struct {
	list map[string][]string
	err  error
}

func (r resourceList) BackupResourceList(context.Context, string, string) (map[string][]string, error) {
	return r.list, r.err
}

// started is when the backups of these tests started.
var started = time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)

// object is the metadata of a namespaced object of shop, created at created.
func object(apiVersion, kind, name string, created time.Time) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: apiVersion, Kind: kind},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", CreationTimestamp: metav1.NewTime(created)}}
}

func TestLeftOut(t *testing.T) {
	resources := map[schema.GroupKind]string{{Kind: "ConfigMap"}: "configmaps", {Group: "apps", Kind: "Deployment"}: "deployments.apps"}
	before, after := metav1.NewTime(started.Add(-time.Hour)), metav1.NewTime(started.Add(time.Minute))
	inv := Inventory{
		"configmaps/prices":           {Created: before},
		"configmaps/kube-root-ca.crt": {Created: after},
		"deployments.apps/web":        {Created: before},
		"deployments.apps/api":        {Created: before},
		"configmaps/new-prices":       {Created: after},
	}
	cases := []struct {
		name         string
		list         map[string][]string
		left, window []string
		err          string
	}{
		{name: "everything held", list: map[string][]string{"v1/ConfigMap": {"shop/prices", "shop/new-prices"}, "apps/v1/Deployment": {"shop/web", "shop/api"}}},
		{name: "a kind filtered out", list: map[string][]string{"apps/v1/Deployment": {"shop/web", "shop/api"}},
			left: []string{"configmaps/prices"}, window: []string{"configmaps/new-prices"}},
		{name: "one object left out (label selector, exclude label)", list: map[string][]string{"v1/ConfigMap": {"shop/prices"}, "apps/v1/Deployment": {"shop/web"}},
			left: []string{"deployments.apps/api"}, window: []string{"configmaps/new-prices"}},
		{name: "the same name in another namespace holds nothing of shop", list: map[string][]string{"v1/ConfigMap": {"billing/prices", "shop/new-prices"}, "apps/v1/Deployment": {"shop/web", "shop/api"}},
			left: []string{"configmaps/prices"}},
		{name: "any version of the kind holds it", list: map[string][]string{"v1/ConfigMap": {"shop/prices", "shop/new-prices"}, "apps/v1beta2/Deployment": {"shop/web", "shop/api"}}},
		{name: "a kind the cluster no longer serves holds nothing", list: map[string][]string{"v1/ConfigMap": {"shop/prices", "shop/new-prices"}, "apps/v1/Deployment": {"shop/web", "shop/api"}, "example.com/v1/Widget": {"shop/w"}}},
		{name: "a cluster-scoped entry is no namespaced object", list: map[string][]string{"v1/ConfigMap": {"prices", "shop/new-prices"}, "apps/v1/Deployment": {"shop/web", "shop/api"}},
			left: []string{"configmaps/prices"}},
		{name: "a malformed key", list: map[string][]string{"ConfigMap": {"shop/prices"}}, err: `key "ConfigMap"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			left, window, err := LeftOut(inv, resources, tc.list, "shop", started)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one naming %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(left, ",") != strings.Join(tc.left, ",") || strings.Join(window, ",") != strings.Join(tc.window, ",") {
				t.Errorf("left out %v, window %v; want %v and %v", left, window, tc.left, tc.window)
			}
		})
	}
	// Without a start time nothing is in the window: all that is not held
	// is left out.
	left, window, err := LeftOut(inv, resources, map[string][]string{}, "shop", time.Time{})
	if err != nil || len(left) != 4 || len(window) != 0 {
		t.Errorf("no start time: left out %v, window %v, error %v; want the four application objects left out", left, window, err)
	}
}

// contentsScenario is a namespace-restore drill on shop (holding objs)
// restoring from shop-daily-1, which started at started.
func contentsScenario(t *testing.T, list resourceList, objs ...runtime.Object) (*scenario, *fake.Clientset) {
	t.Helper()
	kube := fake.NewClientset(optedIn("shop"))
	spec := v1alpha1.DrillSpec{Scenario: Name, Target: v1alpha1.Target{Namespace: "shop"}, Objectives: v1alpha1.Objectives{RTO: "5m", RPO: "1h"},
		Params: []byte(`{"backup":{"schedule":"shop-daily"}}`)}
	sc, err := Kind{Deps: censusDeps(t, kube, list, objs...)}.New(drill.Definition{Name: "d", Spec: spec}, "run-1")
	if err != nil {
		t.Fatal(err)
	}
	s := sc.(*scenario)
	s.backup = backup("shop-daily-1", "shop-daily", velerov1.BackupPhaseCompleted, "shop")
	s.backup.CreationTimestamp = metav1.NewTime(started)
	s.backup.Status.StartTimestamp = &metav1.Time{Time: started.Add(time.Second)}
	return s, kube
}

// TestInjectRefusesWhatTheBackupLeftOut: a backup made with a resource or
// label filter does not hold every object of the namespace; deleting the
// namespace would lose what it left out, so the drill refuses before its
// first write. Objects newer than the backup are the RPO window, not a
// refusal, and are reported as lost within it.
func TestInjectRefusesWhatTheBackupLeftOut(t *testing.T) {
	objs := []runtime.Object{
		object("v1", "ConfigMap", "prices", started.Add(-time.Hour)),
		object("apps/v1", "Deployment", "web", started.Add(-time.Hour)),
		object("v1", "ConfigMap", "orders-today", started.Add(time.Minute)),
	}
	cases := []struct {
		name    string
		list    resourceList
		refused string
		unknown bool
		window  []string
	}{
		{name: "all held", list: resourceList{list: map[string][]string{"v1/ConfigMap": {"shop/prices", "shop/orders-today"}, "apps/v1/Deployment": {"shop/web"}, "v1/Namespace": {"shop"}}}},
		{name: "ConfigMaps excluded", list: resourceList{list: map[string][]string{"apps/v1/Deployment": {"shop/web"}, "v1/Namespace": {"shop"}}},
			refused: "leaves out 1 objects of namespace shop that existed when it was made (its resource filters, a label selector, or the label velero.io/exclude-from-backup): configmaps/prices"},
		{name: "newer than the backup", list: resourceList{list: map[string][]string{"v1/ConfigMap": {"shop/prices"}, "apps/v1/Deployment": {"shop/web"}, "v1/Namespace": {"shop"}}},
			window: []string{"configmaps/orders-today"}},
		{name: "no resource list", list: resourceList{err: ErrNotStored}, refused: "has no resource list in its storage location"},
		{name: "resource list unreadable", list: resourceList{err: errors.New("download: connection refused")}, unknown: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, kube := contentsScenario(t, tc.list, objs...)
			var j journal
			err := s.Inject(context.Background(), &j)
			switch {
			case tc.refused != "" || tc.unknown:
				if tc.refused != "" && (!engine.IsRefused(err) || !strings.Contains(err.Error(), tc.refused)) {
					t.Fatalf("Inject error %v, want a refusal naming %q", err, tc.refused)
				}
				if tc.unknown && !engine.IsUnknown(err) {
					t.Fatalf("Inject error %v, want unknown (INCONCLUSIVE: no evidence either way)", err)
				}
				if namespaceDeleted(kube) || len(j.entries) > 0 {
					t.Fatalf("refused, yet deleted=%v journal=%v", namespaceDeleted(kube), j.entries)
				}
			default:
				if err != nil || !namespaceDeleted(kube) {
					t.Fatalf("Inject error %v, deleted=%v: want the namespace deleted", err, namespaceDeleted(kube))
				}
				if strings.Join(s.window, ",") != strings.Join(tc.window, ",") {
					t.Errorf("RPO window %v, want %v", s.window, tc.window)
				}
				if len(s.inventory) != len(objs) {
					t.Errorf("inventory %v, want the %d objects there right before the delete", s.inventory, len(objs))
				}
			}
		})
	}
}

// TestInjectWithDiscoveryDownIsUnknown: a group whose discovery fails
// right before the delete holds objects nobody compared with the backup.
func TestInjectWithDiscoveryDownIsUnknown(t *testing.T) {
	s, kube := contentsScenario(t, resourceList{list: map[string][]string{}})
	fd := s.deps.Kube.Discovery().(*fakediscovery.FakeDiscovery)
	s.deps.Discovery = memory.NewMemCacheClient(flakyGroup{FakeDiscovery: fd, gv: "apps/v1"})
	var j journal
	err := s.Inject(context.Background(), &j)
	if !engine.IsUnknown(err) || !strings.Contains(err.Error(), "discovery of API groups apps failed") {
		t.Fatalf("Inject error %v, want unknown naming the group", err)
	}
	if namespaceDeleted(kube) || len(j.entries) > 0 {
		t.Fatalf("deleted=%v journal=%v with a group unchecked", namespaceDeleted(kube), j.entries)
	}
}

// TestVerifyWindowIsAFinding: an object created after the backup started
// is lost by any restore from it; Verify says so as the RPO window, and
// does not fail the drill for it, while anything else missing still fails.
func TestVerifyWindowIsAFinding(t *testing.T) {
	before := Inventory{"configmaps/prices": {}, "configmaps/orders-today": {}, "deployments.apps/web": {}}
	s := verifyScenario(t, before,
		&metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Name: "prices", Namespace: "shop", Labels: map[string]string{velerov1.RestoreNameLabel: "run-1"}}})
	s.window = []string{"configmaps/orders-today"}
	v, err := s.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(v.Findings, "\n"); !strings.Contains(got, "lost within the RPO window (1, created after backup b was made, so not in it): configmaps/orders-today") {
		t.Errorf("findings %q, want the window named", got)
	}
	if got := strings.Join(v.Failures, "\n"); strings.Contains(got, "orders-today") || !strings.Contains(got, "deployments.apps/web") {
		t.Errorf("failures %q, want web missing and orders-today not a failure", got)
	}
}

// veleroServed are the verbs of a kind Velero backs up.
var veleroServed = metav1.Verbs{"create", "delete", "get", "list", "watch"}

// holdsShop is a resource list holding namespace shop itself, nothing in it.
var holdsShop = resourceList{list: map[string][]string{"v1/Namespace": {"shop"}}}
