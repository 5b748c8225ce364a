// Package engine runs drills: it owns the order of phases, their deadlines,
// the clock and all RTO/RPO stamping, the undo journal and the verdict.
// Scenario kinds act on their targets behind the small Scenario interface and
// never read the clock for timing.
package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
)

// Scenario is one run's scenario, built from the drill by its Kind.
type Scenario interface {
	// Preflight checks the targets are allowed and ready. It must not write.
	// An error here means nothing was touched.
	Preflight(ctx context.Context) error
	// Inject causes the disaster. Before each mutation it calls j.Record with
	// what is needed to undo it, and mutates only once Record returned nil.
	Inject(ctx context.Context, j Journal) error
	// Recover drives or awaits recovery and returns once the target is
	// recovered (observed, never assumed). It reports milestones to m.
	Recover(ctx context.Context, m Milestones) error
	// Verify checks what recovery brought back.
	Verify(ctx context.Context) (Verification, error)
	// Revert undoes one journal entry. It must be idempotent: it is called
	// for every entry not yet reverted, also after a successful recovery and
	// after a restart, when only the entry and the drill snapshot remain.
	Revert(ctx context.Context, e v1alpha1.JournalEntry) error
}

// Journal is the durable undo journal of a run.
type Journal interface {
	// Record writes an undo entry durably to the cluster before the fault it
	// undoes. The first Record of a run marks the disaster's start.
	Record(ctx context.Context, action, description string, undo any) error
}

// Rehearsals is implemented by the engine's journal: an undo recorded for
// a rehearsal before the fault (a check that the run can measure anything,
// made and removed before the first fault) is as durable as any other, but
// does not mark the disaster's start, so the RTO and alert deadlines are
// not charged with it.
type Rehearsals interface {
	RecordRehearsal(ctx context.Context, action, description string, undo any) error
}

// RecordRehearsal records through j's RecordRehearsal when it has one, and
// Record otherwise.
func RecordRehearsal(ctx context.Context, j Journal, action, description string, undo any) error {
	if r, ok := j.(Rehearsals); ok {
		return r.RecordRehearsal(ctx, action, description, undo)
	}
	return j.Record(ctx, action, description, undo)
}

// Milestones takes named moments of recovery; the engine stamps the time.
type Milestones interface {
	Mark(name string)
}

// Verification is what Verify found.
type Verification struct {
	// Failures make the verdict FAIL (e.g. missing objects).
	Failures []string
	// Inconclusive, when set, makes the verdict INCONCLUSIVE with this reason
	// (e.g. the fault had no observable effect).
	Inconclusive string
	// Findings are worth reading on any verdict.
	Findings []string
	// DataTimestamp is the newest write found in the recovered data; the
	// engine computes RPO as disaster time minus this. Nil: not measured.
	DataTimestamp *time.Time
	// RPOSource says where DataTimestamp or RPOMilestone came from.
	RPOSource string
	// RPOMilestone, when set, makes the RPO the time from the disaster to
	// this milestone (a blind window: e.g. until the fault was detected).
	RPOMilestone string
	// Posture is a check's count (recorded as status.posture, exported as
	// drillbot_posture_*).
	Posture *v1alpha1.PostureMeasure
}

// Kind is a scenario kind: it validates a drill's params and builds the
// scenario for a run.
type Kind interface {
	// ValidateParams strictly decodes and checks the drill's params.
	ValidateParams(spec v1alpha1.DrillSpec, path *field.Path) field.ErrorList
	// New builds the scenario of one run. runName labels what the run creates.
	New(def drill.Definition, runName string) (Scenario, error)
}

// Grant is one API permission a drill needs: Rule in Namespace, or
// cluster-wide when Namespace is empty.
type Grant struct {
	Namespace string
	Rule      rbacv1.PolicyRule
}

// Permissioner is a Kind that says which permissions its drills need, so
// drillbot's RBAC is derived from the code that makes the calls (drillbot
// rbac, the Helm chart).
type Permissioner interface {
	Permissions(def drill.Definition) []Grant
}

// Allow is a Grant of verbs on resources of group in ns, optionally
// limited to names.
func Allow(ns, group string, resources, verbs []string, names ...string) Grant {
	return Grant{Namespace: ns, Rule: rbacv1.PolicyRule{APIGroups: []string{group}, Resources: resources, Verbs: verbs, ResourceNames: names}}
}

// Registry maps scenario kind names to kinds. It implements
// drill.ParamsValidator.
type Registry map[string]Kind

