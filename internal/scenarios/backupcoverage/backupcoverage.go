// Package backupcoverage is the backup-coverage check: every namespace its
// selector matches (e.g. production's) is held, all of it, by a Completed
// Velero backup of this cluster younger than the drill's RPO target, and an
// unpaused Schedule will go on backing all of it up to a writable,
// Available storage location. It injects nothing and writes only DownloadRequests; the
// run's RPO is the age of the stalest namespace's newest complete backup:
// the data a disaster now would lose there.
//
// What its PASS rests on, by the rules of evidence (EVIDENCE.md):
//  1. Positive evidence: a selector that matches no namespace is
//     INCONCLUSIVE; each namespace is compliant only on a backup found to
//     hold it, never on the absence of a problem.
//  3. What happened: whether a backup holds a namespace, and all of it, is
//     read from the Backup's own spec as its Velero completed it (namespace
//     lists with Velero's glob semantics, label selectors, resource
//     filters) and Velero's record of its volumes' data, never from the Schedule's current
//     template; a backup started before the namespace was created does not
//     hold it, unless a Completed Velero restore of all of the namespace
//     from that backup made it: Velero's server created the namespace (its
//     managedFields), while that restore ran and no restore from another
//     backup that takes it did (what a restore drill leaves). A restore's
//     namespace lists are read as Velero reads them, bad patterns
//     included. The Schedule (configuration) only adds failures: none
//     includes it (one Velero found invalid, FailedValidation, makes no
//     backup and does not count), all leave part of it out, or its location
//     is ReadOnly or not Available (the next backup fails).
//  4. Clocks: a backup's age is drillbot's clock minus its start (Velero's
//     clock), as before; "started before the namespace was created" and
//     "created while the restore ran" compare two of the cluster's clocks
//     and only ever withhold credit.
//  5. Errors: a list that fails ends the run with its error (the engine's
//     verdict on a failed recovery), never a judgement on part of the
//     reads; a namespace pattern it cannot read counts the backup for
//     nothing.
//  6. Scope: a backup counts only in a storage location of this cluster
//     that is ReadWrite: a ReadOnly location's backups are another
//     cluster's (synced through a shared store), whatever their schedule's
//     name. A ReadWrite location other clusters also write to cannot be
//     told apart from the Backup objects.
//  8. Not worse than the truth: what Velero itself excludes from every
//     backup (CSI snapshot objects), what Velero never restores (nodes,
//     its own backups and restores, ...) and derived objects (events,
//     endpoints) are not gaps; volumes matter only where PVCs exist; a
//     partial backup a drill accepts by name (acceptPartial, with its
//     reason) counts, its gaps reported as findings.
//
// Volume data: a bound PVC's data is held only where Velero's record of the
// backup's volumes (its volume information, read through a DownloadRequest,
// the check's only write) shows it held, for the volume the PVC is bound
// to now; an unreadable record leaves the namespace unjudged (INCONCLUSIVE
// unless another failure FAILs the run), a backup without one holds none
// of it.
//
// Not yet read: the backup's resource list; a further gap is one more check
// in backupGaps.
package backupcoverage

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
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
	// AcceptPartial names the namespaces whose backups may leave part of
	// them out (a label selector, resource filters, volume data), and why.
	// Such a namespace is compliant on its newest backup however partial;
	// what it leaves out is reported with the reason. A ReadOnly or
	// unavailable location, or a stale backup, is never accepted.
	AcceptPartial []Acceptance `json:"acceptPartial,omitempty"`
}

// Acceptance is one namespace whose backups may be partial.
type Acceptance struct {
	Namespace string `json:"namespace"`
	// Reason is recorded with every run's findings.
	Reason string `json:"reason"`
}

// Deps are what the check needs from the outside.
type Deps struct {
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
	// Volumes reads a backup's volume information (default: through
	// Velero's DownloadRequests with Dynamic).
	Volumes nr.VolumeReader
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
	errs = append(errs, validateAcceptPartial(p.AcceptPartial, path.Child("acceptPartial"))...)
	if spec.Objectives.RPO == "" {
		errs = append(errs, field.Required(field.NewPath("spec", "objectives", "rpo"), "backup-coverage checks each namespace's newest backup against the RPO target: set it"))
	}
	return errs
}

