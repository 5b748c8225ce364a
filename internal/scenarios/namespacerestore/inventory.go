package namespacerestore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/metadata"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	"github.com/vmware-tanzu/velero/pkg/label"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
)

// Inventory is the set of objects in a namespace, as "resource.group/name".
type Inventory map[string]Item

// Item is what the inventory keeps of an object.
type Item struct {
	// RestoredBy is the Velero restore that made it (its
	// velero.io/restore-name label), "" when none did.
	RestoredBy string
	// Created is its creation time (the API server's clock).
	Created metav1.Time
	// Excluded: it carries velero.io/exclude-from-backup=true, so no
	// backup holds it.
	Excluded bool
}

// Missing lists, sorted, what is in inv and not in after.
func (inv Inventory) Missing(after Inventory) []string {
	var out []string
	for k := range inv {
		if _, ok := after[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// ClusterMade are the objects (resource/name) a namespace gets by itself, made again by
// the cluster (or by drillbot: the RPO marker) whether or not a restore
// brought anything back. They are compared like the rest, but they are no
// evidence that the restore worked (EVIDENCE.md rule 1).
var ClusterMade = []string{"serviceaccounts/default", "configmaps/kube-root-ca.crt", "configmaps/" + MarkerName}

// Application is what of inv only a restore can bring back: inv without
// ClusterMade. A comparison of the namespace is evidence only when this is
// not empty.
func (inv Inventory) Application() []string {
	var out []string
	for k := range inv {
		if !slices.Contains(ClusterMade, k) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// derived are resources that are derived or ephemeral: the API server or a
// controller remakes them, and Velero does not restore them by name.
var derived = []string{"events", "events.events.k8s.io", "endpoints", "endpointslices.discovery.k8s.io"}

// veleroVerbs are the verbs a kind must be served with for Velero to back
// it up.
var veleroVerbs = discovery.SupportsAllVerbs{Verbs: []string{"list", "create", "get", "delete"}}

// inventoryPageSize bounds each list call.
const inventoryPageSize = 500

// TakeInventory lists every namespaced resource kind the server serves, in
// pages and as metadata only, and records the objects no controller owns
// (controllers remake theirs under new names), of the kinds Velero backs up. Kinds
// drillbot may not list (RBAC) are returned as uncovered, not as an error: a
// least-privilege install covers the kinds it was granted (InventoryGrants)
// and the run says which it did not cover.
//
// Discovery is asked afresh each time (a cached client is invalidated
// first): a CRD installed since drillbot started is inventoried too.
func TakeInventory(ctx context.Context, disc discovery.DiscoveryInterface, meta metadata.Interface, ns string) (Inventory, []string, error) {
	c, err := takeCensus(ctx, disc, meta, ns)
	return c.inv, c.uncovered, err
}

// census is an inventory with what was learnt taking it.
type census struct {
	inv Inventory
	// uncovered are the kinds drillbot may not list.
	uncovered []string
	// uncoveredAPI are the uncovered kinds' API resources, by name.
	uncoveredAPI map[string]metav1.APIResource
	// failed are the API groups whose discovery failed (group to error):
	// their kinds were not listed, so their objects are unknown, neither
	// present nor missing.
	failed map[string]error
	// resources maps each namespaced kind served to its inventory name
	// (resource.group).
	resources map[schema.GroupKind]string
}

// takeCensus is TakeInventory with what it learnt on the way.
func takeCensus(ctx context.Context, disc discovery.DiscoveryInterface, meta metadata.Interface, ns string) (census, error) {
	if cached, ok := disc.(discovery.CachedDiscoveryInterface); ok {
		cached.Invalidate()
	}
	lists, err := disc.ServerPreferredNamespacedResources()
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		return census{}, fmt.Errorf("discover namespaced resources: %w", err)
	}
	c := census{inv: Inventory{}, failed: map[string]error{}, resources: map[schema.GroupKind]string{}, uncoveredAPI: map[string]metav1.APIResource{}}
	if gd := (*discovery.ErrGroupDiscoveryFailed)(nil); errors.As(err, &gd) {
		for gv, gerr := range gd.Groups {
			c.failed[gv.Group] = gerr
		}
	}
	var errs []error
	for _, list := range lists {
		gv, perr := schema.ParseGroupVersion(list.GroupVersion)
		if perr != nil {
			continue
		}
		for _, r := range list.APIResources {
			// What Velero backs up: kinds served with list, create, get
			// and delete (its discovery helper's filterByVerbs); others
			// are in no backup and no namespace deletion deletes them.
			if strings.Contains(r.Name, "/") || !veleroVerbs.Match(list.GroupVersion, &r) {
				continue
			}
			qualified := r.Name
			if gv.Group != "" {
				qualified += "." + gv.Group
			}
			c.resources[schema.GroupKind{Group: gv.Group, Kind: r.Kind}] = qualified
			if slices.Contains(derived, qualified) {
				continue
			}
			if err := listInto(ctx, meta, gv.WithResource(r.Name), ns, qualified, c.inv); err != nil {
				if ctx.Err() != nil {
					return census{}, fmt.Errorf("inventory of namespace %s: %w", ns, err)
				}
				if apierrors.IsForbidden(err) {
					c.uncovered = append(c.uncovered, qualified)
					c.uncoveredAPI[qualified] = r
					continue
				}
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return census{}, fmt.Errorf("inventory of namespace %s: %w", ns, errors.Join(errs...))
	}
	sort.Strings(c.uncovered)
	return c, nil
}

// groupOf is the API group of an inventory key ("resource.group/name").
func groupOf(key string) string {
	qualified, _, _ := strings.Cut(key, "/")
	_, group, _ := strings.Cut(qualified, ".")
	return group
}

func listInto(ctx context.Context, meta metadata.Interface, gvr schema.GroupVersionResource, ns, qualified string, inv Inventory) error {
	opts := metav1.ListOptions{Limit: inventoryPageSize}
	for {
		page, err := meta.Resource(gvr).Namespace(ns).List(ctx, opts)
		if err != nil {
			return fmt.Errorf("list %s: %w", qualified, err)
		}
		for _, item := range page.Items {
			// Objects a controller owns are remade by it (an owner
			// reference without controller is only a garbage-collection
			// link: nothing remakes that object); drillbot's own RBAC and
			// what a run made (a data check's Job) are not the
			// application's.
			if metav1.GetControllerOfNoCopy(&item) != nil || item.Labels[v1alpha1.LabelRBAC] != "" || item.Labels[v1alpha1.LabelRun] != "" {
				continue
			}
			inv[qualified+"/"+item.Name] = Item{RestoredBy: item.Labels[velerov1.RestoreNameLabel], Created: item.CreationTimestamp,
				Excluded: item.Labels[velerov1.ExcludeFromBackupLabel] == "true"}
		}
		if page.Continue == "" {
			return nil
		}
		opts.Continue = page.Continue
	}
}

// restoredBy splits keys into those inv holds as made by the Velero restore
// named restore and those it holds as made otherwise; keys inv lacks are
// in neither.
func (inv Inventory) restoredBy(keys []string, restore string) (byRestore, otherwise []string) {
	want := label.GetValidName(restore) // Velero's label value for a long name
	for _, k := range keys {
		it, ok := inv[k]
		switch {
		case !ok:
		case it.RestoredBy == want:
			byRestore = append(byRestore, k)
		default:
			otherwise = append(otherwise, k)
		}
	}
	return byRestore, otherwise
}
