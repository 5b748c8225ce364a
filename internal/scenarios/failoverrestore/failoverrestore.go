// Package failoverrestore is the failover-restore scenario: the regional
// failure drill. In the cluster drillbot runs in (the DR cluster), it
// restores the newest Completed backup another cluster took of a source
// namespace, read through a shared, read-only backup storage location, into
// a fresh namespace; it waits for workloads Ready, checks what came back
// against the backup's own resource list, measures RTO (drill start to
// Ready) and RPO (the restored marker's age), and deletes the copy. It never
// writes to the source cluster nor touches the source namespace.
//
// What a PASS rests on, rule by rule of EVIDENCE.md:
//
//  1. Positive evidence: the backup's resource list shows objects in the
//     source namespace (else the run refuses before any write), and at
//     least one of them was compared by name in the copy; a comparison that
//     checked nothing (every kind forbidden to drillbot, left to
//     controllers, excluded, or drillbot's own; the default ServiceAccount,
//     root CA ConfigMap and RPO marker, which a namespace gets by itself,
//     are compared but never counted) is INCONCLUSIVE, naming why.
//  2. This run: the copy is a namespace that did not exist, created and
//     labelled by the run; only it is compared.
//  3. What happened: the backup's own resource list (Velero's
//     DownloadRequest, as velero backup describe --details), not its
//     includedNamespaces, says what it holds; the spec (with Velero's glob
//     semantics) only proposes candidates; Completed is the backup's phase.
//  4. One clock: RTO is the engine's own stamps; the backup's start time is
//     only compared with the RPO target in preflight and, without a
//     restored marker, is the conservative RPO estimate, said so.
//  5. Errors: an unreadable resource list, a failed list or discovery is
//     an error (the run does not pass), never a refusal nor a match; a kind
//     drillbot may not list is named, never counted as present.
//  6. Scope: backups in the drill's storage location (and schedule), of the
//     source namespace; only objects the list names in that namespace.
//  7. Nothing is destroyed: the source is never touched; only the run's
//     copy is deleted.
//  8. Same on both sides: drillbot's own RBAC (labelled drillbot.io/rbac),
//     restored into the copy, is matched to the backup's entries of those
//     names and left out of both, not reported missing.
//  9. Visible safeguards: a refusal, a PartiallyFailed restore, every kind
//     not checked and an RPO estimated from the backup are in the run's
//     reason or findings.
package failoverrestore

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/kube"
	nr "github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
)

// Name is the scenario kind.
const Name = "failover-restore"

// Params are the drill's spec.params. The drill's target namespace is the
// copy: it must not exist; the restore creates it and the drill deletes it.
type Params struct {
	// SourceNamespace is the namespace the source cluster backed up.
	SourceNamespace string `json:"sourceNamespace"`
	// StorageLocation is the shared BackupStorageLocation, in this cluster,
	// the source's backups are read through. It must be Available,
	// ReadOnly (unless AllowReadWriteLocation) and opted in with the label
	// drillbot.io/allow-disaster=true.
	StorageLocation string `json:"storageLocation"`
	// Schedule, when set, narrows the backups to this Velero Schedule's.
	Schedule string `json:"schedule,omitempty"`
	// VeleroNamespace is where Velero runs in this cluster (default "velero").
	VeleroNamespace string `json:"veleroNamespace,omitempty"`
	// ExcludedResources are not restored (Velero's restore
	// excludedResources, e.g. cronjobs, so a copy sends no mail); they are
	// left out of the check and named in the run's findings.
	ExcludedResources []string `json:"excludedResources,omitempty"`
	// AllowReadWriteLocation allows a ReadWrite location: a copy restored
	// next to the original in the same cluster, from its own backups.
	AllowReadWriteLocation bool `json:"allowReadWriteLocation,omitempty"`
	// UncheckedVolumes names the source's PersistentVolumeClaims whose
	// restored data the drill does not read (failover-restore runs no data
	// check): named here, the run's PASS is on the objects alone and says
	// so; a claim of the backup not named makes the run INCONCLUSIVE.
	UncheckedVolumes []string `json:"uncheckedVolumes,omitempty"`
}

func (p *Params) defaults() {
	if p.VeleroNamespace == "" {
		p.VeleroNamespace = "velero"
	}
}

// ResourceLister reads a backup's resource list.
type ResourceLister = nr.ResourceLister

