// Package backupcoverage is the backup-coverage check: every namespace its
// selector matches (e.g. production's) is included by an unpaused Velero
// Schedule whose newest Completed backup is younger than the drill's RPO
// target, in an Available storage location. It injects nothing and writes
// nothing; the run's RPO is the age of the stalest namespace's newest
// backup: the data a disaster now would lose there.
package backupcoverage

import (
	"context"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/scenarios/check"
	nr "github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
)

// Name is the scenario kind.
const Name = "backup-coverage"

// Params are the drill's spec.params.
type Params struct {
	// Namespaces selects the namespaces that must be covered (a label
	// selector on namespaces, e.g. matchLabels: {env: production}).
	Namespaces *metav1.LabelSelector `json:"namespaces"`
	// VeleroNamespace is where Velero runs (default "velero").
	VeleroNamespace string `json:"veleroNamespace,omitempty"`
}

// Deps are what the check needs from the outside.
type Deps struct {
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
	// Clock gives the age of backups; it is never used for timing.
	Clock  clock.PassiveClock
	Logger *slog.Logger
}

// Kind is the backup-coverage kind: a check.
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
	if spec.Objectives.RPO == "" {
		errs = append(errs, field.Required(field.NewPath("spec", "objectives", "rpo"), "backup-coverage checks each namespace's newest backup against the RPO target: set it"))
	}
	return errs
}

