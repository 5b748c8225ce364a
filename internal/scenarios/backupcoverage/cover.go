package backupcoverage

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/engine"
	nr "github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
)

// Inputs are what the check read.
type Inputs struct {
	Namespaces []Namespace
	Schedules  []velerov1.Schedule
	Backups    []velerov1.Backup
	Locations  []velerov1.BackupStorageLocation
	// Restores are Velero's restores: a namespace one of them made from a
	// backup is held by that backup, although it is newer than it.
	Restores []velerov1.Restore
	// Volumes reads a backup's volume information (Velero's record of each
	// volume's data), needed for namespaces with bound PVCs.
	Volumes func(backup string) ([]nr.VolumeInfo, error)
	// Accepted maps a namespace to why its backups may leave part of it
	// out (the drill's acceptPartial).
	Accepted map[string]string
}

// Coverage is what protects one namespace.
type Coverage struct {
	Namespace string
	// Created is when the namespace was created.
	Created time.Time
	// Schedules are the unpaused Schedules whose template includes it.
	Schedules []string
	// Invalid are the unpaused Schedules whose template includes it but
	// which Velero found invalid (phase FailedValidation): they make no
	// backup, and are not in Schedules.
	Invalid []string
	// PartialSchedules are those of them that leave part of it out.
	PartialSchedules []Partial
	// Unavailable names storage locations of its schedules that are not
	// Available (or do not exist).
	Unavailable []string
	// ReadOnly says which of its schedules write to a ReadOnly location.
	ReadOnly []string
	// Newest is the newest Completed backup of this cluster that holds it
	// (nil: none), and what it leaves out of it.
	Newest     *velerov1.Backup
	NewestGaps []string
	// Complete is the newest such backup that holds all of it, or, for an
	// accepted namespace, Newest (nil: none); CompleteGaps is what it leaves
	// out (accepted).
	Complete     *velerov1.Backup
	CompleteGaps []string
	// CompleteLocationDown names Complete's storage location when it is
	// not Available.
	CompleteLocationDown string
	// Accepted is why the drill accepts its partial backups ("": it does
	// not).
	Accepted string
	// MadeBy is the Velero restore that made the namespace from Complete,
	// which started before it was created ("": Complete started after).
	MadeBy string
	// VolumesErr is why a backup's volume information could not be read:
	// which backup holds all of the namespace is not known, so that part
	// of it is not judged (its configuration still is).
	VolumesErr error
	// NotCounted are the backups newer than Complete whose namespace lists
	// take it but which are not this cluster's evidence, and why.
	NotCounted []string
}

// Partial is a spec that leaves part of a namespace out.
type Partial struct {
	Name string
	Gaps []string
}

// Cover works out, per namespace, what protects it: the Completed backups
// of this cluster that hold it (all of it, or part), and the unpaused
// Schedules whose template includes it, with their storage locations.
func Cover(in Inputs) []Coverage {
	locs := map[string]*velerov1.BackupStorageLocation{}
	defaultLocation := ""
	for i := range in.Locations {
		l := &in.Locations[i]
		locs[l.Name] = l
		if l.Spec.Default {
			defaultLocation = l.Name
		}
	}
	var backups []*velerov1.Backup // Completed, newest first
	for i := range in.Backups {
		b := &in.Backups[i]
		if b.Status.Phase == velerov1.BackupPhaseCompleted && b.Status.StartTimestamp != nil && b.DeletionTimestamp == nil {
			backups = append(backups, b)
		}
	}
	sort.Slice(backups, func(i, j int) bool {
		ti, tj := backups[i].Status.StartTimestamp, backups[j].Status.StartTimestamp
		if !ti.Equal(tj) {
			return tj.Before(ti)
		}
		return backups[i].Name > backups[j].Name
	})
	out := make([]Coverage, 0, len(in.Namespaces))
	for i := range in.Namespaces {
		ns := &in.Namespaces[i]
		c := Coverage{Namespace: ns.Name, Created: ns.Created.Time, Accepted: in.Accepted[ns.Name]}
		c.coverSchedules(in.Schedules, ns, locs, defaultLocation)
		c.coverBackups(backups, ns, locs, in.Restores, in.Volumes)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Namespace < out[j].Namespace })
	return out
}