// Deps are what the scenario needs from the outside.
type Deps struct {
	Kube      kubernetes.Interface
	Dynamic   dynamic.Interface
	Metadata  metadata.Interface
	Discovery discovery.DiscoveryInterface
	// Contents reads a backup's resource list (Velero's DownloadRequest).
	Contents ResourceLister
	// Clock gives the age of a backup; it is never used for timing.
	Clock  clock.PassiveClock
	Logger *slog.Logger
	// Protected namespaces are never the copy.
	Protected []string
}

// Kind is the failover-restore scenario kind.
type Kind struct{ Deps Deps }

var _ engine.Kind = Kind{}

// ValidateParams implements engine.Kind.
func (Kind) ValidateParams(spec v1alpha1.DrillSpec, path *field.Path) field.ErrorList {
	var p Params
	errs := drill.DecodeParams(spec.Params, &p, path)
	if len(errs) > 0 {
		return errs
	}
	src := path.Child("sourceNamespace")
	switch {
	case p.SourceNamespace == "":
		errs = append(errs, field.Required(src, "the namespace whose backups are restored"))
	case len(validation.IsDNS1123Label(p.SourceNamespace)) > 0:
		errs = append(errs, field.Invalid(src, p.SourceNamespace, "not a namespace name"))
	case p.SourceNamespace == spec.Target.Namespace:
		errs = append(errs, field.Invalid(field.NewPath("spec", "target", "namespace"), spec.Target.Namespace,
			"the copy must not be the source namespace: failover-restore restores into a fresh namespace and deletes it after"))
	}
	if p.StorageLocation == "" {
		errs = append(errs, field.Required(path.Child("storageLocation"), "the shared BackupStorageLocation the source's backups are read through"))
	}
	for i, r := range p.ExcludedResources {
		if r == "" {
			errs = append(errs, field.Required(path.Child("excludedResources").Index(i), "a resource name (e.g. cronjobs)"))
		}
	}
	errs = append(errs, nr.ValidateClaimNames(p.UncheckedVolumes, path.Child("uncheckedVolumes"))...)
	if len(spec.Target.Selector) > 0 || spec.Target.Name != "" {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "target"), "failover-restore restores a whole namespace: set only target.namespace (the copy)"))
	}
	if spec.Objectives.RPO == "" {
		errs = append(errs, field.Required(field.NewPath("spec", "objectives", "rpo"), "failover-restore refuses backups older than the RPO target: set it"))
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
	return &scenario{deps: d, params: p, copy: def.Spec.Target.Namespace, run: runName, rpo: rpo,
		log: d.Logger.With("scenario", Name, "source", p.SourceNamespace, "copy", def.Spec.Target.Namespace, "run", runName)}, nil
}

type scenario struct {
	deps   Deps
	params Params
	copy   string // the namespace restored into
	run    string
	rpo    time.Duration
	log    *slog.Logger

	backup *velerov1.Backup // proposed by Preflight, chosen by Inject
	// candidates are the Completed backups within the RPO target, newest
	// first (at most maxListReads): the ones whose lists Inject reads.
	candidates []*velerov1.Backup
	// list is the chosen backup's resource list, read by Inject before any
	// write: what the backup holds, by its own account.
	list     map[string][]string
	findings []string
	restore  *velerov1.Restore
}

// Undo is the journal data of the restored copy.
type Undo struct {
	// Namespace is the copy; only a namespace labelled with Run is deleted.
	Namespace       string `json:"namespace"`
	Run             string `json:"run"`
	VeleroNamespace string `json:"veleroNamespace"`
	// Restore is the Velero restore writing into the copy: the undo waits
	// for it to end first, so nothing is restored into a deleted copy.
	Restore string `json:"restore"`
}

// Preflight implements engine.Scenario. It only reads.
func (s *scenario) Preflight(ctx context.Context) error {
	if err := s.checkCopy(ctx); err != nil {
		return err
	}
	if err := s.checkStorageLocation(ctx); err != nil {
		return err
	}
	b, err := s.newestBackup(ctx)
	if err != nil {
		return err
	}
	s.backup = b
	s.log.Info("preflight passed", "backup", b.Name, "started", b.Status.StartTimestamp)
	return nil
}

