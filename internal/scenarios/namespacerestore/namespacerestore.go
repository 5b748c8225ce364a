// Package namespacerestore is the namespace-restore scenario: delete an
// opted-in namespace, restore it with Velero, and measure time to workloads
// Ready (RTO) and the age of the restored data (RPO).
//
// What a PASS rests on, rule by rule of EVIDENCE.md:
//
//  1. Positive evidence: the inventory taken before the disaster holds at
//     least one application object (not only what the cluster or drillbot
//     remakes by itself: the default ServiceAccount, the root CA ConfigMap,
//     the RPO marker), and every object of it is back by name; a comparison
//     of nothing is INCONCLUSIVE.
//  2. This run: the namespace is seen gone (NotFound) before the restore, so
//     whatever is there afterwards came back after the disaster; the RPO
//     marker loop never stamps a target a run holds, and a marker newer than
//     the disaster makes the RPO INCONCLUSIVE, never 0.
//  3. What happened: the Backup's phase (Completed) and the Restore's phase,
//     not the Schedule; the newest write the data check found in the
//     restored data gives the RPO, else the restored marker's bytes, the
//     backup's start time only as a stated estimate.
//  4. One clock: RTO is the engine's stamps; the marker is written by
//     drillbot's own clock.
//  5. Errors: an unreadable inventory, restore or marker is an error (the
//     run is INCONCLUSIVE or FAILs on its failures), never a match; kinds
//     drillbot may not list are named as not covered.
//  6. Scope: the one target namespace, its backup chosen by name or by its
//     schedule in the checked storage location.
//  7. Not destroyed without a backup: the backup must be Completed and
//     include the namespace, and Velero's record of its volumes must show
//     the data of every bound PVC held (or its loss accepted by name),
//     and its resource list every object of the namespace that existed
//     when it started, before the namespace is deleted; newer objects are
//     the RPO window, named if lost. The restored data itself is read only
//     by the drill's data checks: spec.verify.job, whose answer is its
//     container's own exit (the pod found by the Job's UID): non-zero
//     FAILs, no exit (not admitted, never started, killed, deadline) is
//     INCONCLUSIVE; spec.verify.http, the application's own answer as of
//     the backup's start, asked before the delete and again after the
//     restore from pods the Service selects in the namespace: any field
//     that differs FAILs, no answer is INCONCLUSIVE. Volumes whose data
//     must come back and no check: INCONCLUSIVE (Bound claims and
//     Velero's counters read the same for a volume restored empty). A
//     check's newest write before the disaster but after the backup
//     completed cannot come from the backup: INCONCLUSIVE.
//  8. Same on both sides: controller-owned objects (remade under new names) and
//     drillbot's own RBAC are left out of both inventories.
//  9. Visible safeguards: a failed restore (the undo) leaves the run
//     RevertFailed; kinds not covered and an estimated RPO are findings.
package namespacerestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/utils/clock"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/kube"
)

// Name is the scenario kind.
const Name = "namespace-restore"

// MarkerName is the ConfigMap drillbot keeps updated in each target
// namespace; its restored timestamp measures the RPO.
const MarkerName = "drillbot-rpo-marker"

// MarkerKey is the marker's data key holding an RFC 3339 timestamp.
const MarkerKey = "timestamp"

// Velero resources, used through the dynamic client (Velero ships no clientset).
var (
	BackupsGVR   = velerov1.SchemeGroupVersion.WithResource("backups")
	RestoresGVR  = velerov1.SchemeGroupVersion.WithResource("restores")
	BSLGVR       = velerov1.SchemeGroupVersion.WithResource("backupstoragelocations")
	SchedulesGVR = velerov1.SchemeGroupVersion.WithResource("schedules")
)

// Params are the drill's spec.params.
type Params struct {
	// VeleroNamespace is where Velero runs (default "velero").
	VeleroNamespace string `json:"veleroNamespace,omitempty"`
	// StorageLocation is the BackupStorageLocation that must be Available
	// (default: the one marked default).
	StorageLocation string `json:"storageLocation,omitempty"`
	// Backup says which backup to restore from; exactly one field is set.
	Backup BackupSource `json:"backup"`
	// Volumes: what the drill accepts of the target's volume data.
	Volumes Volumes `json:"volumes,omitempty"`
}

// BackupSource picks the backup.
type BackupSource struct {
	// Schedule: the newest backup of this Velero Schedule, which must be Completed.
	Schedule string `json:"schedule,omitempty"`
	// Name: this backup, which must be Completed.
	Name string `json:"name,omitempty"`
	// Create: drillbot stamps the marker and takes a fresh backup first.
	Create bool `json:"create,omitempty"`
}

func (p *Params) defaults() {
	if p.VeleroNamespace == "" {
		p.VeleroNamespace = "velero"
	}
}

