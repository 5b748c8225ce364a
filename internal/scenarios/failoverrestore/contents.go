package failoverrestore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	"github.com/vmware-tanzu/velero/pkg/label"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/restmapper"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	nr "github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
)

// DownloadRequestsGVR is Velero's DownloadRequest resource.
var DownloadRequestsGVR = nr.DownloadRequestsGVR

// VeleroContents reads resource lists through Velero's DownloadRequests.
type VeleroContents struct{ nr.VeleroDownloads }

// BackupResourceList implements ResourceLister.
func (v VeleroContents) BackupResourceList(ctx context.Context, vns, backup string) (map[string][]string, error) {
	list, err := v.VeleroDownloads.BackupResourceList(ctx, vns, backup)
	if errors.Is(err, nr.ErrNotStored) {
		return nil, fmt.Errorf("backup %s has no resource list in its storage location (taken before Velero 1.1, or its upload failed)", backup)
	}
	return list, err
}

// notRestored are resources Velero never restores (its restore
// controller's nonRestorableResources) and those remade by controllers
// under new names, which the readiness wait covers.
var (
	notRestored = []string{"nodes", "events", "events.events.k8s.io", "backups.velero.io", "restores.velero.io",
		"resticrepositories.velero.io", "backuprepositories.velero.io", "csinodes.storage.k8s.io", "volumeattachments.storage.k8s.io",
		"datauploads.velero.io", "datadownloads.velero.io"}
	remade = []string{"pods", "replicasets.apps", "controllerrevisions.apps", "endpoints", "endpointslices.discovery.k8s.io"}
	// selfMade are objects every namespace, the copy too, gets by itself
	// (namespace-restore's list): compared like the rest, but no evidence
	// the restore brought anything back (EVIDENCE rule 1).
	selfMade = nr.ClusterMade
)

// comparison is what the copy holds against what the backup lists.
type comparison struct {
	missing       []string            // resource.group/name
	unserved      map[string][]string // API version/kind the cluster does not serve -> object names
	uncovered     map[string]int      // resource drillbot may not list (RBAC) -> objects not checked
	own           map[string]int      // resource -> drillbot's own RBAC objects, left out on both sides
	remade        map[string]int      // resource -> objects left to their controllers
	clusterScoped map[string]int      // resource -> objects not restored by design
	excluded      map[string]int
	selfMade      map[string]int // resource -> objects compared that the namespace gets by itself
	checked       int            // objects compared, less selfMade
	byRestore     int            // of checked, those the run's restore made (Velero's restore-name label)
	otherwise     []string       // of checked, those in the copy made by something else
}

const maxNamed = 20

func (c comparison) failures() []string {
	var out []string
	if len(c.missing) > 0 {
		out = append(out, fmt.Sprintf("in the backup but not restored (%d): %s", len(c.missing), named(c.missing)))
	}
	keys := make([]string, 0, len(c.unserved))
	for k := range c.unserved {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, fmt.Sprintf("this cluster does not serve %s (a CRD or API missing here): not restored (%d): %s", k, len(c.unserved[k]), named(c.unserved[k])))
	}
	return out
}

// named lists up to maxNamed names, and how many more there are.
func named(names []string) string {
	if len(names) <= maxNamed {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:maxNamed], ", ") + fmt.Sprintf(" and %d more", len(names)-maxNamed)
}

func (c comparison) findings() []string {
	out := []string{fmt.Sprintf("%d objects of the backup checked in the copy", c.checked)}
	if s := counts(c.uncovered); s != "" {
		out = append(out, "not checked, drillbot may not list them (RBAC): "+s)
	}
	if s := counts(c.own); s != "" {
		out = append(out, "drillbot's own RBAC, restored with the namespace, left out on both sides: "+s)
	}
	if s := counts(c.remade); s != "" {
		out = append(out, "left to their controllers (remade under new names; the readiness wait covers them): "+s)
	}
	if s := counts(c.clusterScoped); s != "" {
		out = append(out, "cluster-scoped, not restored into the copy by design: "+s)
	}
	if s := counts(c.excluded); s != "" {
		out = append(out, "excluded by the drill (params.excludedResources): "+s)
	}
	if s := counts(c.selfMade); s != "" {
		out = append(out, "compared but not counted, every namespace gets them by itself (default ServiceAccount, root CA ConfigMap, RPO marker): "+s)
	}
	return out
}

// nothingChecked is why a comparison that checked no object is no
// evidence: what the backup held in src and why none of it was compared.
func (c comparison) nothingChecked(backup, src string) string {
	parts := []string{fmt.Sprintf("no object of backup %s in namespace %s could be checked in the copy: nothing shows the restore brought it back", backup, src)}
	for _, p := range []struct {
		what string
		m    map[string]int
	}{
		{"drillbot may not list (RBAC)", c.uncovered},
		{"left to their controllers", c.remade},
		{"excluded by params.excludedResources", c.excluded},
		{"drillbot's own RBAC", c.own},
		{"made in every namespace by itself (no evidence)", c.selfMade},
	} {
		if s := counts(p.m); s != "" {
			parts = append(parts, p.what+": "+s)
		}
	}
	return strings.Join(parts, "; ")
}