func validateAcceptPartial(acc []Acceptance, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[string]bool{}
	for i, a := range acc {
		p := path.Index(i)
		switch {
		case a.Namespace == "":
			errs = append(errs, field.Required(p.Child("namespace"), "the namespace whose backups may leave part of it out"))
		case len(validation.IsDNS1123Label(a.Namespace)) > 0:
			errs = append(errs, field.Invalid(p.Child("namespace"), a.Namespace, "a namespace's name: "+strings.Join(validation.IsDNS1123Label(a.Namespace), "; ")))
		case seen[a.Namespace]:
			errs = append(errs, field.Duplicate(p.Child("namespace"), a.Namespace))
		}
		seen[a.Namespace] = true
		if strings.TrimSpace(a.Reason) == "" {
			errs = append(errs, field.Required(p.Child("reason"), "why its backups may leave part of it out: every run records it"))
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
	if d.Volumes == nil {
		d.Volumes = nr.VeleroDownloads{Dynamic: d.Dynamic}
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

// Preflight implements engine.Scenario: nothing to check before; the
// check itself runs in Recover, whose time is the run's RTO.
func (c *coverageCheck) Preflight(context.Context) error { return nil }

// Recover implements engine.Scenario: read the namespaces and their PVCs,
// the Schedules, Backups, storage locations and Restores.
func (c *coverageCheck) Recover(ctx context.Context, m engine.Milestones) error {
	nss, err := c.selector.List(ctx, c.deps.Kube)
	if err != nil {
		return err
	}
	in := Inputs{Accepted: map[string]string{}}
	for _, ns := range nss {
		pvcs, err := listPVCs(ctx, c.deps.Kube, ns.Name)
		if err != nil {
			return err
		}
		bound, err := nr.BoundPVCs(ctx, c.deps.Kube, ns.Name)
		if err != nil {
			return err
		}
		var managers []string
		for _, m := range ns.ManagedFields {
			managers = append(managers, m.Manager)
		}
		in.Namespaces = append(in.Namespaces, Namespace{Name: ns.Name, Created: ns.CreationTimestamp, Managers: managers, PVCs: pvcs, Bound: bound})
	}
	vns := c.params.VeleroNamespace
	if err := list(ctx, c.deps.Dynamic, nr.SchedulesGVR, vns, &in.Schedules); err != nil {
		return err
	}
	if err := list(ctx, c.deps.Dynamic, nr.BackupsGVR, vns, &in.Backups); err != nil {
		return err
	}
	if err := list(ctx, c.deps.Dynamic, nr.BSLGVR, vns, &in.Locations); err != nil {
		return err
	}
	if err := list(ctx, c.deps.Dynamic, nr.RestoresGVR, vns, &in.Restores); err != nil {
		return err
	}
	m.Mark("read")
	for _, a := range c.params.AcceptPartial {
		in.Accepted[a.Namespace] = a.Reason
	}
	// Each backup's volume information is read once, and only for
	// backups of namespaces with bound PVCs (a DownloadRequest each).
	read := map[string][]nr.VolumeInfo{}
	in.Volumes = func(backup string) ([]nr.VolumeInfo, error) {
		if infos, ok := read[backup]; ok {
			return infos, nil
		}
		infos, err := c.deps.Volumes.BackupVolumeInfos(ctx, vns, backup)
		if err == nil {
			read[backup] = infos
		}
		return infos, err
	}
	// A record that cannot be read leaves its namespace unjudged (Judge),
	// not the whole check: what is found elsewhere still counts.
	c.coverage = Cover(in)
	return nil
}

// listPVCs lists the names of a namespace's PersistentVolumeClaims.
func listPVCs(ctx context.Context, c kubernetes.Interface, ns string) ([]string, error) {
	var names []string
	opts := metav1.ListOptions{Limit: 500}
	for {
		page, err := c.CoreV1().PersistentVolumeClaims(ns).List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list PersistentVolumeClaims in %s: %w", ns, err)
		}
		for _, p := range page.Items {
			names = append(names, p.Name)
		}
		if page.Continue == "" {
			sort.Strings(names)
			return names, nil
		}
		opts.Continue = page.Continue
	}
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
	v := Judge(c.coverage, c.selector.String(), c.rpo, c.deps.Clock.Now())
	for _, a := range c.params.AcceptPartial {
		if !slices.ContainsFunc(c.coverage, func(cov Coverage) bool { return cov.Namespace == a.Namespace }) {
			v.Findings = append(v.Findings, fmt.Sprintf("acceptPartial names namespace %s, which %s does not select", a.Namespace, c.selector))
		}
	}
	return v, nil
}
