package namespacerestore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/drillbot-io/drillbot/internal/engine"
)

// ResourceLister reads a backup's resource list: what Velero says it backed
// up, as API version/kind to namespace/name (or name).
type ResourceLister interface {
	BackupResourceList(ctx context.Context, veleroNamespace, backup string) (map[string][]string, error)
}

// BackupResourceList implements ResourceLister; a backup without a
// resource list returns ErrNotStored.
func (v VeleroDownloads) BackupResourceList(ctx context.Context, vns, backup string) (map[string][]string, error) {
	var list map[string][]string
	err := v.Decode(ctx, vns, backup, velerov1.DownloadTargetKindBackupResourceList, "resource list", &list)
	return list, err
}

// LeftOut judges a namespace's live inventory against a backup's resource
// list: every object the list does not hold was either left out of the
// backup (it existed when the Backup object was made: the backup's
// filters, a label selector, Velero's exclude label) or is newer than the
// backup (the RPO window: lost by any restore from it). made is the Backup
// object's creationTimestamp: the API server's clock, the one the objects'
// creation times are on (Velero's startTimestamp is on Velero's), and never
// later than the backup's real start. An object carrying Velero's exclude
// label is left out whatever its age: no backup holds it. Objects the
// cluster makes by itself (ClusterMade) are neither. resources maps the
// kinds served to inventory names; kinds no longer served hold nothing of
// the inventory.
func LeftOut(inv Inventory, resources map[schema.GroupKind]string, list map[string][]string, ns string, made time.Time) (left, window []string, err error) {
	held := map[string]bool{}
	for key, entries := range list {
		i := strings.LastIndex(key, "/")
		if i < 0 {
			return nil, nil, fmt.Errorf("backup resource list: key %q is not API version/kind", key)
		}
		gv, err := schema.ParseGroupVersion(key[:i])
		if err != nil {
			return nil, nil, fmt.Errorf("backup resource list: key %q: %w", key, err)
		}
		resource, ok := resources[schema.GroupKind{Group: gv.Group, Kind: key[i+1:]}]
		if !ok {
			continue
		}
		for _, e := range entries {
			if n, name, ok := strings.Cut(e, "/"); ok && n == ns {
				held[resource+"/"+name] = true
			}
		}
	}
	for k, it := range inv {
		switch {
		case held[k] || slices.Contains(ClusterMade, k):
		case !it.Excluded && !made.IsZero() && it.Created.After(made):
			window = append(window, k)
		default:
			left = append(left, k)
		}
	}
	sort.Strings(left)
	sort.Strings(window)
	return left, window, nil
}

// holdsNamespace tells whether a backup's resource list holds the
// namespace object ns itself (its labels and annotations: Pod Security,
// the selectors NetworkPolicies use, drillbot's opt-in).
func holdsNamespace(list map[string][]string, ns string) bool {
	return slices.Contains(list["v1/Namespace"], ns)
}

// filteredOut names what in a backup's spec may leave objects of the
// kind r (an inventory name, resource.group) out of it: its resource
// filters, matched as Velero resolves them (plural, singular, kind or
// short name, with or without the group; "*"), and its label selectors and
// resource policy, which may leave out any kind. "" when nothing may.
func filteredOut(spec velerov1.BackupSpec, qualified string, r metav1.APIResource) string {
	resource, group, _ := strings.Cut(qualified, ".")
	names := append([]string{resource, r.SingularName, strings.ToLower(r.Kind)}, r.ShortNames...)
	matches := func(entry string) bool {
		if entry == "*" {
			return true
		}
		n, g, _ := strings.Cut(strings.ToLower(entry), ".")
		return (g == "" || g == group) && slices.Contains(names, n)
	}
	for _, f := range []struct {
		name    string
		entries []string
		include bool
	}{
		{"includedResources", spec.IncludedResources, true},
		{"includedNamespaceScopedResources", spec.IncludedNamespaceScopedResources, true},
		{"excludedResources", spec.ExcludedResources, false},
		{"excludedNamespaceScopedResources", spec.ExcludedNamespaceScopedResources, false},
	} {
		if len(f.entries) > 0 && f.include != slices.ContainsFunc(f.entries, matches) {
			return f.name
		}
	}
	switch {
	case spec.LabelSelector != nil:
		return "labelSelector"
	case len(spec.OrLabelSelectors) > 0:
		return "orLabelSelectors"
	case spec.ResourcePolicy != nil:
		return "resourcePolicy " + spec.ResourcePolicy.Name
	}
	return ""
}

// firstOf names up to n of names, and how many more.
func firstOf(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:n], ", "), len(names)-n)
}

// checkContents refuses, before anything is deleted, a target holding
// objects the backup left out (its resource or label filters, Velero's
// exclude label): the restore cannot bring them back. It takes the
// inventory again, right before the delete, and keeps it as the one
// Verify compares with; objects newer than the backup are the RPO window.
func (s *scenario) checkContents(ctx context.Context, list map[string][]string) error {
	c, err := takeCensus(ctx, s.deps.Discovery, s.deps.Metadata, s.ns)
	if err != nil {
		return err
	}
	if len(c.failed) > 0 {
		groups := make([]string, 0, len(c.failed))
		errs := make([]error, 0, len(c.failed))
		for g, e := range c.failed {
			groups = append(groups, g)
			errs = append(errs, e)
		}
		sort.Strings(groups)
		return engine.Unknown(fmt.Errorf("discovery of API groups %s failed: their objects in namespace %s cannot be checked against backup %s: %w",
			strings.Join(groups, ", "), s.ns, s.backup.Name, errors.Join(errs...)))
	}
	left, window, err := LeftOut(c.inv, c.resources, list, s.ns, s.backup.CreationTimestamp.Time)
	if err != nil {
		return engine.Unknown(fmt.Errorf("velero backup %s: %w", s.backup.Name, err))
	}
	if !holdsNamespace(list, s.ns) {
		return engine.Refuse("velero backup %s does not hold namespace %s itself: a restore from it makes a bare namespace, without its labels and annotations (Pod Security, NetworkPolicy selectors, the opt-in): refusing",
			s.backup.Name, s.ns)
	}
	if len(left) > 0 {
		return engine.Refuse("velero backup %s leaves out %d objects of namespace %s that existed when it was made (its resource filters, a label selector, or the label %s): %s; deleting namespace %s would lose them: refusing",
			s.backup.Name, len(left), s.ns, velerov1.ExcludeFromBackupLabel, firstOf(left, 10), s.ns)
	}
	// Kinds drillbot may not list are not compared; the backup's own spec
	// says whether it may have left objects of them out.
	var unseen []string
	for _, k := range c.uncovered {
		if why := filteredOut(s.backup.Spec, k, c.uncoveredAPI[k]); why != "" {
			unseen = append(unseen, k+" ("+why+")")
		}
	}
	if len(unseen) > 0 {
		return engine.Refuse("velero backup %s may leave out objects of namespace %s of kinds drillbot may not list, so cannot compare: %s; deleting the namespace could lose them: refusing (grant drillbot list on them, or back the namespace up without that filter)",
			s.backup.Name, s.ns, strings.Join(unseen, ", "))
	}
	s.inventory, s.skipped, s.window = c.inv, c.uncovered, window
	return nil
}