func counts(m map[string]int) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// compare checks every object the backup lists in the source namespace
// is in the copy, by name, one list per kind (metadata only).
func compare(ctx context.Context, disc discovery.DiscoveryInterface, md metadata.Interface, list map[string][]string, src, copyNS, restore string, excluded []string) (comparison, error) {
	c := comparison{unserved: map[string][]string{}, uncovered: map[string]int{}, own: map[string]int{}, remade: map[string]int{},
		clusterScoped: map[string]int{}, excluded: map[string]int{}, selfMade: map[string]int{}}
	if cached, ok := disc.(discovery.CachedDiscoveryInterface); ok {
		cached.Invalidate()
	}
	// Discovery is read once here: restmapper.GetAPIGroupResources drops
	// the groups whose discovery failed without a word, and a group version
	// whose discovery failed is unknown, not unserved (EVIDENCE rule 5).
	gs, rs, err := disc.ServerGroupsAndResources()
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		return c, fmt.Errorf("discover API resources: %w", err)
	}
	var failed map[schema.GroupVersion]error
	if gd := (*discovery.ErrGroupDiscoveryFailed)(nil); errors.As(err, &gd) {
		failed = gd.Groups
	}
	groups, err := restmapper.GetAPIGroupResources(discovered{disc, gs, rs})
	if err != nil {
		return c, fmt.Errorf("discover API resources: %w", err)
	}
	mapper := restmapper.NewDiscoveryRESTMapper(groups)
	keys := make([]string, 0, len(list))
	for k := range list {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		var names []string
		var cluster int
		for _, e := range list[key] {
			ns, name, ok := strings.Cut(e, "/")
			switch {
			case !ok:
				cluster++
			case ns == src:
				names = append(names, name)
			}
		}
		i := strings.LastIndex(key, "/")
		if i < 0 {
			return c, fmt.Errorf("backup resource list: key %q is not API version/kind", key)
		}
		gv, err := schema.ParseGroupVersion(key[:i])
		if err != nil {
			return c, fmt.Errorf("backup resource list: key %q: %w", key, err)
		}
		gvk := gv.WithKind(key[i+1:])
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if meta.IsNoMatchError(err) {
			if gerr, ok := failed[gv]; ok && len(names) > 0 {
				return c, fmt.Errorf("discover %s, which the backup holds %d objects of: %w", gv, len(names), gerr)
			}
			if len(names) > 0 {
				c.unserved[key] = append(c.unserved[key], names...)
			}
			continue
		}
		if err != nil {
			return c, fmt.Errorf("map %s to a resource: %w", key, err)
		}
		resource := m.Resource.GroupResource().String()
		if m.Scope.Name() == meta.RESTScopeNameRoot {
			if gvk.Kind != "Namespace" && cluster > 0 {
				c.clusterScoped[resource] += cluster
			}
			continue
		}
		switch {
		case len(names) == 0:
			continue
		case slices.Contains(notRestored, resource):
			continue
		case slices.Contains(excluded, m.Resource.Resource) || slices.Contains(excluded, resource):
			c.excluded[resource] += len(names)
			continue
		case slices.Contains(remade, resource):
			c.remade[resource] += len(names)
			continue
		}
		have, err := listNames(ctx, md, m.Resource, copyNS)
		if apierrors.IsForbidden(err) {
			c.uncovered[resource] += len(names)
			continue
		}
		if err != nil {
			return c, err
		}
		for _, n := range names {
			obj, ok := have[n]
			self := slices.Contains(selfMade, resource+"/"+n)
			switch {
			case obj.own:
				// drillbot's RBAC in the source, restored with it: the
				// backup's entry is the copy's object, left out of both.
				c.own[resource]++
				continue
			case !ok:
				c.missing = append(c.missing, resource+"/"+n)
			}
			switch {
			case self:
				c.selfMade[resource]++
			case !ok:
				c.checked++
			case obj.restoredBy == label.GetValidName(restore):
				c.checked++
				c.byRestore++
			default:
				c.checked++
				c.otherwise = append(c.otherwise, resource+"/"+n)
			}
		}
	}
	sort.Strings(c.missing)
	return c, nil
}

// discovered answers ServerGroupsAndResources with what was read already.
type discovered struct {
	discovery.DiscoveryInterface
	groups    []*metav1.APIGroup
	resources []*metav1.APIResourceList
}

func (d discovered) ServerGroupsAndResources() ([]*metav1.APIGroup, []*metav1.APIResourceList, error) {
	return d.groups, d.resources, nil
}

// copied is what the comparison keeps of an object in the copy.
type copied struct {
	own        bool   // drillbot's own RBAC (labelled v1alpha1.LabelRBAC)
	restoredBy string // the Velero restore that made it (velero.io/restore-name)
}

// listNames lists a resource's objects in ns (metadata, in pages) by name.
func listNames(ctx context.Context, md metadata.Interface, gvr schema.GroupVersionResource, ns string) (map[string]copied, error) {
	out := map[string]copied{}
	opts := metav1.ListOptions{Limit: 500}
	for {
		page, err := md.Resource(gvr).Namespace(ns).List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list %s in %s: %w", gvr.GroupResource(), ns, err)
		}
		for _, item := range page.Items {
			out[item.Name] = copied{own: item.Labels[v1alpha1.LabelRBAC] != "", restoredBy: item.Labels[velerov1.RestoreNameLabel]}
		}
		if page.Continue == "" {
			return out, nil
		}
		opts.Continue = page.Continue
	}
}

// CompareCopy is the drill's comparison of a backup's resource list (as
// BackupResourceList answers it) with the copy in copyNS, for the
// benchmarks: how many objects of src were compared and which are missing.
func CompareCopy(ctx context.Context, disc discovery.DiscoveryInterface, md metadata.Interface, list map[string][]string, src, copyNS, restore string) (checked int, missing []string, err error) {
	c, err := compare(ctx, disc, md, list, src, copyNS, restore, nil)
	return c.checked, c.missing, err
}