// Deps are what the scenario needs from the outside.
type Deps struct {
	Kube      kubernetes.Interface
	Dynamic   dynamic.Interface
	Metadata  metadata.Interface
	Discovery discovery.DiscoveryInterface
	// Clock stamps the RPO marker and names backups; it is never used for timing.
	Clock  clock.PassiveClock
	Logger *slog.Logger
	// Protected namespaces are refused even when labelled.
	Protected []string
	// Volumes reads a backup's volume information (default: through
	// Velero's DownloadRequests with Dynamic).
	Volumes VolumeReader
	// Contents reads a backup's resource list (default: through Velero's
	// DownloadRequests with Dynamic).
	Contents ResourceLister
	// Logs reads a data check's log (default: pods/log through Kube).
	Logs LogReader
	// Proxy asks an http data check's endpoint (default: the API
	// server's service proxy through Kube).
	Proxy ServiceProxy
	// PollInterval is how often a data check's Job or endpoint is read
	// (default 1s).
	PollInterval time.Duration
}

// Kind is the namespace-restore scenario kind.
type Kind struct{ Deps Deps }

var (
	_ engine.Kind        = Kind{}
	_ engine.DataChecker = Kind{}
)

// ChecksData implements engine.DataChecker: spec.verify runs after the
// restore.
func (Kind) ChecksData() bool { return true }

// ValidateParams implements engine.Kind.
func (Kind) ValidateParams(spec v1alpha1.DrillSpec, path *field.Path) field.ErrorList {
	var p Params
	errs := drill.DecodeParams(spec.Params, &p, path)
	if len(errs) > 0 {
		return errs
	}
	b := path.Child("backup")
	set := 0
	if p.Backup.Schedule != "" {
		set++
	}
	if p.Backup.Name != "" {
		set++
	}
	if p.Backup.Create {
		set++
	}
	if set != 1 {
		errs = append(errs, field.Invalid(b, p.Backup, "set exactly one of schedule, name or create"))
	}
	errs = append(errs, validateVolumes(p.Volumes, path.Child("volumes"))...)
	if p.defaults(); spec.Target.Namespace == p.VeleroNamespace {
		errs = append(errs, field.Invalid(field.NewPath("spec", "target", "namespace"), spec.Target.Namespace,
			"is the drill's Velero namespace (params.veleroNamespace), which is never a drill target"))
	}
	if spec.Objectives.RPO == "" {
		errs = append(errs, field.Required(field.NewPath("spec", "objectives", "rpo"), "namespace-restore measures RPO: set its target"))
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
	d := k.Deps
	if d.Clock == nil {
		d.Clock = clock.RealClock{}
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Volumes == nil {
		d.Volumes = VeleroDownloads{Dynamic: d.Dynamic}
	}
	if d.Contents == nil {
		d.Contents = VeleroDownloads{Dynamic: d.Dynamic}
	}
	if d.Logs == nil {
		d.Logs = KubeLogs{Kube: d.Kube}
	}
	if d.Proxy == nil {
		d.Proxy = KubeProxy{Kube: d.Kube}
	}
	var check *v1alpha1.JobCheck
	var httpCheck *v1alpha1.HTTPCheck
	if def.Spec.Verify != nil {
		check, httpCheck = def.Spec.Verify.Job, def.Spec.Verify.HTTP
	}
	return &scenario{deps: d, params: p, ns: def.Spec.Target.Namespace, run: runName, check: check, httpCheck: httpCheck,
		log: d.Logger.With("scenario", Name, "namespace", def.Spec.Target.Namespace, "run", runName)}, nil
}

type scenario struct {
	deps   Deps
	params Params
	ns     string
	run    string
	log    *slog.Logger
	check  *v1alpha1.JobCheck // the drill's data check (spec.verify.job), if any

	httpCheck *v1alpha1.HTTPCheck // the drill's http data check (spec.verify.http), if any
	before    *DataAnswer         // its answer before the disaster, as of cut
	cut       time.Time           // the backup's start: every write before it is in the backup

	// disasterAt is drillbot's clock right before the delete, given to the
	// data check (the engine's own stamp decides the RPO).
	disasterAt time.Time
	checked    *checkResult // what the data check found, once it passed

	// found by Preflight, the inventory taken again by Inject
	backup    *velerov1.Backup
	inventory Inventory
	skipped   []string // kinds the inventory could not list
	restore   *velerov1.Restore

	// window are the objects of the inventory the backup does not hold
	// because they are newer than it: the RPO window, lost by the restore.
	window []string

	// found by Inject, before the fault
	volumes  string       // what of the volume data the backup holds ("": no bound PVC)
	accepted []string     // PVCs whose data the drill accepts to lose
	held     []VolumeInfo // the volumes whose data must come back
}

// Undo is the journal data of the namespace deletion.
type Undo struct {
	Namespace       string `json:"namespace"`
	VeleroNamespace string `json:"veleroNamespace"`
	Backup          string `json:"backup"`
	Restore         string `json:"restore"`
	// UID is the namespace's UID when the entry was written: the same UID
	// still there, not terminating, means the deletion never happened.
	UID types.UID `json:"uid,omitempty"`
}

// Preflight implements engine.Scenario. It only reads.
func (s *scenario) Preflight(ctx context.Context) error {
	if err := CheckOptIn(ctx, s.deps.Kube, s.ns, append([]string{s.params.VeleroNamespace}, s.deps.Protected...)); err != nil {
		return err
	}
	if err := s.checkStorageLocation(ctx); err != nil {
		return err
	}
	if !s.params.Backup.Create {
		b, err := s.findBackup(ctx)
		if err != nil {
			return err
		}
		s.backup = b
	}
	if err := WorkloadsReady(ctx, s.deps.Kube, s.ns); err != nil {
		return fmt.Errorf("target not healthy before the drill, refusing to break it further: %w", err)
	}
	if err := s.checkHTTPService(ctx); err != nil {
		return engine.Unknown(err)
	}
	inv, skipped, err := TakeInventory(ctx, s.deps.Discovery, s.deps.Metadata, s.ns)
	if err != nil {
		return err
	}
	s.inventory, s.skipped = inv, skipped
	s.log.Info("preflight passed", "backup", s.backupName(), "inventory", len(inv))
	return nil
}

func (s *scenario) backupName() string {
	if s.backup == nil {
		return "(created at inject)"
	}
	return s.backup.Name
}

// CheckOptIn refuses a namespace that does not exist, is terminating, is
// protected, or lacks the opt-in label. It only reads.
func CheckOptIn(ctx context.Context, c kubernetes.Interface, ns string, protected []string) error {
	if err := checkProtected(ns, protected); err != nil {
		return err
	}
	n, err := c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return engine.Refuse("target namespace %s does not exist", ns)
	}
	if err != nil {
		return fmt.Errorf("read target namespace %s: %w", ns, err)
	}
	return optInRefusal(n)
}

func checkProtected(ns string, protected []string) error {
	if slices.Contains(drill.SystemNamespaces, ns) || slices.Contains(protected, ns) {
		return engine.Refuse("namespace %s is protected and never a drill target", ns)
	}
	return nil
}

// optInRefusal refuses a namespace that lacks the opt-in label or is
// terminating.
func optInRefusal(n *corev1.Namespace) error {
	if n.Labels[v1alpha1.LabelAllowDisaster] != "true" {
		return engine.Refuse("namespace %s is not opted in: it lacks the label %s=true", n.Name, v1alpha1.LabelAllowDisaster)
	}
	if n.DeletionTimestamp != nil || n.Status.Phase == corev1.NamespaceTerminating {
		return engine.Refuse("namespace %s is already terminating", n.Name)
	}
	return nil
}

// OptedIn is CheckOptIn for many namespaces in one request, whatever their
// number: the namespaces labelled for drills (a label selector, so the API
// server sends those only). It answers nil for each namespace of names
// that passes CheckOptIn's checks (with protected) and the refusal for the
// others; the error is the list's.
func OptedIn(ctx context.Context, c kubernetes.Interface, names, protected []string) (map[string]error, error) {
	list, err := c.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: v1alpha1.LabelAllowDisaster + "=true"})
	if err != nil {
		return nil, fmt.Errorf("list the namespaces labelled %s=true: %w", v1alpha1.LabelAllowDisaster, err)
	}
	byName := make(map[string]*corev1.Namespace, len(list.Items))
	for i := range list.Items {
		byName[list.Items[i].Name] = &list.Items[i]
	}
	out := make(map[string]error, len(names))
	for _, ns := range names {
		if err := checkProtected(ns, protected); err != nil {
			out[ns] = err
			continue
		}
		switch n, ok := byName[ns]; {
		case !ok:
			out[ns] = engine.Refuse("namespace %s does not exist or is not opted in: no namespace of that name has the label %s=true", ns, v1alpha1.LabelAllowDisaster)
		default:
			out[ns] = optInRefusal(n)
		}
	}
	return out, nil
}