// coverSchedules finds the unpaused Schedules whose template includes ns:
// configuration, which says what the next backups will hold and where.
func (c *Coverage) coverSchedules(schedules []velerov1.Schedule, ns *Namespace, locs map[string]*velerov1.BackupStorageLocation, defaultLocation string) {
	for _, s := range schedules {
		t := &s.Spec.Template
		if s.Spec.Paused {
			continue
		}
		// A pattern Velero cannot read fails each of its backups'
		// validation: such a schedule includes nothing.
		if ok, err := nr.IncludesNamespace(t.IncludedNamespaces, t.ExcludedNamespaces, ns.Name); err != nil || !ok {
			continue
		}
		if s.Status.Phase == velerov1.SchedulePhaseFailedValidation {
			// Velero runs only an Enabled schedule.
			c.Invalid = append(c.Invalid, fmt.Sprintf("%s (%s)", s.Name, strings.Join(s.Status.ValidationErrors, "; ")))
			continue
		}
		c.Schedules = append(c.Schedules, s.Name)
		if gaps := specGaps(t, ns, templateSpec); len(gaps) > 0 {
			c.PartialSchedules = append(c.PartialSchedules, Partial{Name: s.Name, Gaps: gaps})
		}
		loc := t.StorageLocation
		if loc == "" {
			loc = defaultLocation
		}
		switch l := locs[loc]; {
		case l == nil || l.Status.Phase != velerov1.BackupStorageLocationPhaseAvailable:
			if !slices.Contains(c.Unavailable, orNone(loc)) {
				c.Unavailable = append(c.Unavailable, orNone(loc))
			}
		case l.Spec.AccessMode == velerov1.BackupStorageLocationAccessModeReadOnly:
			c.ReadOnly = append(c.ReadOnly, fmt.Sprintf("schedule %s writes to storage location %s, which is ReadOnly: Velero refuses every new backup there", s.Name, loc))
		}
	}
}

// coverBackups finds, newest first, the Completed backups of this cluster
// that hold ns, until one holds all of it.
func (c *Coverage) coverBackups(backups []*velerov1.Backup, ns *Namespace, locs map[string]*velerov1.BackupStorageLocation, restores []velerov1.Restore,
	volumes func(string) ([]nr.VolumeInfo, error)) {
	var reasons []string
	skipped := map[string][]string{} // reason -> backups, newest first
	skip := func(b *velerov1.Backup, why string) {
		if _, ok := skipped[why]; !ok {
			reasons = append(reasons, why)
		}
		skipped[why] = append(skipped[why], b.Name)
	}
	for _, b := range backups {
		ok, err := nr.IncludesNamespace(b.Spec.IncludedNamespaces, b.Spec.ExcludedNamespaces, ns.Name)
		if err != nil {
			skip(b, "its "+err.Error())
			continue
		}
		if !ok {
			continue
		}
		if why := notThisClusters(b, locs); why != "" {
			skip(b, why)
			continue
		}
		madeBy := ""
		if ns.Created.After(b.Status.StartTimestamp.Time) {
			if madeBy = madeFrom(b, ns, restores); madeBy == "" {
				skip(b, fmt.Sprintf("started before the namespace was created at %s, and no Completed Velero restore of all of it from that backup made it",
					ns.Created.UTC().Format(time.RFC3339)))
				continue
			}
		}
		gaps := backupGaps(b, ns)
		lost, err := volumeGaps(b, ns, volumes)
		if err != nil {
			c.VolumesErr = err
			return
		}
		gaps = append(gaps, lost...)
		if c.Newest == nil {
			c.Newest, c.NewestGaps = b, gaps
		}
		if len(gaps) == 0 || c.Accepted != "" {
			c.Complete, c.CompleteGaps, c.MadeBy = b, gaps, madeBy
			if l := locs[b.Spec.StorageLocation]; l.Status.Phase != velerov1.BackupStorageLocationPhaseAvailable {
				c.CompleteLocationDown = l.Name
			}
			break
		}
	}
	for _, why := range reasons {
		names := skipped[why]
		more := ""
		if len(names) > 1 {
			more = fmt.Sprintf(" and %d more", len(names)-1)
		}
		c.NotCounted = append(c.NotCounted, fmt.Sprintf("%s%s (%s)", names[0], more, why))
	}
}

