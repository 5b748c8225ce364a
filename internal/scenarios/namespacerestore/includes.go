package namespacerestore

import (
	"fmt"
	"slices"

	"github.com/gobwas/glob"
)

// IncludesNamespace reports whether a Velero backup spec's namespace lists
// (includedNamespaces, excludedNamespaces) take ns, as Velero decides it
// (pkg/util/collections IncludesExcludes.ShouldInclude, v1.18): an exclude
// pattern that matches wins; then an empty include list or "*" takes every
// namespace, else an include pattern must match. Patterns are compiled with
// gobwas/glob, as Velero compiles them, without separators: * and ** any run
// of characters, ? one, [abc], [a-z] and [!...] sets, {a,b} alternatives, \
// escapes.
//
// The spec is what the backup was asked to hold, not what it holds (its
// resource list says that): callers use it to propose or rule out a backup.
// A pattern that does not compile is an error, never a yes or a no (Velero
// itself then skips the rest of the list).
func IncludesNamespace(included, excluded []string, ns string) (bool, error) {
	for _, p := range excluded {
		ok, err := globMatch(p, ns)
		if err != nil {
			return false, fmt.Errorf("excluded namespace pattern %q: %w", p, err)
		}
		if ok {
			return false, nil
		}
	}
	if len(included) == 0 || slices.Contains(included, "*") {
		return true, nil
	}
	for _, p := range included {
		ok, err := globMatch(p, ns)
		if err != nil {
			return false, fmt.Errorf("included namespace pattern %q: %w", p, err)
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

func globMatch(pattern, name string) (bool, error) {
	g, err := glob.Compile(pattern)
	if err != nil {
		return false, err
	}
	return g.Match(name), nil
}

// VeleroIncludes is Velero's own answer to whether namespace lists take ns
// (pkg/util/collections IncludesExcludes.ShouldInclude, v1.18), bad
// patterns included: each list is walked sorted and without duplicates,
// and a pattern that does not compile ends that list's walk as no match.
// Use it where Velero acted on lists it never validated (a restore's); a
// backup's lists are validated before it runs, and IncludesNamespace names
// a bad pattern instead.
func VeleroIncludes(included, excluded []string, ns string) bool {
	if veleroMatch(excluded, ns) {
		return false
	}
	return len(included) == 0 || slices.Contains(included, "*") || veleroMatch(included, ns)
}

func veleroMatch(patterns []string, name string) bool {
	sorted := slices.Compact(slices.Sorted(slices.Values(patterns)))
	for _, p := range sorted {
		ok, err := globMatch(p, name)
		if err != nil {
			return false
		}
		if ok {
			return true
		}
	}
	return false
}