func (s *scenario) checkStorageLocation(ctx context.Context) error {
	list, err := s.deps.Dynamic.Resource(BSLGVR).Namespace(s.params.VeleroNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list Velero BackupStorageLocations in %s: %w", s.params.VeleroNamespace, err)
	}
	for i := range list.Items {
		var bsl velerov1.BackupStorageLocation
		if err := FromUnstructured(&list.Items[i], &bsl); err != nil {
			return err
		}
		if (s.params.StorageLocation == "" && bsl.Spec.Default) || bsl.Name == s.params.StorageLocation {
			if bsl.Status.Phase != velerov1.BackupStorageLocationPhaseAvailable {
				return fmt.Errorf("velero BackupStorageLocation %s is %q, not Available: a restore would fail", bsl.Name, bsl.Status.Phase)
			}
			if s.params.StorageLocation == "" {
				s.params.StorageLocation = bsl.Name
			}
			return nil
		}
	}
	if s.params.StorageLocation == "" {
		return fmt.Errorf("no default Velero BackupStorageLocation in %s", s.params.VeleroNamespace)
	}
	return fmt.Errorf("velero BackupStorageLocation %s/%s not found", s.params.VeleroNamespace, s.params.StorageLocation)
}

// findBackup picks the named backup or the schedule's newest, and refuses it
// unless Completed and covering the target namespace.
func (s *scenario) findBackup(ctx context.Context) (*velerov1.Backup, error) {
	res := s.deps.Dynamic.Resource(BackupsGVR).Namespace(s.params.VeleroNamespace)
	var b velerov1.Backup
	if name := s.params.Backup.Name; name != "" {
		u, err := res.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("velero backup %s: %w", name, err)
		}
		if err := FromUnstructured(u, &b); err != nil {
			return nil, err
		}
	} else {
		sched := s.params.Backup.Schedule
		list, err := res.List(ctx, metav1.ListOptions{LabelSelector: velerov1.ScheduleNameLabel + "=" + sched})
		if err != nil {
			return nil, fmt.Errorf("list backups of Velero schedule %s: %w", sched, err)
		}
		if len(list.Items) == 0 {
			return nil, fmt.Errorf("velero schedule %s has no backups: nothing to restore from", sched)
		}
		var newest *velerov1.Backup
		for i := range list.Items {
			var c velerov1.Backup
			if err := FromUnstructured(&list.Items[i], &c); err != nil {
				return nil, err
			}
			if !Finished(c.Status.Phase) {
				continue // still running: neither usable nor a failure yet
			}
			if newest == nil || c.CreationTimestamp.After(newest.CreationTimestamp.Time) ||
				(c.CreationTimestamp.Equal(&newest.CreationTimestamp) && c.Name > newest.Name) {
				newest = &c
			}
		}
		if newest == nil {
			return nil, fmt.Errorf("velero schedule %s has no finished backup yet: nothing to restore from", sched)
		}
		b = *newest
	}
	if err := usableBackup(&b, s.ns); err != nil {
		return nil, err
	}
	return &b, nil
}