// checkCopy refuses a protected copy namespace or one that exists.
func (s *scenario) checkCopy(ctx context.Context) error {
	protected := append(append(append([]string{}, drill.SystemNamespaces...), s.deps.Protected...), s.params.VeleroNamespace)
	if slices.Contains(protected, s.copy) {
		return engine.Refuse("namespace %s is protected and never a drill target", s.copy)
	}
	_, err := s.deps.Kube.CoreV1().Namespaces().Get(ctx, s.copy, metav1.GetOptions{})
	switch {
	case err == nil:
		return engine.Refuse("target namespace %s exists: failover-restore restores into a fresh namespace and deletes it after; name one nothing uses", s.copy)
	case !apierrors.IsNotFound(err):
		return fmt.Errorf("read namespace %s: %w", s.copy, err)
	}
	return nil
}

func (s *scenario) checkStorageLocation(ctx context.Context) error {
	name, vns := s.params.StorageLocation, s.params.VeleroNamespace
	u, err := s.deps.Dynamic.Resource(nr.BSLGVR).Namespace(vns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return engine.Refuse("no Velero BackupStorageLocation %s/%s: nothing to restore the source's backups from", vns, name)
	}
	if err != nil {
		return fmt.Errorf("read Velero BackupStorageLocation %s/%s: %w", vns, name, err)
	}
	var bsl velerov1.BackupStorageLocation
	if err := nr.FromUnstructured(u, &bsl); err != nil {
		return err
	}
	if bsl.Labels[v1alpha1.LabelAllowDisaster] != "true" {
		return engine.Refuse("velero BackupStorageLocation %s/%s is not opted in: it lacks the label %s=true", vns, name, v1alpha1.LabelAllowDisaster)
	}
	if bsl.Spec.AccessMode != velerov1.BackupStorageLocationAccessModeReadOnly && !s.params.AllowReadWriteLocation {
		return engine.Refuse("velero BackupStorageLocation %s/%s is %s: a DR cluster reads the source's backups through a ReadOnly location "+
			"(its Velero would otherwise also delete expired backups from the shared store); set params.allowReadWriteLocation for a copy in the same cluster",
			vns, name, orDefault(string(bsl.Spec.AccessMode), "ReadWrite"))
	}
	if bsl.Status.Phase != velerov1.BackupStorageLocationPhaseAvailable {
		return fmt.Errorf("velero BackupStorageLocation %s/%s is %q, not Available: a restore would fail", vns, name, bsl.Status.Phase)
	}
	return nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// newestBackup picks the newest finished backup of the source namespace in
// the storage location (by start time: a synced backup's creation time is
// when it reached this cluster) and refuses it unless Completed and younger
// than the RPO target. The backup's spec only proposes it: the Completed
// backups within the RPO target, newest first, are the candidates whose
// resource lists Inject reads before any write.
func (s *scenario) newestBackup(ctx context.Context) (*velerov1.Backup, error) {
	opts := metav1.ListOptions{Limit: 500}
	if s.params.Schedule != "" {
		opts.LabelSelector = velerov1.ScheduleNameLabel + "=" + s.params.Schedule
	}
	var (
		newest    *velerov1.Backup
		completed []*velerov1.Backup
	)
	for {
		list, err := s.deps.Dynamic.Resource(nr.BackupsGVR).Namespace(s.params.VeleroNamespace).List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list Velero backups in %s: %w", s.params.VeleroNamespace, err)
		}
		for i := range list.Items {
			var b velerov1.Backup
			if err := nr.FromUnstructured(&list.Items[i], &b); err != nil {
				return nil, err
			}
			if b.Spec.StorageLocation != s.params.StorageLocation || !includes(&b, s.params.SourceNamespace) ||
				!nr.Finished(b.Status.Phase) || b.Status.StartTimestamp == nil || b.DeletionTimestamp != nil {
				continue
			}
			if newer(&b, newest) {
				newest = b.DeepCopy()
			}
			if b.Status.Phase == velerov1.BackupPhaseCompleted {
				completed = append(completed, b.DeepCopy())
			}
		}
		if list.GetContinue() == "" {
			break
		}
		opts.Continue = list.GetContinue()
	}
	slices.SortFunc(completed, func(a, b *velerov1.Backup) int {
		if newer(a, b) {
			return -1
		}
		return 1
	})
	of := "namespace " + s.params.SourceNamespace
	if s.params.Schedule != "" {
		of += " by schedule " + s.params.Schedule
	}
	if len(completed) == 0 {
		if newest != nil {
			return nil, engine.Refuse("no Completed backup of %s in location %s: the newest, %s, is %s", of, s.params.StorageLocation, newest.Name, newest.Status.Phase)
		}
		return nil, engine.Refuse("no backup of %s in location %s: nothing to fail over to", of, s.params.StorageLocation)
	}
	latest := completed[0]
	age := s.deps.Clock.Since(latest.Status.StartTimestamp.Time)
	if age > s.rpo {
		return nil, engine.Refuse("the newest Completed backup of %s in location %s, %s, started %s ago (%s): beyond the RPO target %s, a failover now would lose more than the target allows",
			of, s.params.StorageLocation, latest.Name, engine.FormatDuration(age.Round(time.Second)),
			latest.Status.StartTimestamp.UTC().Format(time.RFC3339), s.rpo)
	}
	if newest.Name != latest.Name {
		s.findings = append(s.findings, fmt.Sprintf("the newest backup of %s, %s, ended %s: restored the older Completed %s", of, newest.Name, newest.Status.Phase, latest.Name))
	}
	s.candidates = s.candidates[:0]
	for _, b := range completed {
		if s.deps.Clock.Since(b.Status.StartTimestamp.Time) > s.rpo || len(s.candidates) == maxListReads {
			break
		}
		s.candidates = append(s.candidates, b)
	}
	return latest, nil
}

