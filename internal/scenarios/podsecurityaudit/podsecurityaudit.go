// Package podsecurityaudit is the pod-security-audit check: every
// namespace its selector matches enforces at least the required Pod
// Security level, and no pod running there violates the audited level. Pods
// are evaluated with the Pod Security admission plugin's own library
// (k8s.io/pod-security-admission), the code the API server runs for a
// server-side dry-run of the enforce label, so the violations named are
// the ones that dry-run would warn about; it needs only to list pods, not
// to update every namespace. It writes nothing.
package podsecurityaudit

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes"
	psaapi "k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/scenarios/check"
)

// Name is the scenario kind.
const Name = "pod-security-audit"

// Params are the drill's spec.params.
type Params struct {
	// Namespaces selects the namespaces audited (a label selector).
	Namespaces *metav1.LabelSelector `json:"namespaces"`
	// Enforce is the least level each must enforce (default restricted).
	Enforce string `json:"enforce,omitempty"`
	// Audit is the level running pods are evaluated at (default: Enforce).
	// Staging may enforce baseline and audit restricted.
	Audit string `json:"audit,omitempty"`
}

func (p *Params) defaults() {
	if p.Enforce == "" {
		p.Enforce = string(psaapi.LevelRestricted)
	}
	if p.Audit == "" {
		p.Audit = p.Enforce
	}
}

// Deps are what the check needs.
type Deps struct {
	Kube   kubernetes.Interface
	Logger *slog.Logger
}

// Kind is the pod-security-audit kind: a check.
type Kind struct {
	check.Kind
	Deps Deps
}

var _ engine.Kind = Kind{}

// ValidateParams implements engine.Kind.
func (Kind) ValidateParams(spec v1alpha1.DrillSpec, path *field.Path) field.ErrorList {
	var p Params
	errs := drill.DecodeParams(spec.Params, &p, path)
	if len(errs) > 0 {
		return errs
	}
	errs = append(errs, check.ValidateNamespaces(p.Namespaces, path.Child("namespaces"))...)
	for name, v := range map[string]string{"enforce": p.Enforce, "audit": p.Audit} {
		if v == "" {
			continue
		}
		if _, err := psaapi.ParseLevel(v); err != nil {
			errs = append(errs, field.NotSupported(path.Child(name), v, []string{"privileged", "baseline", "restricted"}))
		}
	}
	return errs
}

// New implements engine.Kind.
func (k Kind) New(def drill.Definition, runName string) (engine.Scenario, error) {
	var p Params
	if err := drill.Params(def.Spec, &p); err != nil {
		return nil, err
	}
	p.defaults()
	sel, err := check.SelectNamespaces(p.Namespaces)
	if err != nil {
		return nil, err
	}
	enforce, err := psaapi.ParseLevel(p.Enforce)
	if err != nil {
		return nil, err
	}
	audit, err := psaapi.ParseLevel(p.Audit)
	if err != nil {
		return nil, err
	}
	eval, err := psapolicy.NewEvaluator(psapolicy.DefaultChecks())
	if err != nil {
		return nil, fmt.Errorf("pod security evaluator: %w", err)
	}
	log := k.Deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &auditCheck{kube: k.Deps.Kube, selector: sel, enforce: enforce, audit: audit, eval: eval,
		log: log.With("scenario", Name, "run", runName)}, nil
}

type auditCheck struct {
	check.NoFault
	kube     kubernetes.Interface
	selector check.Namespaces
	enforce  psaapi.Level
	audit    psaapi.Level
	eval     psapolicy.Evaluator
	log      *slog.Logger

	results []Namespace
}

// Namespace is one audited namespace.
type Namespace struct {
	Name string
	// Enforced is its enforce label's level ("" when unlabelled).
	Enforced string
	// Version is its enforce-version label ("" means latest).
	Version string
	// Violations are "pod: detail" for each pod violating the audit level.
	Violations []string
	Pods       int
}

// Preflight implements engine.Scenario.
func (c *auditCheck) Preflight(context.Context) error { return nil }