// Finished reports whether a backup has reached a final phase.
func Finished(p velerov1.BackupPhase) bool {
	switch p {
	case velerov1.BackupPhaseCompleted, velerov1.BackupPhasePartiallyFailed, velerov1.BackupPhaseFailed,
		velerov1.BackupPhaseFailedValidation, velerov1.BackupPhaseDeleting:
		return true
	}
	return false
}

func usableBackup(b *velerov1.Backup, ns string) error {
	if b.Status.Phase != velerov1.BackupPhaseCompleted {
		return fmt.Errorf("velero backup %s is %q, not Completed: refusing to delete the namespace", b.Name, b.Status.Phase)
	}
	if b.DeletionTimestamp != nil {
		return fmt.Errorf("velero backup %s is being deleted", b.Name)
	}
	included, err := IncludesNamespace(b.Spec.IncludedNamespaces, b.Spec.ExcludedNamespaces, ns)
	if err != nil {
		return fmt.Errorf("velero backup %s: cannot tell whether it includes namespace %s, refusing to delete it: %w", b.Name, ns, err)
	}
	if !included {
		return fmt.Errorf("velero backup %s does not include namespace %s", b.Name, ns)
	}
	return nil
}

// Inject implements engine.Scenario.
func (s *scenario) Inject(ctx context.Context, j engine.Journal) error {
	if s.params.Backup.Create {
		b, err := s.createBackup(ctx)
		if err != nil {
			return err
		}
		s.backup = b
	}
	target, err := s.deps.Kube.CoreV1().Namespaces().Get(ctx, s.ns, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("read namespace %s: %w", s.ns, err)
	}
	// Never delete what the backup cannot bring back: read at inject, not
	// preflight, because the resource list and volume information are read through a
	// DownloadRequest (a create, which plan does not make), because a
	// backup the drill takes exists only now, and as close to the delete
	// as it can be.
	list, err := s.deps.Contents.BackupResourceList(ctx, s.params.VeleroNamespace, s.backup.Name)
	if errors.Is(err, ErrNotStored) {
		return engine.Refuse("velero backup %s has no resource list in its storage location (taken before Velero 1.1, or its upload failed): cannot tell which objects of namespace %s it holds, refusing to delete it",
			s.backup.Name, s.ns)
	}
	if err != nil {
		return engine.Unknown(fmt.Errorf("read the resource list of Velero backup %s: %w", s.backup.Name, err))
	}
	if err := s.checkVolumes(ctx); err != nil {
		return err
	}
	if err := s.checkContents(ctx, list); err != nil {
		return err
	}
	if err := s.readDataBefore(ctx); err != nil {
		return engine.Unknown(err)
	}
	undo := Undo{Namespace: s.ns, VeleroNamespace: s.params.VeleroNamespace, Backup: s.backup.Name, Restore: s.run, UID: target.UID}
	if err := j.Record(ctx, "delete-namespace",
		fmt.Sprintf("delete namespace %s; undo: Velero restore %s from backup %s", s.ns, s.run, s.backup.Name), undo); err != nil {
		return err
	}
	// Exactly the namespace the journal names, not one re-created meanwhile.
	s.disasterAt = s.deps.Clock.Now()
	if err := s.deps.Kube.CoreV1().Namespaces().Delete(ctx, s.ns, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &target.UID}}); err != nil {
		return fmt.Errorf("delete namespace %s: %w", s.ns, err)
	}
	s.log.Info("namespace deleted", "backup", s.backup.Name)
	return nil
}