// maxListReads bounds the backups whose resource lists Inject reads (each
// read is a Velero DownloadRequest).
const maxListReads = 3

// includes reports whether backup b's spec may hold namespace ns, with
// Velero's own semantics (nr.IncludesNamespace). A pattern
// drillbot cannot judge may include: the spec only proposes a backup; its
// resource list decides (pickBackup).
func includes(b *velerov1.Backup, ns string) bool {
	ok, err := nr.IncludesNamespace(b.Spec.IncludedNamespaces, b.Spec.ExcludedNamespaces, ns)
	return ok || err != nil
}

func newer(b, than *velerov1.Backup) bool {
	if than == nil {
		return true
	}
	bt, tt := b.Status.StartTimestamp.Time, than.Status.StartTimestamp.Time
	return bt.After(tt) || (bt.Equal(tt) && b.Name > than.Name)
}

// pickBackup reads the resource lists of the candidate backups, newest
// first, and keeps the first that holds objects in the source namespace:
// what the backup holds, by its own account, not what its spec asked for
// (an empty or "*" include list holds a mistyped namespace, a removed one,
// or one its label selector left empty, only on paper). The read is
// Velero's DownloadRequest, as velero backup describe --details makes: the
// one object it creates (Velero expires it) is why it is not in Preflight,
// which drillbot plan runs and promises only reads. A list that cannot be
// read is an error, not a refusal: unknown, not evidence.
func (s *scenario) pickBackup(ctx context.Context) error {
	if s.list != nil {
		return nil // Inject retried
	}
	src := s.params.SourceNamespace
	var without, skipped []string
	for _, b := range s.candidates {
		list, err := s.deps.Contents.BackupResourceList(ctx, s.params.VeleroNamespace, b.Name)
		if err != nil {
			// Unknown, not a FAIL: what the backup holds was not read.
			return engine.Unknown(fmt.Errorf("read the resource list of backup %s: %w", b.Name, err))
		}
		if objectsIn(list, src) == 0 {
			without = append(without, fmt.Sprintf("backup %s holds no object in namespace %s (its resource list names objects in %s)",
				b.Name, src, namespacesOf(list)))
			skipped = append(skipped, b.Name)
			continue
		}
		switch len(skipped) {
		case 0:
		case 1:
			s.findings = append(s.findings, fmt.Sprintf("backup %s, newer, holds no object in namespace %s: restored %s", skipped[0], src, b.Name))
		default:
			s.findings = append(s.findings, fmt.Sprintf("backups %s, newer, hold no object in namespace %s: restored %s", strings.Join(skipped, ", "), src, b.Name))
		}
		s.backup, s.list = b, list
		return nil
	}
	return engine.Refuse("%s: nothing of %s would be restored. Is params.sourceNamespace mistyped, or was the namespace removed, "+
		"excluded or left empty by the backup's label selector? (set params.schedule to the schedule that backs it up)", strings.Join(without, "; "), src)
}