// Known reports whether kind is registered.
func (r Registry) Known(kind string) bool { _, ok := r[kind]; return ok }

// Kinds lists the registered kind names.
func (r Registry) Kinds() []string {
	out := make([]string, 0, len(r))
	for k := range r {
		out = append(out, k)
	}
	sortStrings(out)
	return out
}

// ReadOnly is a Kind that injects no fault (e.g. a dry-run probe): its
// drills may be scheduled more often than fault-injecting ones.
type ReadOnly interface {
	ReadOnly() bool
}

// InjectsFaults reports whether the named kind breaks something. Unknown
// kinds, and kinds that do not say, do.
func (r Registry) InjectsFaults(kind string) bool {
	ro, ok := r[kind].(ReadOnly)
	return !ok || !ro.ReadOnly()
}

// Targetless is a Kind whose drills name no target namespace: read-only
// checks over the namespaces their params select.
type Targetless interface {
	Targetless() bool
}

// Targetless reports whether the named kind's drills name no target.
func (r Registry) Targetless(kind string) bool {
	t, ok := r[kind].(Targetless)
	return ok && t.Targetless()
}

// DataChecker is a Kind that restores data and runs the drill's data
// checks (spec.verify) against it.
type DataChecker interface {
	ChecksData() bool
}

// ChecksData reports whether the named kind runs spec.verify's data checks.
func (r Registry) ChecksData(kind string) bool {
	d, ok := r[kind].(DataChecker)
	return ok && d.ChecksData()
}

// ValidateParams validates params with the named kind.
func (r Registry) ValidateParams(kind string, spec v1alpha1.DrillSpec, path *field.Path) field.ErrorList {
	k, ok := r[kind]
	if !ok {
		return field.ErrorList{field.NotSupported(path, kind, r.Kinds())}
	}
	return k.ValidateParams(spec, path)
}

// RefusedError is returned by Preflight when a target is not allowed. The
// engine reports it as a refusal: nothing was written to the target.
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return "refused: " + e.Reason }

// Refuse returns a RefusedError.
func Refuse(format string, args ...any) error {
	return &RefusedError{Reason: fmt.Sprintf(format, args...)}
}

// IsRefused reports whether err is a refusal.
func IsRefused(err error) bool {
	var r *RefusedError
	return errors.As(err, &r)
}

// UnknownError marks an error that says nothing about the system under
// test: a read that could not be answered. EVIDENCE.md rule 5: errors are
// not evidence, so the run is INCONCLUSIVE, not FAIL.
type UnknownError struct{ Err error }

func (e *UnknownError) Error() string { return e.Err.Error() }
func (e *UnknownError) Unwrap() error { return e.Err }

// Unknown marks err as saying nothing about the system under test.
func Unknown(err error) error {
	if err == nil {
		return nil
	}
	return &UnknownError{Err: err}
}

// IsUnknown reports whether err says nothing about the system under test:
// marked Unknown by the scenario, or the API server's own answer that it
// could not answer (a 5xx, a server-side timeout, too many requests). A
// refusal, a denial (Forbidden, NotFound) and a phase deadline are answers,
// not unknowns.
func IsUnknown(err error) bool {
	var u *UnknownError
	if errors.As(err, &u) {
		return true
	}
	return apierrors.IsServiceUnavailable(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) ||
		apierrors.IsTooManyRequests(err) || apierrors.IsInternalError(err) || apierrors.IsUnexpectedServerError(err)
}

// Test types, as the archive records them for auditors.
const (
	TestLiveRestore       = "live restore"
	TestSegregatedRestore = "segregated restore (another cluster)"
	TestControlOutage     = "control outage"
	TestPostureCheck      = "posture check"
)

// Evidencer is a Kind that says what its drills test, for the archive:
// the test type and the systems outside the cluster a run exercises.
type Evidencer interface {
	Evidence(spec v1alpha1.DrillSpec) (testType string, dependencies []string)
}

// Evidence is the named kind's test type and dependencies. Kinds that do
// not say are posture checks when read-only, control outages otherwise.
func (r Registry) Evidence(kind string, spec v1alpha1.DrillSpec) (testType string, dependencies []string) {
	if e, ok := r[kind].(Evidencer); ok {
		return e.Evidence(spec)
	}
	if !r.InjectsFaults(kind) {
		return TestPostureCheck, nil
	}
	return TestControlOutage, nil
}
