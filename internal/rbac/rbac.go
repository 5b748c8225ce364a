// Package rbac derives drillbot's RBAC from its drills: each scenario kind
// says what its drills need (engine.Permissioner), and this package merges
// that into a ClusterRole for what is cluster-wide and a Role per
// namespace, checks it holds no wildcard and no privilege-granting verb,
// and renders it as manifests or as the Helm chart's template.
package rbac

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/halt"
)

// Set is a merged set of rules: Cluster for the ClusterRole, Namespaced
// for a Role in each namespace.
type Set struct {
	Cluster    []rbacv1.PolicyRule
	Namespaced map[string][]rbacv1.PolicyRule
}

// Base is what drillbot needs whatever it runs, with its DrillRuns in ns:
// its own records (deleting those beyond a drill's history limit) and their
// Events, the leader Lease and the per-target lock Leases, reading its CRD
// and the halt switch and the cluster's drill policy beside it, and the
// kube-system namespace (its UID names the cluster in the archive).
func Base(ns string) []engine.Grant {
	return []engine.Grant{
		engine.Allow(ns, "drillbot.io", []string{"drillruns"}, []string{"get", "list", "watch", "create", "update", "patch", "delete"}),
		engine.Allow(ns, "drillbot.io", []string{"drillruns/status"}, []string{"update", "patch"}),
		engine.Allow(ns, "", []string{"events"}, []string{"create", "patch"}),
		engine.Allow(ns, "coordination.k8s.io", []string{"leases"}, []string{"get", "create", "update", "delete"}),
		engine.Allow(ns, "", []string{"configmaps"}, []string{"get", "list", "watch"}, halt.Name, halt.PolicyName),
		// kube-system's UID is the cluster's identity on archived records.
		engine.Allow("", "", []string{"namespaces"}, []string{"get"}, ns, "kube-system"),
		engine.Allow("", "apiextensions.k8s.io", []string{"customresourcedefinitions"}, []string{"get"}, "drillruns.drillbot.io"),
	}
}

// ForDrill is what one drill needs: its kind's grants and reading its
// target namespace (the opt-in check).
func ForDrill(def drill.Definition, kinds engine.Registry) ([]engine.Grant, error) {
	k, ok := kinds[def.Spec.Scenario]
	if !ok {
		return nil, fmt.Errorf("drill %s: unknown scenario kind %q", def.Name, def.Spec.Scenario)
	}
	p, ok := k.(engine.Permissioner)
	if !ok {
		return nil, fmt.Errorf("drill %s: scenario kind %q does not declare its permissions", def.Name, def.Spec.Scenario)
	}
	if def.Spec.Target.Namespace == "" { // a check: no target, no opt-in to read
		return p.Permissions(def), nil
	}
	g := append([]engine.Grant{engine.Allow("", "", []string{"namespaces"}, []string{"get"}, def.Spec.Target.Namespace)}, p.Permissions(def)...)
	return g, nil
}

// Merge groups grants by namespace and merges rules that differ only in
// their resources. The result is sorted, so it renders the same every time.
func Merge(grants []engine.Grant) Set {
	s := Set{Namespaced: map[string][]rbacv1.PolicyRule{}}
	for _, g := range grants {
		r := normalize(g.Rule)
		if g.Namespace == "" {
			s.Cluster = add(s.Cluster, r)
		} else {
			s.Namespaced[g.Namespace] = add(s.Namespaced[g.Namespace], r)
		}
	}
	sortRules(s.Cluster)
	for _, rules := range s.Namespaced {
		sortRules(rules)
	}
	return s
}

func joined(l []string) string { return strings.Join(l, ",") }

func sortRules(rules []rbacv1.PolicyRule) {
	key := func(x rbacv1.PolicyRule) string {
		if len(x.NonResourceURLs) > 0 { // after the resource rules
			return "~" + joined(x.NonResourceURLs) + "|" + joined(x.Verbs)
		}
		return joined(x.APIGroups) + "|" + joined(x.Resources) + "|" + joined(x.Verbs) + "|" + joined(x.ResourceNames)
	}
	slices.SortFunc(rules, func(a, b rbacv1.PolicyRule) int { return strings.Compare(key(a), key(b)) })
}

func normalize(r rbacv1.PolicyRule) rbacv1.PolicyRule {
	r = *r.DeepCopy()
	for _, l := range []*[]string{&r.APIGroups, &r.Resources, &r.Verbs, &r.ResourceNames} {
		slices.Sort(*l)
		*l = slices.Compact(*l)
	}
	if len(r.ResourceNames) == 0 {
		r.ResourceNames = nil
	}
	return r
}

// add merges r into rules: same groups, verbs and names share one rule.
func add(rules []rbacv1.PolicyRule, r rbacv1.PolicyRule) []rbacv1.PolicyRule {
	same := func(x rbacv1.PolicyRule) bool {
		return joined(x.APIGroups) == joined(r.APIGroups) && joined(x.Verbs) == joined(r.Verbs) && joined(x.ResourceNames) == joined(r.ResourceNames) &&
			len(x.NonResourceURLs) == 0 && len(r.NonResourceURLs) == 0
	}
	if len(r.NonResourceURLs) > 0 { // kept apart; the same one once
		if slices.ContainsFunc(rules, func(x rbacv1.PolicyRule) bool {
			return joined(x.NonResourceURLs) == joined(r.NonResourceURLs) && joined(x.Verbs) == joined(r.Verbs)
		}) {
			return rules
		}
		return append(rules, r)
	}
	if i := slices.IndexFunc(rules, same); i >= 0 {
		rules[i].Resources = append(rules[i].Resources, r.Resources...)
		rules[i] = normalize(rules[i])
		return rules
	}
	return append(rules, r)
}