// notThisClusters says why a backup is not this cluster's evidence ("":
// it is).
func notThisClusters(b *velerov1.Backup, locs map[string]*velerov1.BackupStorageLocation) string {
	loc := b.Spec.StorageLocation
	switch l := locs[loc]; {
	case loc == "":
		return "it names no storage location"
	case l == nil:
		return fmt.Sprintf("storage location %s not found", loc)
	case l.Spec.AccessMode == velerov1.BackupStorageLocationAccessModeReadOnly:
		return fmt.Sprintf("storage location %s is ReadOnly: another cluster's", loc)
	}
	return ""
}

// partialRestore reports whether a restore spec leaves part of ns out:
// a label selector, a resource policy (its filters choose kinds, names and
// labels), resource filters beyond what Velero never restores (its
// controller writes those into every restore's excludedResources), or,
// where there are PVCs, volumes not restored (restorePVs false, or
// includeClusterResources false: the PV a PVC brings is then skipped).
func partialRestore(s *velerov1.RestoreSpec, ns *Namespace) bool {
	if !emptySelector(s.LabelSelector) || len(s.OrLabelSelectors) > 0 || s.ResourcePolicy != nil {
		return true
	}
	if len(s.IncludedResources) > 0 && !slices.Contains(s.IncludedResources, "*") {
		return true
	}
	if slices.ContainsFunc(s.ExcludedResources, func(r string) bool { return leavesOut(r, ns, false) }) {
		return true
	}
	return len(ns.PVCs) > 0 && ((s.RestorePVs != nil && !*s.RestorePVs) || (s.IncludeClusterResources != nil && !*s.IncludeClusterResources))
}

// veleroManager is the field manager of Velero's server (its client's
// user agent, velero-server/<version>): the one that creates a namespace
// it restores.
const veleroManager = "velero-server"

// madeFrom names the Velero restore that made namespace ns, as it is now,
// from backup b ("": none did). A backup that started before the namespace
// was created holds it only so: Velero's server made the namespace (its
// managedFields name velero-server), and every restore that could have
// made it (its namespace lists take it, or map another onto it) and was
// running when it was created is from b, one of them a Completed restore
// of all of it (the same name, nothing filtered out). Anything else
// (another backup, a partial or failed restore, another namespace's data
// mapped onto it, a namespace made by another client or again after the
// restore) gives b no credit. The namespace's creation (the API server's
// clock) and the restore's times (Velero's) are two of the cluster's
// clocks: a skew between them only withholds credit.
func madeFrom(b *velerov1.Backup, ns *Namespace, restores []velerov1.Restore) string {
	if !slices.Contains(ns.Managers, veleroManager) {
		return ""
	}
	made := ""
	for i := range restores {
		r := &restores[i]
		s := &r.Spec
		if !mayHaveMade(r, ns) {
			continue
		}
		if s.BackupName != b.Name {
			return "" // another backup's restore may have made it
		}
		if made == "" && r.Status.Phase == velerov1.RestorePhaseCompleted && !partialRestore(s, ns) && !mapped(s, ns.Name) {
			made = r.Name
		}
	}
	return made
}

// mayHaveMade reports whether restore r was running when ns was created and
// its namespace lists, as Velero reads them, take ns or map another
// namespace onto it.
func mayHaveMade(r *velerov1.Restore, ns *Namespace) bool {
	start, end := r.Status.StartTimestamp, r.Status.CompletionTimestamp
	if start == nil || ns.Created.Before(start) || (end != nil && end.Before(&ns.Created)) {
		return false
	}
	for from, to := range r.Spec.NamespaceMapping {
		if to == ns.Name && from != ns.Name {
			return true
		}
	}
	return nr.VeleroIncludes(r.Spec.IncludedNamespaces, r.Spec.ExcludedNamespaces, ns.Name)
}

// mapped reports whether a restore spec maps ns away or another namespace
// onto it.
func mapped(s *velerov1.RestoreSpec, ns string) bool {
	for from, to := range s.NamespaceMapping {
		if (from == ns) != (to == ns) {
			return true
		}
	}
	return false
}