// objectsIn counts the resource list's objects in namespace ns, less
// events (never restored).
func objectsIn(list map[string][]string, ns string) int {
	n := 0
	for key, entries := range list {
		if strings.HasSuffix(key, "/Event") {
			continue
		}
		for _, e := range entries {
			if got, _, ok := strings.Cut(e, "/"); ok && got == ns {
				n++
			}
		}
	}
	return n
}

// namespacesOf names the namespaces the resource list has objects in.
func namespacesOf(list map[string][]string) string {
	set := map[string]struct{}{}
	for _, entries := range list {
		for _, e := range entries {
			if ns, _, ok := strings.Cut(e, "/"); ok {
				set[ns] = struct{}{}
			}
		}
	}
	names := make([]string, 0, len(set))
	for ns := range set {
		names = append(names, ns)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "no namespace"
	}
	return fmt.Sprintf("%d namespaces: %s", len(names), named(names))
}

// Inject implements engine.Scenario. The disaster is the source region's
// loss, which drillbot only pretends: nothing of the source is touched.
// First the backup's own resource list must show objects in the source
// namespace (pickBackup), or the run refuses before any write. Then the
// journal entry (the copy to delete) is written; then the copy namespace is
// created, labelled with the run, so the undo deletes only what this run
// made.
func (s *scenario) Inject(ctx context.Context, j engine.Journal) error {
	if err := s.pickBackup(ctx); err != nil {
		return err
	}
	undo := Undo{Namespace: s.copy, Run: s.run, VeleroNamespace: s.params.VeleroNamespace, Restore: s.run}
	if err := j.Record(ctx, "restore-copy", fmt.Sprintf("restore backup %s of %s into namespace %s; undo: delete %s (labelled %s=%s)",
		s.backup.Name, s.params.SourceNamespace, s.copy, s.copy, v1alpha1.LabelRun, s.run), undo); err != nil {
		return err
	}
	_, err := s.deps.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.copy,
		Labels: map[string]string{v1alpha1.LabelRun: s.run, "app.kubernetes.io/managed-by": "drillbot"}}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create namespace %s for the copy: %w", s.copy, err)
	}
	return nil
}

// Recover implements engine.Scenario: restore the backup into the copy
// (nothing cluster-scoped is restored), then wait for every workload there
// to be Ready. A PartiallyFailed restore goes on to Verify, which names
// what is missing.
func (s *scenario) Recover(ctx context.Context, m engine.Milestones) error {
	r, err := nr.EnsureRestore(ctx, s.deps.Dynamic, &velerov1.Restore{
		TypeMeta: metav1.TypeMeta{APIVersion: velerov1.SchemeGroupVersion.String(), Kind: "Restore"},
		ObjectMeta: metav1.ObjectMeta{Name: s.run, Namespace: s.params.VeleroNamespace,
			Labels: map[string]string{v1alpha1.LabelRun: s.run}},
		Spec: velerov1.RestoreSpec{
			BackupName:              s.backup.Name,
			IncludedNamespaces:      []string{s.params.SourceNamespace},
			NamespaceMapping:        map[string]string{s.params.SourceNamespace: s.copy},
			ExcludedResources:       s.params.ExcludedResources,
			IncludeClusterResources: ptr.To(false),
		},
	})
	s.restore = r
	if err != nil && (r == nil || r.Status.Phase != velerov1.RestorePhasePartiallyFailed) {
		return err
	}
	m.Mark("restore-finished")
	if err := nr.WaitWorkloadsReady(ctx, s.deps.Kube, s.copy); err != nil {
		return err
	}
	m.Mark("workloads-ready")
	return nil
}

