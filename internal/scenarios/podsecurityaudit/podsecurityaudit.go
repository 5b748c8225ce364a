// Package podsecurityaudit is the pod-security-audit check: every
// namespace its selector matches enforces at least the required Pod
// Security level, at a release that lacks none of that level's checks, and
// no pod running there violates the audited level. Pods are evaluated with
// the Pod Security admission plugin's own library
// (k8s.io/pod-security-admission), the code the API server runs for a
// server-side dry-run of the enforce label, so the violations named are
// the ones that dry-run would warn about; it needs only to list pods, not
// to update every namespace. It writes nothing.
//
// What its PASS rests on, by the rules of evidence (EVIDENCE.md):
//  1. at least one namespace matched and was judged; none matched is
//     INCONCLUSIVE.
//  2. the namespaces, their labels and their pods are listed in this run.
//  3. the enforce labels are what the API server's admission reads, the
//     running pods what it admitted (evaluated at latest); an
//     enforce-version pin is judged by the checks the library defines at
//     that release against those at the release the API server runs (its
//     /version), not by the label's presence.
//  5. a /version that cannot be read leaves a pinned namespace undecided:
//     INCONCLUSIVE, not compliant; a list error ends the run.
//  6. only the selected namespaces of this cluster.
//  8. a pin at or past the API server's release is latest there and
//     compliant; a check revision that only admits more (loosened, listed
//     and tested against the library) is no gap; a pin past the library's
//     newest release, on a newer API server, is undecided, not a failure.
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
	utilversion "k8s.io/apimachinery/pkg/util/version"
	"k8s.io/client-go/discovery"
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
	checks := psapolicy.DefaultChecks()
	eval, err := psapolicy.NewEvaluator(checks)
	if err != nil {
		return nil, fmt.Errorf("pod security evaluator: %w", err)
	}
	log := k.Deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &auditCheck{kube: k.Deps.Kube, selector: sel, enforce: enforce, audit: audit, eval: eval, checks: checks,
		log: log.With("scenario", Name, "run", runName)}, nil
}

type auditCheck struct {
	check.NoFault
	kube     kubernetes.Interface
	selector check.Namespaces
	enforce  psaapi.Level
	audit    psaapi.Level
	eval     psapolicy.Evaluator
	checks   []psapolicy.Check
	log      *slog.Logger

	results []Namespace
	// the API server's release, read once a namespace pins a version
	server    *psaapi.Version
	serverErr error
}

// Namespace is one audited namespace.
type Namespace struct {
	Name string
	// Enforced is its enforce label's level ("" when unlabelled).
	Enforced string
	// Version is its enforce-version label ("" means latest).
	Version string
	// Pin is what Version leaves unenforced of the required level.
	Pin Pin
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
		if r.Version != "" && r.Version != "latest" {
			server, err := c.serverVersion()
			r.Pin = judgePin(c.checks, c.enforce, r.Version, server, err)
		}
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

// serverVersion is the API server's release (major.minor), read once.
func (c *auditCheck) serverVersion() (psaapi.Version, error) {
	if c.server == nil && c.serverErr == nil {
		v, err := readServerVersion(c.kube.Discovery())
		c.server, c.serverErr = &v, err
	}
	return *c.server, c.serverErr
}

func readServerVersion(d discovery.ServerVersionInterface) (psaapi.Version, error) {
	info, err := d.ServerVersion()
	if err != nil {
		return psaapi.Version{}, fmt.Errorf("read the API server's /version: %w", err)
	}
	v, err := utilversion.ParseGeneric(info.GitVersion)
	if err != nil || v.Major() != 1 {
		return psaapi.Version{}, fmt.Errorf("the API server's version %q is not a Kubernetes 1.x release", info.GitVersion)
	}
	return psaapi.MajorMinorVersion(1, int(v.Minor())), nil
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
	var undecided []string
	for _, r := range results {
		ok := true
		level, err := psaapi.ParseLevel(r.Enforced)
		switch {
		case r.Enforced == "":
			v.Failures = append(v.Failures, fmt.Sprintf("namespace %s enforces no Pod Security level (no %s label: the cluster default applies, privileged unless the API server's admission configuration says otherwise)", r.Name, psaapi.EnforceLevelLabel))
			ok = false
		case err != nil:
			v.Failures = append(v.Failures, fmt.Sprintf("namespace %s: %s=%q is not a level (the API server records an error for every pod it admits there, and evaluates it at restricted); set a valid level", r.Name, psaapi.EnforceLevelLabel, r.Enforced))
			ok = false
		case psaapi.CompareLevels(level, enforce) < 0:
			v.Failures = append(v.Failures, fmt.Sprintf("namespace %s enforces %s, less than %s", r.Name, level, enforce))
			ok = false
		}
		pinned := fmt.Sprintf("namespace %s pins the enforced level to Kubernetes %s (%s)", r.Name, r.Version, psaapi.EnforceVersionLabel)
		switch p := r.Pin; {
		case r.Version == "" || r.Version == "latest":
		case p.Invalid:
			v.Failures = append(v.Failures, fmt.Sprintf(`namespace %s: %s=%q is not a version ("latest" or "v1.<minor>"): the API server logs an error for every pod it admits there (and evaluates it at latest); set a valid version or remove the label`,
				r.Name, psaapi.EnforceVersionLabel, r.Version))
			ok = false
		case len(p.Lacks) > 0:
			v.Failures = append(v.Failures, fmt.Sprintf("namespace %s pins %s to %s (%s): the API server (%s) does not enforce %s there, which %s has at latest: it admits pods this audit names as violations",
				r.Name, orNone(r.Enforced), r.Version, psaapi.EnforceVersionLabel, p.Against, strings.Join(p.Lacks, ", "), enforce))
			v.Findings = append(v.Findings, pinned+": checks the API server enforces at latest are not enforced there")
			ok = false
		case p.Unknown != "":
			undecided = append(undecided, fmt.Sprintf("whether namespace %s's pin to %s leaves checks unenforced is unknown: %s", r.Name, r.Version, p.Unknown))
			v.Findings = append(v.Findings, pinned+": not compared ("+p.Unknown+")")
		default:
			v.Findings = append(v.Findings, pinned+fmt.Sprintf(": it lacks no check of %s the API server enforces at latest", enforce))
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
		if ok && r.Pin.Compliant() {
			compliant++
		}
		v.Findings = append(v.Findings, fmt.Sprintf("namespace %s: enforces %s, %d pods, %d violating %s", r.Name, orNone(r.Enforced), r.Pods, len(r.Violations), audit))
	}
	summary := fmt.Sprintf("Pod Security compliance: %d of %d namespaces (%s enforced, pods at %s)", compliant, len(results), enforce, audit)
	if len(undecided) > 0 {
		// An undecided namespace is neither compliant nor not: no count.
		v.Inconclusive = strings.Join(undecided, "; ")
		summary += fmt.Sprintf(", %d undecided", len(undecided))
	} else {
		v.Posture = &v1alpha1.PostureMeasure{Compliant: int32(compliant), Total: int32(len(results)), Of: "namespaces"}
	}
	v.Findings = append([]string{summary}, v.Findings...)
	return v
}

func orNone(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}