// createBackup stamps the marker, then takes a backup of the namespace and
// waits for it to complete. Anything but Completed aborts before deletion.
func (s *scenario) createBackup(ctx context.Context) (*velerov1.Backup, error) {
	if err := TouchMarker(ctx, s.deps.Kube, s.ns, s.deps.Clock.Now()); err != nil {
		return nil, err
	}
	b := &velerov1.Backup{
		TypeMeta: metav1.TypeMeta{APIVersion: velerov1.SchemeGroupVersion.String(), Kind: "Backup"},
		ObjectMeta: metav1.ObjectMeta{Name: s.run, Namespace: s.params.VeleroNamespace,
			Labels: map[string]string{v1alpha1.LabelRun: s.run}},
		Spec: velerov1.BackupSpec{IncludedNamespaces: []string{s.ns}, StorageLocation: s.params.StorageLocation},
	}
	u, err := ToUnstructured(b)
	if err != nil {
		return nil, err
	}
	if _, err := s.deps.Dynamic.Resource(BackupsGVR).Namespace(s.params.VeleroNamespace).Create(ctx, u, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create Velero backup %s: %w", s.run, err)
	}
	var done velerov1.Backup
	err = waitFinal(ctx, s.deps.Dynamic, BackupsGVR, s.params.VeleroNamespace, s.run, &done, func() (bool, error) {
		switch done.Status.Phase {
		case velerov1.BackupPhaseCompleted:
			return true, nil
		case velerov1.BackupPhasePartiallyFailed, velerov1.BackupPhaseFailed, velerov1.BackupPhaseFailedValidation:
			return false, fmt.Errorf("velero backup %s ended %s: refusing to delete the namespace", s.run, done.Status.Phase)
		}
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	return &done, usableBackup(&done, s.ns)
}

// Recover implements engine.Scenario: wait for the namespace to be gone,
// restore it, and wait for every workload to be Ready.
func (s *scenario) Recover(ctx context.Context, m engine.Milestones) error {
	if err := kube.WaitNamespaceGone(ctx, s.deps.Kube, s.ns); err != nil {
		return err
	}
	m.Mark("namespace-terminated")
	r, err := ensureRestore(ctx, s.deps.Dynamic, Undo{Namespace: s.ns, VeleroNamespace: s.params.VeleroNamespace, Backup: s.backup.Name, Restore: s.run})
	s.restore = r
	if err != nil {
		return err
	}
	m.Mark("restore-completed")
	if err := WaitWorkloadsReady(ctx, s.deps.Kube, s.ns); err != nil {
		return err
	}
	m.Mark("workloads-ready")
	if len(s.held) > 0 {
		// Velero's restore phase is no proof the data is back: every held
		// volume's PVC Bound, its PodVolumeRestore Completed.
		if err := s.waitVolumesRestored(ctx); err != nil {
			return err
		}
		m.Mark("volumes-restored")
	}
	if s.checks() {
		// Recovery ends when the data is seen good, not when Velero says
		// it is done: the check is the RTO's last share.
		if err := s.verifyData(ctx); err != nil {
			return err
		}
		m.Mark("data-verified")
	}
	return nil
}

// ensureRestore restores the undo's namespace from its backup, in place.
func ensureRestore(ctx context.Context, c dynamic.Interface, u Undo) (*velerov1.Restore, error) {
	return EnsureRestore(ctx, c, &velerov1.Restore{
		TypeMeta: metav1.TypeMeta{APIVersion: velerov1.SchemeGroupVersion.String(), Kind: "Restore"},
		ObjectMeta: metav1.ObjectMeta{Name: u.Restore, Namespace: u.VeleroNamespace,
			Labels: map[string]string{v1alpha1.LabelRun: u.Restore}},
		Spec: velerov1.RestoreSpec{BackupName: u.Backup, IncludedNamespaces: []string{u.Namespace}},
	})
}

// EnsureRestore creates the restore (unless it exists) and waits for it to
// end. Anything but Completed is an error naming the phase and counts; the
// restore as last seen is returned either way.
func EnsureRestore(ctx context.Context, c dynamic.Interface, r *velerov1.Restore) (*velerov1.Restore, error) {
	obj, err := ToUnstructured(r)
	if err != nil {
		return nil, err
	}
	if _, err := c.Resource(RestoresGVR).Namespace(r.Namespace).Create(ctx, obj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create Velero restore %s: %w", r.Name, err)
	}
	var done velerov1.Restore
	err = waitFinal(ctx, c, RestoresGVR, r.Namespace, r.Name, &done, func() (bool, error) {
		switch done.Status.Phase {
		case velerov1.RestorePhaseCompleted:
			return true, nil
		case velerov1.RestorePhasePartiallyFailed, velerov1.RestorePhaseFailed, velerov1.RestorePhaseFailedValidation:
			return false, fmt.Errorf("velero restore %s ended %s (errors: %d, warnings: %d%s)", r.Name, done.Status.Phase,
				done.Status.Errors, done.Status.Warnings, failureReason(&done))
		}
		return false, nil
	})
	return &done, err
}

// waitFinal watches a Velero object, decoding it into out on every change,
// until final reports it done or failed.
func waitFinal(ctx context.Context, c dynamic.Interface, gvr schema.GroupVersionResource, ns, name string, out any, final func() (bool, error)) error {
	_, err := kube.WaitObject(ctx, c, gvr, ns, name, func(u *unstructured.Unstructured) (bool, error) {
		if u == nil {
			return false, nil
		}
		if err := FromUnstructured(u, out); err != nil {
			return false, err
		}
		return final()
	})
	return err
}

func failureReason(r *velerov1.Restore) string {
	if r.Status.FailureReason != "" {
		return ", reason: " + r.Status.FailureReason
	}
	if len(r.Status.ValidationErrors) > 0 {
		return ", validation: " + strings.Join(r.Status.ValidationErrors, "; ")
	}
	return ""
}

// Verify implements engine.Scenario: the pre-disaster inventory must be back,
// and the restored marker gives the data's age.
func (s *scenario) Verify(ctx context.Context) (engine.Verification, error) {
	var v engine.Verification
	c, err := takeCensus(ctx, s.deps.Discovery, s.deps.Metadata, s.ns)
	if err != nil {
		return v, err
	}
	after, failed := c.inv, c.failed
	if len(s.skipped) > 0 {
		v.Findings = append(v.Findings, fmt.Sprintf("inventory did not cover %d kinds drillbot may not list (RBAC): %s", len(s.skipped), strings.Join(s.skipped, ", ")))
	}
	if s.volumes != "" {
		// Bound claims and Velero's counters are no proof the data is
		// back (a volume restored empty reads the same): every held
		// volume must be read by a check.
		var claims []string
		if s.checked != nil {
			claims = s.checked.claims
		}
		var unread []string
		for _, h := range s.held {
			if !slices.Contains(claims, h.PVCName) {
				unread = append(unread, h.PVCName)
			}
		}
		read := "the restored data itself is not read (no data check in spec.verify)"
		if s.checks() {
			read = fmt.Sprintf("the data checks read %d of them", len(s.held)-len(unread))
		}
		v.Findings = append(v.Findings, fmt.Sprintf("volume data: %s; after the restore %d PVCs Bound and their PodVolumeRestores Completed; %s",
			s.volumes, len(s.held), read))
		if len(unread) > 0 {
			inconclusive(&v, "the data of %d restored volumes was not read (%s): a restore drill is not PASS until its data is verified; add a data check that reads them (spec.verify.job mounting them, or spec.verify.http asking pods that mount them)",
				len(unread), strings.Join(unread, ", "))
		}
	}
	v.Findings = append(v.Findings, s.accepted...)
	// Rule 5: an object of a group whose discovery failed now was not
	// looked for: unknown, not missing.
	var missing, unknown, groups, lost []string
	var why []error
	for _, k := range s.inventory.Missing(after) {
		switch g := groupOf(k); {
		case failed[g] != nil:
			unknown = append(unknown, k)
			if !slices.Contains(groups, g) {
				groups = append(groups, g)
				why = append(why, failed[g])
			}
		case slices.Contains(s.window, k):
			lost = append(lost, k)
		default:
			missing = append(missing, k)
		}
	}
	if len(lost) > 0 {
		v.Findings = append(v.Findings, fmt.Sprintf("lost within the RPO window (%d, created after backup %s was made, so not in it): %s",
			len(lost), s.backup.Name, strings.Join(lost, ", ")))
	}
	if len(missing) > 0 {
		v.Failures = append(v.Failures, fmt.Sprintf("not restored (%d): %s", len(missing), strings.Join(missing, ", ")))
	}
	if len(unknown) > 0 {
		return v, fmt.Errorf("after the restore, %d objects of the inventory could not be looked for, their API group's discovery failed: %s: %w",
			len(unknown), strings.Join(unknown, ", "), errors.Join(why...))
	}
	// Rule 1: a namespace that held only what the cluster remakes by itself
	// comes back "complete" whatever Velero did.
	// Rule 2: what is back must be this run's restore's doing (Velero
	// labels every object it restores with the restore's name), not a
	// controller's or an operator's that re-creates it in any namespace.
	// Objects of the RPO window were never in the backup: no evidence of
	// what the restore brought back.
	app := slices.DeleteFunc(s.inventory.Application(), func(k string) bool { return slices.Contains(s.window, k) })
	if len(app) == 0 {
		inconclusive(&v, "namespace %s held no application object from before backup %s (only what the cluster or drillbot makes by itself, or objects newer than the backup): nothing the restore brought back was compared",
			s.ns, s.backup.Name)
	} else {
		restored, otherwise := Inventory(after).restoredBy(app, s.run)
		v.Findings = append(v.Findings, fmt.Sprintf("%d application objects compared with the inventory taken before the disaster: %d back by Velero restore %s, %d back made by something else",
			len(app), len(restored), s.run, len(otherwise)))
		if len(restored) == 0 && len(otherwise) > 0 {
			inconclusive(&v, "none of the %d application objects back in %s carries %s=%s: nothing shows this run's restore brought them back (re-created by something else: %s)",
				len(otherwise), s.ns, velerov1.RestoreNameLabel, s.run, strings.Join(otherwise, ", "))
		}
	}
	if s.restore != nil && s.restore.Status.Warnings > 0 {
		v.Findings = append(v.Findings, fmt.Sprintf("velero restore %s finished with %d warnings", s.restore.Name, s.restore.Status.Warnings))
	}
	if s.checked != nil {
		v.Findings = append(v.Findings, s.checked.finding)
	}
	return v, s.dataTime(ctx, &v)
}

// dataTime sets the time of the newest restored write, from which the
// engine measures the RPO: the data check's, when it reported one that
// the backup can hold and that is not older than the restored marker;
// else the restored marker's; else the backup's start, as an estimate.
func (s *scenario) dataTime(ctx context.Context, v *engine.Verification) error {
	var fromCheck *time.Time
	if s.checked != nil && s.checked.newest != nil {
		n := s.checked.newest
		c := s.backup.Status.CompletionTimestamp
		// Any check's data holding a write the backup cannot is no
		// evidence of the restore, whichever check measures the RPO.
		if l := s.checked.newestOfAll(); l.After(*n) && c != nil && l.After(c.Time) && (s.disasterAt.IsZero() || !l.After(s.disasterAt)) {
			n = l
		}
		switch {
		case !s.disasterAt.IsZero() && n.After(s.disasterAt):
			// The check did not keep to the disaster's time: the
			// restored app's own new writes.
			v.Findings = append(v.Findings, fmt.Sprintf("the data check's newest write %s is after the disaster (%s): it counted writes made since the restore, so the RPO is not taken from it",
				n.UTC().Format(time.RFC3339Nano), s.disasterAt.UTC().Format(time.RFC3339Nano)))
		case c != nil && n.After(c.Time):
			// A write before the disaster that the backup cannot hold:
			// the check read data the restore did not bring back (an
			// external database, data never deleted), or clocks that
			// disagree. Its answer is no evidence of the restore.
			inconclusive(v, "the data check's newest write before the disaster, %s, is after backup %s completed (%s): the backup cannot hold it, so the data the check read was not (only) restored from it (data outside the namespace, or clocks that disagree); its answer is no evidence of the restore",
				n.UTC().Format(time.RFC3339Nano), s.backup.Name, c.UTC().Format(time.RFC3339))
		default:
			fromCheck = n
		}
	}
	var checkSource string
	if fromCheck != nil {
		checkSource = s.checked.source
	}
	cm, err := s.deps.Kube.CoreV1().ConfigMaps(s.ns).Get(ctx, MarkerName, metav1.GetOptions{})
	switch {
	case err == nil:
		ts, perr := time.Parse(time.RFC3339Nano, cm.Data[MarkerKey])
		if perr != nil {
			return fmt.Errorf("restored RPO marker %s/%s holds %q: %w", s.ns, MarkerName, cm.Data[MarkerKey], perr)
		}
		if fromCheck != nil && !fromCheck.Before(ts) {
			v.DataTimestamp, v.RPOSource = fromCheck, checkSource
			return nil
		}
		if fromCheck != nil {
			// The marker, written by drillbot into the data the backup
			// holds, shows the backup's point in time is later: the
			// application had written nothing newer.
			v.Findings = append(v.Findings, fmt.Sprintf("the data check's newest write %s is older than the restored RPO marker (%s): the application wrote nothing newer before the backup, so the RPO is measured from the marker",
				fromCheck.UTC().Format(time.RFC3339Nano), ts.UTC().Format(time.RFC3339Nano)))
		}
		v.DataTimestamp, v.RPOSource = &ts, "restored marker ConfigMap "+MarkerName
	case apierrors.IsNotFound(err):
		if fromCheck != nil {
			v.DataTimestamp, v.RPOSource = fromCheck, checkSource
			return nil
		}
		if s.backup.Status.StartTimestamp != nil {
			ts := s.backup.Status.StartTimestamp.Time
			v.DataTimestamp, v.RPOSource = &ts, "backup start time (no marker in restored data)"
			v.Findings = append(v.Findings, "no RPO marker was restored: RPO is estimated from backup "+s.backup.Name+"'s start time, not measured from restored data")
		}
	default:
		return fmt.Errorf("read restored RPO marker: %w", err)
	}
	return nil
}

// inconclusive adds why the run is INCONCLUSIVE to v's reasons.
func inconclusive(v *engine.Verification, format string, args ...any) {
	if v.Inconclusive != "" {
		v.Inconclusive += "; "
	}
	v.Inconclusive += fmt.Sprintf(format, args...)
}

// checks says whether the drill checks the restored data (spec.verify).
func (s *scenario) checks() bool { return s.check != nil || s.httpCheck != nil }

// Revert implements engine.Scenario. The undo of a namespace deletion is a
// Velero restore: if the run's restore exists and Completed there is nothing
// to do; otherwise wait for the namespace to finish terminating and restore.
func (s *scenario) Revert(ctx context.Context, e v1alpha1.JournalEntry) error {
	var u Undo
	if err := json.Unmarshal(e.Undo, &u); err != nil {
		return fmt.Errorf("decode undo of %s: %w", e.ID, err)
	}
	ns, err := s.deps.Kube.CoreV1().Namespaces().Get(ctx, u.Namespace, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("read namespace %s: %w", u.Namespace, err)
	case u.UID != "" && ns.UID == u.UID && ns.DeletionTimestamp == nil:
		// Never deleted (the run stopped between its journal entry and the
		// deletion): restoring would resurrect what was removed since the
		// backup. Nothing to undo.
		return nil
	case ns.DeletionTimestamp != nil:
		if err := kube.WaitNamespaceGone(ctx, s.deps.Kube, u.Namespace); err != nil {
			return err
		}
	}
	if _, err := ensureRestore(ctx, s.deps.Dynamic, u); err != nil {
		return fmt.Errorf("restore namespace %s: %w", u.Namespace, err)
	}
	return nil
}

// TouchMarker writes the current time into the namespace's RPO marker:
// one request, a server-side apply that creates the marker or takes it
// over (forced: a copy restored from a backup may carry other managers).
// drillbot serve calls it periodically for every namespace-restore target.
func TouchMarker(ctx context.Context, c kubernetes.Interface, ns string, now time.Time) error {
	cm := corev1ac.ConfigMap(MarkerName, ns).
		WithLabels(map[string]string{"app.kubernetes.io/managed-by": "drillbot"}).
		WithData(map[string]string{MarkerKey: now.UTC().Format(time.RFC3339Nano)})
	if _, err := c.CoreV1().ConfigMaps(ns).Apply(ctx, cm, metav1.ApplyOptions{FieldManager: MarkerFieldManager, Force: true}); err != nil {
		return fmt.Errorf("update RPO marker %s/%s: %w", ns, MarkerName, err)
	}
	return nil
}

// VeleroNamespace is the Velero namespace a namespace-restore drill uses
// (its params, defaulted): protected, never stamped nor restored.
func VeleroNamespace(def drill.Definition) string {
	var p Params
	_ = json.Unmarshal(def.Spec.Params, &p) // validated at load; a bad one answers the default
	p.defaults()
	return p.VeleroNamespace
}

// MarkerFieldManager is the field manager of the RPO marker's apply.
const MarkerFieldManager = "drillbot-rpo-marker"

// ToUnstructured encodes a typed object (Velero's) for the dynamic client.
func ToUnstructured(obj any) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", obj, err)
	}
	return &unstructured.Unstructured{Object: m}, nil
}