// Verify implements engine.Scenario: everything the backup lists for the
// source namespace is in the copy, and the restored marker dates the data.
func (s *scenario) Verify(ctx context.Context) (engine.Verification, error) {
	v := engine.Verification{Findings: append([]string{fmt.Sprintf("restored Velero backup %s (started %s) of namespace %s into %s",
		s.backup.Name, s.backup.Status.StartTimestamp.UTC().Format(time.RFC3339), s.params.SourceNamespace, s.copy)}, s.findings...)}
	if s.restore != nil && s.restore.Status.Phase == velerov1.RestorePhasePartiallyFailed {
		v.Failures = append(v.Failures, fmt.Sprintf("velero restore %s ended PartiallyFailed (errors: %d, warnings: %d)", s.restore.Name, s.restore.Status.Errors, s.restore.Status.Warnings))
	} else if s.restore != nil && s.restore.Status.Warnings > 0 {
		v.Findings = append(v.Findings, fmt.Sprintf("velero restore %s finished with %d warnings", s.restore.Name, s.restore.Status.Warnings))
	}
	if s.list == nil {
		return v, fmt.Errorf("backup %s's resource list was not read before the restore", s.backup.Name)
	}
	c, err := compare(ctx, s.deps.Discovery, s.deps.Metadata, s.list, s.params.SourceNamespace, s.copy, s.run, s.params.ExcludedResources)
	if err != nil {
		return v, err
	}
	v.Failures = append(v.Failures, c.failures()...)
	v.Findings = append(v.Findings, c.findings()...)
	switch {
	case c.checked == 0:
		// Nothing compared is no evidence the restore brought anything back.
		v.Inconclusive = c.nothingChecked(s.backup.Name, s.params.SourceNamespace)
	case c.byRestore == 0 && len(c.otherwise) > 0:
		// Rule 2: present, but none of it made by this run's restore
		// (an operator's or a policy engine's generated objects).
		v.Inconclusive = fmt.Sprintf("none of the objects found in the copy carries %s=%s: nothing shows this run's restore brought them back (made by something else: %s)",
			velerov1.RestoreNameLabel, s.run, named(c.otherwise))
	}
	if err := s.volumeData(ctx, &v); err != nil {
		return v, err
	}
	cm, err := s.deps.Kube.CoreV1().ConfigMaps(s.copy).Get(ctx, nr.MarkerName, metav1.GetOptions{})
	switch {
	case err == nil:
		ts, perr := time.Parse(time.RFC3339Nano, cm.Data[nr.MarkerKey])
		if perr != nil {
			return v, fmt.Errorf("restored RPO marker %s/%s holds %q: %w", s.copy, nr.MarkerName, cm.Data[nr.MarkerKey], perr)
		}
		v.DataTimestamp, v.RPOSource = &ts, "restored marker ConfigMap "+nr.MarkerName
	case apierrors.IsNotFound(err):
		ts := s.backup.Status.StartTimestamp.Time
		v.DataTimestamp, v.RPOSource = &ts, "backup start time (no marker in restored data)"
		v.Findings = append(v.Findings, "no RPO marker was restored: RPO is estimated from backup "+s.backup.Name+"'s start time, not measured from restored data")
	default:
		return v, fmt.Errorf("read restored RPO marker: %w", err)
	}
	return v, nil
}

// volumeData: the copy's volume data is never read (no data check runs in
// the copy), so a claim of the backup, or one in the copy (restored, or
// made empty by a StatefulSet whose claims the backup did not hold), makes
// the run INCONCLUSIVE unless the drill names it as unchecked, and the
// findings say what was not read.
func (s *scenario) volumeData(ctx context.Context, v *engine.Verification) error {
	var claims []string
	for _, item := range s.list["v1/PersistentVolumeClaim"] {
		if ns, name, ok := strings.Cut(item, "/"); ok && ns == s.params.SourceNamespace {
			claims = append(claims, name)
		}
	}
	inCopy, err := s.deps.Kube.CoreV1().PersistentVolumeClaims(s.copy).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list the claims in the copy %s: %w", s.copy, err)
	}
	for _, c := range inCopy.Items {
		if nr.EphemeralClaim(&c) {
			continue // scratch, new with each pod, never from a backup
		}
		if !slices.Contains(claims, c.Name) {
			claims = append(claims, c.Name)
		}
	}
	if len(claims) == 0 {
		return nil
	}
	sort.Strings(claims)
	var unnamed []string
	for _, c := range claims {
		if !slices.Contains(s.params.UncheckedVolumes, c) {
			unnamed = append(unnamed, c)
		}
	}
	v.Findings = append(v.Findings, fmt.Sprintf("volume data: the copy of %s from backup %s has %d PVCs (%s); failover-restore does not read their data (no data check runs in the copy): the verdict is on the objects",
		s.params.SourceNamespace, s.backup.Name, len(claims), strings.Join(claims, ", ")))
	if len(unnamed) > 0 {
		msg := fmt.Sprintf("the restored data of %d PVCs was not read (%s): a restore drill is not PASS until its data is verified; name them in params.uncheckedVolumes to judge the copy on its objects alone",
			len(unnamed), strings.Join(unnamed, ", "))
		if v.Inconclusive != "" {
			msg = v.Inconclusive + "; " + msg
		}
		v.Inconclusive = msg
	}
	return nil
}

