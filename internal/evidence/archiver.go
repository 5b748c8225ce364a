package evidence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
)

// Runs is where the archiver reads finished runs and records where each
// went (engine.RunStore has these).
type Runs interface {
	List(ctx context.Context, selector string) ([]v1alpha1.DrillRun, error)
	Get(ctx context.Context, name string) (*v1alpha1.DrillRun, error)
	UpdateStatus(ctx context.Context, run *v1alpha1.DrillRun) (*v1alpha1.DrillRun, error)
}

// Archiver writes every Completed run not yet archived to the archive,
// once, and records on the run where it went (status.archive). A write
// that fails is recorded on the run too (attempts, the error) and retried
// with backoff; the run is kept from pruning until it is archived
// (engine.Config.KeepUnarchived).
type Archiver struct {
	Runs    Runs
	Chain   *Chain
	Cluster Cluster
	// Classify is the scenario kind's test type and dependencies
	// (engine.Registry.Evidence).
	Classify func(scenario string, spec v1alpha1.DrillSpec) (string, []string)
	// Page renders a run's HTML page (nil: none).
	Page   func(run v1alpha1.DrillRun) ([]byte, error)
	Clock  clock.PassiveClock
	Logger *slog.Logger
	// Backoff is the first wait before a failed write is retried
	// (default 30s); it doubles per attempt up to 10 minutes.
	Backoff time.Duration
	// Observe is told of every attempt: err nil when the run was archived.
	Observe func(run *v1alpha1.DrillRun, err error)
	// Zone is the time zone the scheduler computes slots in for schedules
	// without CRON_TZ (the daemon's local zone, by name; empty: UTC).
	Zone string

	probed bool
}

// Pass archives every Completed run not archived yet whose retry is due,
// oldest first. It returns how many runs are still not archived.
func (a *Archiver) Pass(ctx context.Context) (pending int, err error) {
	runs, err := a.Runs.List(ctx, "")
	if err != nil {
		return 0, fmt.Errorf("list runs: %w", err)
	}
	var todo []v1alpha1.DrillRun
	for _, r := range runs {
		if archivable(r) {
			todo = append(todo, r)
		}
	}
	sort.SliceStable(todo, func(i, j int) bool { return finished(todo[i]).Before(finished(todo[j])) })
	// The newest place of each chain this cluster's runs say they took:
	// the next record goes after it, whatever the store says now.
	written := map[string]Place{}
	for _, r := range runs {
		a.wrote(written, r)
	}
	now := a.now()
	var probeErr error
	for i := range todo {
		r := &todo[i]
		if !a.due(r, now) {
			pending++
			continue
		}
		if !a.probed && probeErr == nil {
			// Once per archiver: a store that overwrites would let two
			// writers each believe its record is the one kept.
			if probeErr = a.Chain.Probe(ctx, a.Cluster.Name); probeErr == nil {
				a.probed = true
			}
		}
		var err error
		if probeErr != nil {
			err = a.record(ctx, r, Appended{}, probeErr)
		} else {
			err = a.archive(ctx, r, written[r.Spec.Drill])
		}
		if err == nil {
			a.wrote(written, *r)
			continue
		}
		pending++
		if ctx.Err() != nil {
			return pending + len(todo) - i - 1, ctx.Err()
		}
	}
	return pending, nil
}

// archivable says whether a run is to be written: finished with a
// verdict (Completed, or RevertFailed: its FAIL and the fault that may
// still be active are evidence at once) and not archived in this phase.
// A run archived RevertFailed is archived again once its revert
// succeeded: the later record is the run's, the earlier stays.
func archivable(r v1alpha1.DrillRun) bool {
	switch p := r.Status.Phase; {
	case p != v1alpha1.PhaseCompleted && p != v1alpha1.PhaseRevertFailed:
		return false
	case !r.Status.Archived():
		return true
	default:
		return p == v1alpha1.PhaseCompleted && r.Status.Archive.Phase == v1alpha1.PhaseRevertFailed
	}
}

// wrote notes, per drill, the newest place of this cluster's chain that
// run r's status.archive says it took.
func (a *Archiver) wrote(written map[string]Place, r v1alpha1.DrillRun) {
	st := r.Status.Archive
	if !r.Status.Archived() {
		return
	}
	cluster, drill, seq, ok := a.Chain.Layout.Parse(st.Object)
	if ok && cluster == a.Cluster.Name && seq > written[drill].Seq {
		written[drill] = Place{Seq: seq, Digest: st.Digest}
	}
}

func finished(r v1alpha1.DrillRun) time.Time {
	if r.Status.FinishedAt != nil {
		return r.Status.FinishedAt.Time
	}
	return r.CreationTimestamp.Time
}

func (a *Archiver) now() time.Time {
	if a.Clock == nil {
		return time.Now()
	}
	return a.Clock.Now()
}

func (a *Archiver) log() *slog.Logger {
	if a.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Logger
}