// backupGaps names what a backup of this cluster that holds ns leaves out
// of it. It reads the backup's own spec; a further source of gaps (the
// PodVolumeBackups and snapshots of each PVC) is one more append here.
func backupGaps(b *velerov1.Backup, ns *Namespace) []string {
	return specGaps(&b.Spec, ns, backupSpec)
}

// volumeGaps names the bound PVCs of ns whose data backup b does not hold,
// by Velero's record of the backup's volumes; an error is a record that
// could not be read (no evidence either way).
func volumeGaps(b *velerov1.Backup, ns *Namespace, volumes func(string) ([]nr.VolumeInfo, error)) ([]string, error) {
	if len(ns.Bound) == 0 {
		return nil, nil
	}
	if volumes == nil {
		return nil, errors.New("the backups' volume information was not read")
	}
	infos, err := volumes(b.Name)
	if errors.Is(err, nr.ErrNotStored) {
		names := make([]string, 0, len(ns.Bound))
		for _, p := range ns.Bound {
			names = append(names, p.Name)
		}
		return []string{fmt.Sprintf("the data of PVC %s (the backup has no volume information, taken before Velero 1.13: not known to hold it)", strings.Join(names, ", "))}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("backup %s, namespace %s: %w", b.Name, ns.Name, err)
	}
	var gaps []string
	for _, l := range nr.LostVolumes(b.Name, ns.Bound, infos) {
		gaps = append(gaps, "the data of "+l.String())
	}
	return gaps, nil
}

func orNone(loc string) string {
	if loc == "" {
		return "(none: no default location)"
	}
	return loc
}

// judge names what breaks the namespace's promise (failures), what is
// worth reading (findings), and what could not be judged (unknown).
func (c *Coverage) judge(rpo time.Duration, now time.Time) (failures, findings []string, unknown string) {
	fail := func(format string, a ...any) {
		failures = append(failures, "namespace "+c.Namespace+": "+fmt.Sprintf(format, a...))
	}
	find := func(format string, a ...any) {
		findings = append(findings, "namespace "+c.Namespace+": "+fmt.Sprintf(format, a...))
	}
	accepted := "; accepted (acceptPartial): " + c.Accepted
	notCounted := ""
	if len(c.NotCounted) > 0 {
		notCounted = "; not counted: " + strings.Join(c.NotCounted, ", ")
	}
	schedules := strings.Join(c.Schedules, ", ")

	// Configuration: what the next backups will do.
	invalid := ""
	if len(c.Invalid) > 0 {
		invalid = "; failed Velero's validation, so make no backup: schedule " + strings.Join(c.Invalid, ", ")
	}
	switch {
	case len(c.Schedules) == 0:
		fail("no unpaused Velero Schedule includes it%s", invalid)
		schedules = "(none)"
	case len(c.PartialSchedules) == len(c.Schedules):
		for _, p := range c.PartialSchedules {
			if c.Accepted != "" {
				find("schedule %s leaves out: %s%s", p.Name, strings.Join(p.Gaps, "; "), accepted)
			} else {
				fail("schedule %s leaves out: %s", p.Name, strings.Join(p.Gaps, "; "))
			}
		}
	default:
		for _, p := range c.PartialSchedules {
			find("schedule %s leaves out: %s (another of its schedules does not)", p.Name, strings.Join(p.Gaps, "; "))
		}
	}
	if len(c.Schedules) > 0 && invalid != "" {
		find("%s", strings.TrimPrefix(invalid, "; "))
	}
	for _, ro := range c.ReadOnly {
		fail("%s", ro)
	}
	if len(c.Unavailable) > 0 {
		fail("storage location %s not Available: its next backup will fail", strings.Join(c.Unavailable, ", "))
	}

	// What happened: the backups that hold it.
	switch {
	case c.VolumesErr != nil:
		return failures, findings, fmt.Sprintf("namespace %s: which backup holds its volumes' data is not known: %v", c.Namespace, c.VolumesErr)
	case c.Newest == nil:
		if len(c.Schedules) > 0 {
			fail("no Completed backup of schedule %s (nor any other) in this cluster's storage locations holds it%s", schedules, notCounted)
		} else {
			fail("no Completed backup in this cluster's storage locations holds it%s", notCounted)
		}
		return failures, findings, ""
	case c.Complete == nil:
		fail("newest Completed backup %s leaves out: %s; no older one holds all of it (if that is intended, accept it by name: acceptPartial)%s",
			c.Newest.Name, strings.Join(c.NewestGaps, "; "), notCounted)
		return failures, findings, ""
	}
	which, started := "newest Completed backup "+c.Complete.Name, " started"
	if c.Complete != c.Newest {
		which, started = "newest Completed backup holding all of it, "+c.Complete.Name, ", started"
		find("newer backup %s leaves out: %s", c.Newest.Name, strings.Join(c.NewestGaps, "; "))
	}
	age := now.Sub(c.Complete.Status.StartTimestamp.Time)
	if age > rpo {
		fail("%s%s %s ago, beyond the RPO target %s", which, started, engine.FormatDuration(age.Round(time.Second)), rpo)
	}
	if c.MadeBy != "" {
		find("backup %s started before the namespace was created at %s; counted: Velero restore %s made the namespace from it",
			c.Complete.Name, c.Created.UTC().Format(time.RFC3339), c.MadeBy)
	}
	if c.CompleteLocationDown != "" {
		fail("storage location %s of backup %s not Available: it cannot be restored from now", c.CompleteLocationDown, c.Complete.Name)
	}
	if len(c.CompleteGaps) > 0 {
		find("backup %s leaves out: %s%s", c.Complete.Name, strings.Join(c.CompleteGaps, "; "), accepted)
	}
	if notCounted != "" {
		find("%s", strings.TrimPrefix(notCounted, "; "))
	}
	find("schedule %s, %s, %s old", schedules, which, engine.FormatDuration(age.Round(time.Second)))
	return failures, findings, ""
}