// FromUnstructured decodes a dynamic client's object into a typed one.
func FromUnstructured(u *unstructured.Unstructured, out any) error {
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
		return fmt.Errorf("decode %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return nil
}

// LastCompletedBackup is when the newest Completed backup a namespace-restore
// drill would restore from finished (for the report). ok is false for drills
// that name no schedule or backup, or when there is none.
func LastCompletedBackup(ctx context.Context, c dynamic.Interface, spec v1alpha1.DrillSpec) (t time.Time, ok bool, err error) {
	var p Params
	if err := drill.Params(spec, &p); err != nil {
		return t, false, err
	}
	p.defaults()
	opts := metav1.ListOptions{}
	switch {
	case p.Backup.Schedule != "":
		opts.LabelSelector = velerov1.ScheduleNameLabel + "=" + p.Backup.Schedule
	case p.Backup.Name != "":
		opts.FieldSelector = "metadata.name=" + p.Backup.Name
	default:
		return t, false, nil
	}
	list, err := c.Resource(BackupsGVR).Namespace(p.VeleroNamespace).List(ctx, opts)
	if err != nil {
		return t, false, fmt.Errorf("list Velero backups: %w", err)
	}
	for i := range list.Items {
		var b velerov1.Backup
		if err := FromUnstructured(&list.Items[i], &b); err != nil {
			return t, false, err
		}
		if b.Status.Phase == velerov1.BackupPhaseCompleted && b.Status.CompletionTimestamp != nil && b.Status.CompletionTimestamp.After(t) {
			t, ok = b.Status.CompletionTimestamp.Time, true
		}
	}
	return t, ok, nil
}

// Evidence implements engine.Evidencer: the namespace is deleted and
// restored in place from Velero's backup storage.
func (Kind) Evidence(v1alpha1.DrillSpec) (string, []string) {
	return engine.TestLiveRestore, []string{"Velero backup storage"}
}