// due says whether a run's next attempt is due: at once for the first,
// then after Backoff doubled per failed attempt, at most 10 minutes.
func (a *Archiver) due(r *v1alpha1.DrillRun, now time.Time) bool {
	st := r.Status.Archive
	if st == nil || st.Attempts == 0 || st.LastAttemptAt == nil {
		return true
	}
	wait := a.Backoff
	if wait == 0 {
		wait = 30 * time.Second
	}
	for i := int32(1); i < st.Attempts && wait < 10*time.Minute; i++ {
		wait *= 2
	}
	return !now.Before(st.LastAttemptAt.Add(min(wait, 10*time.Minute)))
}

// archive writes one run's record after the place this cluster last
// wrote in its chain, and records the outcome on the run. A record of the
// run written since it finished (by an attempt whose status update was
// lost) is taken for it instead.
func (a *Archiver) archive(ctx context.Context, r *v1alpha1.DrillRun, after Place) error {
	rec, err := a.Record(*r)
	var app Appended
	if err == nil {
		app, err = a.Chain.AppendAfter(ctx, rec, AppendOptions{
			After: after,
			Same: func(h Record) bool {
				return h.Kind == KindRun && h.Run != nil && h.Run.ID == rec.Run.ID && h.Run.DrillRun.Status.Phase == r.Status.Phase
			},
			Since: finished(*r).Add(-time.Minute),
		})
	}
	return a.record(ctx, r, app, err)
}

// record writes an attempt's outcome on the run (status.archive) and
// tells Observe.
func (a *Archiver) record(ctx context.Context, r *v1alpha1.DrillRun, app Appended, err error) error {
	at := metav1.NewMicroTime(a.now())
	st := v1alpha1.ArchiveStatus{}
	if r.Status.Archive != nil {
		st = *r.Status.Archive
	}
	st.Attempts++
	st.LastAttemptAt = &at
	if err != nil {
		st.LastError = err.Error()
		a.log().Warn("run not archived: retrying", "run", r.Name, "attempt", st.Attempts, "err", err)
	} else {
		st.Object, st.Digest, st.Seq, st.ArchivedAt, st.LastError, st.Phase = app.Key, app.Digest, app.Seq, &at, "", r.Status.Phase
		a.log().Info("run archived", "run", r.Name, "object", app.Key, "seq", app.Seq, "existing", app.Existing)
	}
	if uerr := a.setStatus(ctx, r, st); uerr != nil {
		// Archived but not said on the run: the next pass finds the
		// record at the chain's head and says so then.
		a.log().Warn("archive status not recorded on the run", "run", r.Name, "err", uerr)
		err = errors.Join(err, uerr)
	}
	if a.Observe != nil {
		a.Observe(r, err)
	}
	return err
}

// setStatus writes status.archive, re-reading the run on a conflict.
func (a *Archiver) setStatus(ctx context.Context, r *v1alpha1.DrillRun, st v1alpha1.ArchiveStatus) error {
	cur := r
	for attempt := 0; attempt < 3; attempt++ {
		cur.Status.Archive = &st
		updated, err := a.Runs.UpdateStatus(ctx, cur)
		if err == nil {
			*r = *updated
			r.Status.Archive = &st
			return nil
		}
		if !apierrors.IsConflict(err) {
			return err
		}
		if cur, err = a.Runs.Get(ctx, r.Name); err != nil {
			return err
		}
	}
	return fmt.Errorf("run %s kept changing", r.Name)
}

// Record is a run's evidence record (its place in the chain is set when
// it is appended).
func (a *Archiver) Record(r v1alpha1.DrillRun) (Record, error) {
	if r.UID == "" {
		return Record{}, fmt.Errorf("run %s has no UID", r.Name)
	}
	r.ManagedFields = nil
	// The record's fields are derived from the DrillRun as it is stored
	// (times to the microsecond, as the API has them), which is what
	// verify derives them from again.
	if err := roundTrip(&r); err != nil {
		return Record{}, fmt.Errorf("run %s: %w", r.Name, err)
	}
	ev := derive(r, zoneOf(a.Zone))
	ev.Scope.Cluster = a.Cluster.Name
	ev.ScheduleZone = a.Zone
	if a.Classify != nil {
		ev.TestType, ev.Scope.Dependencies = a.Classify(r.Spec.Scenario, r.Spec.Snapshot)
	}
	if a.Page != nil {
		page, err := a.Page(r)
		if err != nil {
			return Record{}, fmt.Errorf("run %s: page: %w", r.Name, err)
		}
		ev.Page = string(page)
	}
	return Record{APIVersion: v1alpha1.APIVersion, Kind: KindRun, Cluster: a.Cluster, Drill: r.Spec.Drill, Run: &ev}, nil
}

// zoneOf is the zone a record names (empty: UTC); one that cannot be
// loaded is UTC here, and verify names it.
func zoneOf(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		return time.UTC
	}
	return loc
}

// roundTrip sets r to what its JSON decodes to.
func roundTrip(r *v1alpha1.DrillRun) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	*r = v1alpha1.DrillRun{}
	return json.Unmarshal(data, r)
}