// Judge turns coverage into the verdict's parts: each namespace no backup
// of this cluster holds, all of it, within the RPO target, or that no
// unpaused schedule goes on backing up, all of it, to a writable Available
// location, is a failure; the RPO is the stalest namespace's newest
// complete backup start, measured only when every namespace has one. A
// namespace whose backups' volume information could not be read is not
// judged: the run is INCONCLUSIVE unless another failure makes it FAIL.
func Judge(cov []Coverage, selector string, rpo time.Duration, now time.Time) engine.Verification {
	var v engine.Verification
	if len(cov) == 0 {
		v.Inconclusive = fmt.Sprintf("no namespace matches %s: nothing to check", selector)
		return v
	}
	var (
		stalest             *Coverage
		unmeasured, unknown []string
	)
	compliant := 0
	for i := range cov {
		c := &cov[i]
		failures, findings, why := c.judge(rpo, now)
		if len(failures) == 0 && why == "" {
			compliant++
		}
		v.Failures = append(v.Failures, failures...)
		v.Findings = append(v.Findings, findings...)
		if why != "" {
			unknown = append(unknown, why)
		}
		switch {
		case c.Complete == nil:
			unmeasured = append(unmeasured, c.Namespace)
		case stalest == nil || c.Complete.Status.StartTimestamp.Before(stalest.Complete.Status.StartTimestamp):
			stalest = c
		}
	}
	v.Posture = &v1alpha1.PostureMeasure{Compliant: int32(compliant), Total: int32(len(cov)), Of: "namespaces"}
	v.Findings = append([]string{fmt.Sprintf("backup coverage: %d of %d namespaces within the RPO target %s", compliant, len(cov), rpo)}, v.Findings...)
	switch {
	case len(unmeasured) > 0:
		v.Findings = append(v.Findings, fmt.Sprintf("RPO not measured: no Completed backup of this cluster holds all of namespace %s", strings.Join(unmeasured, ", ")))
	case stalest != nil:
		ts := stalest.Complete.Status.StartTimestamp.Time
		v.DataTimestamp = &ts
		v.RPOSource = fmt.Sprintf("newest complete backup of the stalest namespace, %s (%s)", stalest.Namespace, stalest.Complete.Name)
	}
	if len(unknown) > 0 {
		v.Inconclusive = "not judged: " + strings.Join(unknown, "; ")
	}
	return v
}