// forbiddenVerbs grant privileges beyond the rules themselves.
var forbiddenVerbs = []string{"escalate", "bind", "impersonate", "*"}

// Check refuses wildcards and privilege-granting verbs, and write access to
// RBAC itself.
func Check(rules []rbacv1.PolicyRule) error {
	for _, r := range rules {
		for _, l := range [][]string{r.APIGroups, r.Resources, r.Verbs, r.ResourceNames} {
			if slices.Contains(l, "*") {
				return fmt.Errorf("rule %v: wildcard", r)
			}
		}
		for _, v := range r.Verbs {
			if slices.Contains(forbiddenVerbs, v) {
				return fmt.Errorf("rule %v: verb %q grants privileges", r, v)
			}
		}
		if slices.Contains(r.APIGroups, rbacv1.GroupName) && slices.ContainsFunc(r.Verbs, func(v string) bool { return v != "get" && v != "list" && v != "watch" }) {
			return fmt.Errorf("rule %v: writes RBAC", r)
		}
		// The non-resource URLs allowed, read only: the API server's
		// metrics (encryption-at-rest's counters) and its release
		// (pod-security-audit's pins; every user may read it by default).
		if len(r.NonResourceURLs) > 0 && (joined(r.Verbs) != "get" || slices.ContainsFunc(r.NonResourceURLs, func(u string) bool { return !slices.Contains(readableURLs, u) })) {
			return fmt.Errorf("rule %v: non-resource URLs other than get %s", r, strings.Join(readableURLs, ", "))
		}
	}
	return nil
}

// readableURLs are the non-resource URLs a drill may read.
var readableURLs = []string{"/metrics", "/version"}

// Subject is who the rules are bound to.
type Subject struct {
	Namespace, ServiceAccount string
}

// Objects renders s as a ClusterRole and ClusterRoleBinding named name
// (when there are cluster rules) and a Role and RoleBinding named name in
// each namespace.
func (s Set) Objects(name string, sub Subject, labels map[string]string) ([]any, error) {
	if err := Check(s.Cluster); err != nil {
		return nil, err
	}
	subjects := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sub.ServiceAccount, Namespace: sub.Namespace}}
	all := map[string]string{v1alpha1.LabelRBAC: "true"}
	for k, v := range labels {
		all[k] = v
	}
	meta := func(ns string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name, Namespace: ns, Labels: all} }
	var out []any
	if len(s.Cluster) > 0 {
		out = append(out,
			&rbacv1.ClusterRole{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"}, ObjectMeta: meta(""), Rules: s.Cluster},
			&rbacv1.ClusterRoleBinding{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"}, ObjectMeta: meta(""),
				RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name}, Subjects: subjects})
	}
	namespaces := make([]string, 0, len(s.Namespaced))
	for ns := range s.Namespaced {
		namespaces = append(namespaces, ns)
	}
	sort.Strings(namespaces)
	for _, ns := range namespaces {
		if err := Check(s.Namespaced[ns]); err != nil {
			return nil, err
		}
		out = append(out,
			&rbacv1.Role{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"}, ObjectMeta: meta(ns), Rules: s.Namespaced[ns]},
			&rbacv1.RoleBinding{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"}, ObjectMeta: meta(ns),
				RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}, Subjects: subjects})
	}
	return out, nil
}

// YAML renders objects as one multi-document YAML stream.
func YAML(objs []any) ([]byte, error) {
	var buf bytes.Buffer
	for _, o := range objs {
		b, err := yaml.Marshal(o)
		if err != nil {
			return nil, err
		}
		// Drop the empty creationTimestamp metav1 renders.
		b = bytes.ReplaceAll(b, []byte("  creationTimestamp: null\n"), nil)
		buf.WriteString("---\n")
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

// Placeholders the Helm rendering replaces with template expressions.
const (
	phName      = "drillbot-helm-fullname"
	phNamespace = "drillbot-helm-release-namespace"
	phSA        = "drillbot-helm-service-account"
	phLabels    = "drillbot-helm-labels"
)

// Helm renders the chart's RBAC template: the base rules for the release
// namespace, then one block per drill, rendered only when
// .Values.drills.<name>.enabled. runNamespace is not a value: the base
// rules follow the release namespace.
func Helm(defs []drill.Definition, kinds engine.Registry) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString("{{- /* Generated by `drillbot rbac --helm -f drills/` (make chart); do not edit. */ -}}\n")
	block := func(suffix string, grants []engine.Grant) error {
		objs, err := Merge(grants).Objects(phName+suffix, Subject{Namespace: phNamespace, ServiceAccount: phSA}, map[string]string{phLabels: "x"})
		if err != nil {
			return err
		}
		b, err := YAML(objs)
		if err != nil {
			return err
		}
		s := string(b)
		s = strings.ReplaceAll(s, "    "+phLabels+": x\n", "    {{- include \"drillbot.labels\" . | nindent 4 }}\n")
		s = strings.ReplaceAll(s, phName, `{{ include "drillbot.fullname" . }}`)
		s = strings.ReplaceAll(s, phNamespace, "{{ .Release.Namespace }}")
		s = strings.ReplaceAll(s, phSA, `{{ include "drillbot.serviceAccountName" . }}`)
		buf.WriteString(s)
		return nil
	}
	if err := block("", Base(phNamespace)); err != nil {
		return nil, err
	}
	sorted := slices.Clone(defs)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, d := range sorted {
		g, err := ForDrill(d, kinds)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&buf, "{{- if (index .Values.drills %q).enabled }}\n", d.Name)
		if err := block("-"+d.Name, g); err != nil {
			return nil, err
		}
		buf.WriteString("{{- end }}\n")
	}
	return buf.Bytes(), nil
}