// Recover implements engine.Scenario: read the namespaces and their pods
// and evaluate them.
func (c *auditCheck) Recover(ctx context.Context, m engine.Milestones) error {
	nss, err := c.selector.List(ctx, c.kube)
	if err != nil {
		return err
	}
	for _, ns := range nss {
		r := Namespace{Name: ns.Name, Enforced: ns.Labels[psaapi.EnforceLevelLabel], Version: ns.Labels[psaapi.EnforceVersionLabel]}
		opts := metav1.ListOptions{Limit: 500}
		for {
			pods, err := c.kube.CoreV1().Pods(ns.Name).List(ctx, opts)
			if err != nil {
				return fmt.Errorf("list pods in %s: %w", ns.Name, err)
			}
			for i := range pods.Items {
				p := &pods.Items[i]
				if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
					continue // not running: nothing to enforce on
				}
				r.Pods++
				res := psapolicy.AggregateCheckResults(c.eval.EvaluatePod(psaapi.LevelVersion{Level: c.audit, Version: psaapi.LatestVersion()}, &p.ObjectMeta, &p.Spec))
				if !res.Allowed {
					r.Violations = append(r.Violations, p.Name+": "+res.ForbiddenDetail())
				}
			}
			if pods.Continue == "" {
				break
			}
			opts.Continue = pods.Continue
		}
		sort.Strings(r.Violations)
		c.results = append(c.results, r)
	}
	m.Mark("evaluated")
	return nil
}

// Verify implements engine.Scenario.
func (c *auditCheck) Verify(context.Context) (engine.Verification, error) {
	return Judge(c.results, c.selector.String(), c.enforce, c.audit), nil
}

const maxPods = 10

// Judge names every namespace that enforces less than required and every
// pod that violates the audit level.
func Judge(results []Namespace, selector string, enforce, audit psaapi.Level) engine.Verification {
	var v engine.Verification
	if len(results) == 0 {
		v.Inconclusive = fmt.Sprintf("no namespace matches %s: nothing to audit", selector)
		return v
	}
	compliant := 0
	for _, r := range results {
		ok := true
		level, err := psaapi.ParseLevel(r.Enforced)
		switch {
		case r.Enforced == "":
			v.Failures = append(v.Failures, fmt.Sprintf("namespace %s enforces no Pod Security level (no %s label: the cluster default applies, privileged unless the API server's admission configuration says otherwise)", r.Name, psaapi.EnforceLevelLabel))
			ok = false
		case err != nil:
			v.Failures = append(v.Failures, fmt.Sprintf("namespace %s: %s=%q is not a level (the API server ignores it)", r.Name, psaapi.EnforceLevelLabel, r.Enforced))
			ok = false
		case psaapi.CompareLevels(level, enforce) < 0:
			v.Failures = append(v.Failures, fmt.Sprintf("namespace %s enforces %s, less than %s", r.Name, level, enforce))
			ok = false
		}
		if r.Version != "" && r.Version != "latest" {
			v.Findings = append(v.Findings, fmt.Sprintf("namespace %s pins the enforced level to Kubernetes %s (%s): checks added since are not enforced", r.Name, r.Version, psaapi.EnforceVersionLabel))
		}
		if n := len(r.Violations); n > 0 {
			named := r.Violations
			more := ""
			if n > maxPods {
				named, more = named[:maxPods], fmt.Sprintf("; and %d more", n-maxPods)
			}
			v.Failures = append(v.Failures, fmt.Sprintf("namespace %s: %d of %d pods violate %s: %s%s", r.Name, n, r.Pods, audit, strings.Join(named, "; "), more))
			ok = false
		}
		if ok {
			compliant++
		}
		v.Findings = append(v.Findings, fmt.Sprintf("namespace %s: enforces %s, %d pods, %d violating %s", r.Name, orNone(r.Enforced), r.Pods, len(r.Violations), audit))
	}
	v.Findings = append([]string{fmt.Sprintf("Pod Security compliance: %d of %d namespaces (%s enforced, pods at %s)", compliant, len(results), enforce, audit)}, v.Findings...)
	v.Posture = &v1alpha1.PostureMeasure{Compliant: int32(compliant), Total: int32(len(results)), Of: "namespaces"}
	return v
}

func orNone(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}