// derive is every field of a run's record that its DrillRun decides:
// what the archiver writes, and what verify checks a record's fields
// against; zone is the daemon's (Run.ScheduleZone).
func derive(r v1alpha1.DrillRun, zone *time.Location) Run {
	ev := Run{
		ID: string(r.UID), Name: r.Name, Definition: r.Spec.Snapshot, DefinitionDigest: r.Spec.DefinitionDigest,
		Source: r.Spec.Source, Findings: r.Status.Findings,
		Result: result(r), Steps: steps(r), DataChecks: dataChecks(r), NextScheduledRun: nextRun(r, zone), DrillRun: r,
	}
	if ev.DefinitionDigest == "" {
		ev.DefinitionDigest = engine.DefinitionDigest(r.Spec.Snapshot)
	}
	if r.Spec.StartedBy != nil {
		ev.StartedBy = *r.Spec.StartedBy
	} else {
		ev.StartedBy = v1alpha1.Initiator{Kind: r.Spec.Trigger}
	}
	if ns := r.Spec.Snapshot.Target.Namespace; ns != "" {
		ev.Scope.Namespaces = []string{ns}
	}
	return ev
}

func result(r v1alpha1.DrillRun) Result {
	st := r.Status
	res := Result{Verdict: st.Verdict, Reason: st.Reason, RTO: st.RTO, RTOTarget: st.RTOTarget, RPO: st.RPO, RPOTarget: st.RPOTarget}
	res.RTOMet = met(st.RTO, st.RTOTarget)
	res.RPOMet = met(st.RPO, st.RPOTarget)
	if st.Stop != nil {
		res.Held = st.Reason
	}
	return res
}

// met says whether measured is within target; nil when either is absent
// (not measured is not met, and not a failure either: it says nothing).
func met(measured, target string) *bool {
	if measured == "" || target == "" {
		return nil
	}
	m, err1 := time.ParseDuration(measured)
	t, err2 := time.ParseDuration(target)
	if err1 != nil || err2 != nil {
		return nil
	}
	ok := m <= t
	return &ok
}

// steps is the run's step log: phases (start and end) and milestones, by
// time.
func steps(r v1alpha1.DrillRun) []Step {
	var out []Step
	for _, s := range r.Status.Steps {
		out = append(out, Step{At: s.StartedAt.Time, What: string(s.Phase) + " started"})
		if s.FinishedAt != nil {
			what := string(s.Phase) + " finished"
			if s.Error != "" {
				what += ": " + s.Error
			}
			out = append(out, Step{At: s.FinishedAt.Time, What: what})
		}
	}
	for _, m := range r.Status.Milestones {
		out = append(out, Step{At: m.At.Time, What: "milestone " + m.Name})
	}
	for _, j := range r.Status.Journal {
		out = append(out, Step{At: j.RecordedAt.Time, What: "fault recorded: " + j.Action + " " + j.Description})
		if j.RevertedAt != nil {
			out = append(out, Step{At: j.RevertedAt.Time, What: "fault reverted: " + j.Action})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

// dataChecks names the run's checks of its recovered data and what they
// found: a data-verified milestone is a check that passed; a finding about
// the data check says the rest.
func dataChecks(r v1alpha1.DrillRun) []string {
	var out []string
	if v := r.Spec.Snapshot.Verify; v != nil {
		if v.Job != nil {
			out = append(out, "job (spec.verify.job)")
		}
		if v.HTTP != nil {
			out = append(out, fmt.Sprintf("http (spec.verify.http): service %s port %s path %s", v.HTTP.Service, v.HTTP.Port, v.HTTP.Path))
		}
	}
	for _, m := range r.Status.Milestones {
		if m.Name == "data-verified" {
			out = append(out, "data verified at "+m.At.UTC().Format(time.RFC3339))
		}
	}
	for _, f := range r.Status.Findings {
		if strings.Contains(f, "data check") {
			out = append(out, f)
		}
	}
	if r.Status.RPOSource != "" && len(out) > 0 {
		out = append(out, "RPO from "+r.Status.RPOSource)
	}
	return out
}

// scheduleOf is a drill's schedule; ok is false when it is not scheduled
// (on demand, suspended, or a schedule that does not parse).
func scheduleOf(spec v1alpha1.DrillSpec) (cron.Schedule, bool) {
	if spec.Schedule == "" || spec.Suspend {
		return nil, false
	}
	s, err := drill.ParseSchedule(spec.Schedule)
	return s, err == nil
}

// nextRun is when the drill's schedule fires next after the run started.
// A schedule without CRON_TZ fires in zone, the daemon's.
func nextRun(r v1alpha1.DrillRun, zone *time.Location) *time.Time {
	s, ok := scheduleOf(r.Spec.Snapshot)
	if !ok || r.Status.StartedAt == nil {
		return nil
	}
	next := s.Next(r.Status.StartedAt.In(zone)).UTC()
	return &next
}