// Revert implements engine.Scenario: wait for the run's restore to end (it
// may still be writing into the copy after a crash), then delete the copy
// if it is this run's, and wait until it is gone. Idempotent.
func (s *scenario) Revert(ctx context.Context, e v1alpha1.JournalEntry) error {
	var u Undo
	if err := json.Unmarshal(e.Undo, &u); err != nil {
		return fmt.Errorf("decode undo of %s: %w", e.ID, err)
	}
	if err := waitRestoreEnded(ctx, s.deps.Dynamic, u.VeleroNamespace, u.Restore); err != nil {
		return err
	}
	ns, err := s.deps.Kube.CoreV1().Namespaces().Get(ctx, u.Namespace, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil // never created, or deleted already
	case err != nil:
		return fmt.Errorf("read namespace %s: %w", u.Namespace, err)
	case ns.Labels[v1alpha1.LabelRun] != u.Run:
		// Not made by this run (the create failed: someone else's): never
		// delete it.
		return nil
	}
	if ns.DeletionTimestamp == nil {
		err := s.deps.Kube.CoreV1().Namespaces().Delete(ctx, u.Namespace, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &ns.UID}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete the copy %s: %w", u.Namespace, err)
		}
	}
	return kube.WaitNamespaceGone(ctx, s.deps.Kube, u.Namespace)
}

// waitRestoreEnded waits until the Velero restore, if there is one, is in
// a final phase.
func waitRestoreEnded(ctx context.Context, c dynamic.Interface, vns, name string) error {
	_, err := kube.WaitObject(ctx, c, nr.RestoresGVR, vns, name, func(u *unstructured.Unstructured) (bool, error) {
		if u == nil {
			return true, nil
		}
		phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
		switch velerov1.RestorePhase(phase) {
		case "", velerov1.RestorePhaseNew, velerov1.RestorePhaseInProgress, velerov1.RestorePhaseFinalizing,
			velerov1.RestorePhaseWaitingForPluginOperations, velerov1.RestorePhaseWaitingForPluginOperationsPartiallyFailed,
			velerov1.RestorePhaseFinalizingPartiallyFailed:
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("wait for Velero restore %s/%s to end before deleting the copy: %w", vns, name, err)
	}
	return nil
}

// LastCompletedBackup is when the newest Completed backup of the drill's
// source namespace in its storage location finished (for the report); ok
// is false when there is none.
func LastCompletedBackup(ctx context.Context, c dynamic.Interface, spec v1alpha1.DrillSpec) (t time.Time, ok bool, err error) {
	var p Params
	if err := drill.Params(spec, &p); err != nil {
		return t, false, err
	}
	p.defaults()
	opts := metav1.ListOptions{}
	if p.Schedule != "" {
		opts.LabelSelector = velerov1.ScheduleNameLabel + "=" + p.Schedule
	}
	list, err := c.Resource(nr.BackupsGVR).Namespace(p.VeleroNamespace).List(ctx, opts)
	if err != nil {
		return t, false, fmt.Errorf("list Velero backups: %w", err)
	}
	for i := range list.Items {
		var b velerov1.Backup
		if err := nr.FromUnstructured(&list.Items[i], &b); err != nil {
			return t, false, err
		}
		if b.Spec.StorageLocation == p.StorageLocation && includes(&b, p.SourceNamespace) &&
			b.Status.Phase == velerov1.BackupPhaseCompleted && b.Status.CompletionTimestamp != nil && b.Status.CompletionTimestamp.After(t) {
			t, ok = b.Status.CompletionTimestamp.Time, true
		}
	}
	return t, ok, nil
}

// Evidence implements engine.Evidencer: the backup is restored into
// another cluster, the production one untouched.
func (Kind) Evidence(v1alpha1.DrillSpec) (string, []string) {
	return engine.TestSegregatedRestore, []string{"Velero backup storage", "the DR cluster"}
}