// New implements engine.Kind.
func (k Kind) New(def drill.Definition, runName string) (engine.Scenario, error) {
	var p Params
	if err := drill.Params(def.Spec, &p); err != nil {
		return nil, err
	}
	if p.VeleroNamespace == "" {
		p.VeleroNamespace = "velero"
	}
	sel, err := check.SelectNamespaces(p.Namespaces)
	if err != nil {
		return nil, err
	}
	// The loader parsed the target (def.RPO); ValidateParams required it.
	rpo := def.RPO
	if rpo <= 0 {
		return nil, fmt.Errorf("drill %s: spec.objectives.rpo is not set", def.Name)
	}
	d := k.Deps
	if d.Clock == nil {
		d.Clock = clock.RealClock{}
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return &coverageCheck{deps: d, params: p, selector: sel, rpo: rpo, log: d.Logger.With("scenario", Name, "run", runName)}, nil
}

type coverageCheck struct {
	check.NoFault
	deps     Deps
	params   Params
	selector check.Namespaces
	rpo      time.Duration
	log      *slog.Logger

	coverage []Coverage // found by Recover
}

// Coverage is what protects one namespace.
type Coverage struct {
	Namespace string
	// Schedules are the unpaused Schedules that include it.
	Schedules []string
	// Newest is its newest Completed backup of those schedules (nil: none).
	Newest *velerov1.Backup
	// Unavailable names storage locations of its schedules that are not
	// Available.
	Unavailable []string
	// Partial says a covering schedule backs up only some of its objects
	// (a resource label selector or included resources).
	Partial []string
}

// Preflight implements engine.Scenario: nothing to check before; the
// check itself runs in Recover, whose time is the run's RTO.
func (c *coverageCheck) Preflight(context.Context) error { return nil }

// Recover implements engine.Scenario: read the namespaces, Schedules,
// Backups and storage locations.
func (c *coverageCheck) Recover(ctx context.Context, m engine.Milestones) error {
	nss, err := c.selector.List(ctx, c.deps.Kube)
	if err != nil {
		return err
	}
	vns := c.params.VeleroNamespace
	var schedules []velerov1.Schedule
	if err := list(ctx, c.deps.Dynamic, nr.SchedulesGVR, vns, &schedules); err != nil {
		return err
	}
	var backups []velerov1.Backup
	if err := list(ctx, c.deps.Dynamic, nr.BackupsGVR, vns, &backups); err != nil {
		return err
	}
	var locations []velerov1.BackupStorageLocation
	if err := list(ctx, c.deps.Dynamic, nr.BSLGVR, vns, &locations); err != nil {
		return err
	}
	m.Mark("read")
	c.coverage = Cover(nss, schedules, backups, locations)
	return nil
}

// list lists a Velero resource in pages, decoded into out.
func list[T any](ctx context.Context, c dynamic.Interface, gvr schema.GroupVersionResource, ns string, out *[]T) error {
	opts := metav1.ListOptions{Limit: 500}
	for {
		page, err := c.Resource(gvr).Namespace(ns).List(ctx, opts)
		if err != nil {
			return fmt.Errorf("list Velero %s in %s: %w", gvr.Resource, ns, err)
		}
		for i := range page.Items {
			var item T
			if err := nr.FromUnstructured(&page.Items[i], &item); err != nil {
				return err
			}
			*out = append(*out, item)
		}
		if page.GetContinue() == "" {
			return nil
		}
		opts.Continue = page.GetContinue()
	}
}

// Verify implements engine.Scenario.
func (c *coverageCheck) Verify(context.Context) (engine.Verification, error) {
	return Judge(c.coverage, c.selector.String(), c.rpo, c.deps.Clock.Now()), nil
}

// Cover works out, per namespace, what protects it: the unpaused Schedules
// whose template includes it, their newest Completed backup (by start
// time), and whether their storage locations are Available.
func Cover(nss []corev1.Namespace, schedules []velerov1.Schedule, backups []velerov1.Backup, locations []velerov1.BackupStorageLocation) []Coverage {
	available := map[string]bool{}
	defaultLocation := ""
	for _, l := range locations {
		available[l.Name] = l.Status.Phase == velerov1.BackupStorageLocationPhaseAvailable
		if l.Spec.Default {
			defaultLocation = l.Name
		}
	}
	newest := map[string]*velerov1.Backup{} // schedule -> newest Completed
	for i := range backups {
		b := &backups[i]
		s := b.Labels[velerov1.ScheduleNameLabel]
		if s == "" || b.Status.Phase != velerov1.BackupPhaseCompleted || b.Status.StartTimestamp == nil || b.DeletionTimestamp != nil {
			continue
		}
		if n := newest[s]; n == nil || b.Status.StartTimestamp.After(n.Status.StartTimestamp.Time) {
			newest[s] = b
		}
	}
	out := make([]Coverage, 0, len(nss))
	for _, ns := range nss {
		c := Coverage{Namespace: ns.Name}
		for _, s := range schedules {
			t := s.Spec.Template
			if s.Spec.Paused || !includes(t.IncludedNamespaces, t.ExcludedNamespaces, ns.Name) {
				continue
			}
			c.Schedules = append(c.Schedules, s.Name)
			if t.LabelSelector != nil || len(t.OrLabelSelectors) > 0 || len(t.IncludedResources) > 0 || len(t.IncludedNamespaceScopedResources) > 0 {
				c.Partial = append(c.Partial, s.Name)
			}
			loc := t.StorageLocation
			if loc == "" {
				loc = defaultLocation
			}
			if !available[loc] && !slices.Contains(c.Unavailable, loc) {
				c.Unavailable = append(c.Unavailable, orNone(loc))
			}
			if b := newest[s.Name]; b != nil && (c.Newest == nil || b.Status.StartTimestamp.After(c.Newest.Status.StartTimestamp.Time)) {
				c.Newest = b
			}
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Namespace < out[j].Namespace })
	return out
}

// includes reports whether a backup spec's namespace lists take ns (the
// lists may hold glob patterns, as Velero allows).
func includes(included, excluded []string, ns string) bool {
	match := func(patterns []string) bool {
		return slices.ContainsFunc(patterns, func(p string) bool {
			ok, _ := path.Match(p, ns)
			return p == ns || ok
		})
	}
	return (len(included) == 0 || match(included)) && !match(excluded)
}

func orNone(loc string) string {
	if loc == "" {
		return "(none: no default location)"
	}
	return loc
}

// Judge turns coverage into the verdict's parts: each namespace uncovered,
// stale or on an unavailable location is a failure; the RPO is the
// stalest namespace's newest backup start.
func Judge(cov []Coverage, selector string, rpo time.Duration, now time.Time) engine.Verification {
	var v engine.Verification
	if len(cov) == 0 {
		v.Inconclusive = fmt.Sprintf("no namespace matches %s: nothing to check", selector)
		return v
	}
	var stalest *Coverage
	covered := 0
	for i := range cov {
		c := &cov[i]
		if len(c.Schedules) > 0 && c.Newest != nil && now.Sub(c.Newest.Status.StartTimestamp.Time) <= rpo && len(c.Unavailable) == 0 {
			covered++
		}
		switch {
		case len(c.Schedules) == 0:
			v.Failures = append(v.Failures, fmt.Sprintf("namespace %s: no unpaused Velero Schedule includes it", c.Namespace))
			continue
		case c.Newest == nil:
			v.Failures = append(v.Failures, fmt.Sprintf("namespace %s: no Completed backup of schedule %s", c.Namespace, strings.Join(c.Schedules, ", ")))
			continue
		}
		age := now.Sub(c.Newest.Status.StartTimestamp.Time)
		if age > rpo {
			v.Failures = append(v.Failures, fmt.Sprintf("namespace %s: newest Completed backup %s started %s ago, beyond the RPO target %s",
				c.Namespace, c.Newest.Name, engine.FormatDuration(age.Round(time.Second)), rpo))
		}
		if len(c.Unavailable) > 0 {
			v.Failures = append(v.Failures, fmt.Sprintf("namespace %s: storage location %s not Available: its next backup will fail", c.Namespace, strings.Join(c.Unavailable, ", ")))
		}
		if len(c.Partial) > 0 {
			v.Findings = append(v.Findings, fmt.Sprintf("namespace %s: schedule %s backs up only part of it (resource selector or included resources)", c.Namespace, strings.Join(c.Partial, ", ")))
		}
		v.Findings = append(v.Findings, fmt.Sprintf("namespace %s: schedule %s, newest Completed backup %s, %s old", c.Namespace,
			strings.Join(c.Schedules, ", "), c.Newest.Name, engine.FormatDuration(age.Round(time.Second))))
		if stalest == nil || c.Newest.Status.StartTimestamp.Before(stalest.Newest.Status.StartTimestamp) {
			stalest = c
		}
	}
	v.Posture = &v1alpha1.PostureMeasure{Compliant: int32(covered), Total: int32(len(cov)), Of: "namespaces"}
	v.Findings = append([]string{fmt.Sprintf("backup coverage: %d of %d namespaces within the RPO target %s", covered, len(cov), rpo)}, v.Findings...)
	if stalest != nil {
		ts := stalest.Newest.Status.StartTimestamp.Time
		v.DataTimestamp = &ts
		v.RPOSource = fmt.Sprintf("newest Completed backup of the stalest namespace, %s (%s)", stalest.Namespace, stalest.Newest.Name)
	}
	return v
}
