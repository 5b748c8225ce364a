// Package v1alpha1 holds drillbot's API: the Drill definition users write and
// the DrillRun object in which every execution is recorded in the cluster.
package v1alpha1

import (
	"encoding/json"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Group and Version of drillbot's API.
const (
	Group   = "drillbot.io"
	Version = "v1alpha1"
)

// APIVersion is the apiVersion string of Drill and DrillRun documents.
var APIVersion = Group + "/" + Version

// DrillRunResource is the GroupVersionResource of DrillRun objects.
var DrillRunResource = schema.GroupVersionResource{Group: Group, Version: Version, Resource: "drillruns"}

// Labels and annotations drillbot reads and writes.
const (
	// LabelAllowDisaster opts a target in. The drill names the target and the
	// target must carry this label set to "true": a target is allowed twice.
	LabelAllowDisaster = "drillbot.io/allow-disaster"
	// LabelDrill names the drill on a DrillRun and on everything a run creates.
	LabelDrill = "drillbot.io/drill"
	// LabelRun names the DrillRun on everything the run creates, so an orphan
	// sweep can find it.
	LabelRun = "drillbot.io/run"
	// LabelCluster names the cluster of a run read back from the archive
	// (never set on a DrillRun in a cluster).
	LabelCluster = "drillbot.io/cluster"
	// LabelTarget is a hash of the run's target, used to keep one run per target.
	LabelTarget = "drillbot.io/target"
	// LabelScenario names the scenario kind on a DrillRun.
	LabelScenario = "drillbot.io/scenario"
	// LabelRBAC marks drillbot's own Roles and bindings, which a
	// namespace inventory leaves out: they are drillbot's, not the
	// application's.
	LabelRBAC = "drillbot.io/rbac"
)

// Drill is one drill definition, as written in the drills/ catalog.
type Drill struct {
	APIVersion string    `json:"apiVersion"`
	Kind       string    `json:"kind"`
	Metadata   DrillMeta `json:"metadata"`
	Spec       DrillSpec `json:"spec"`
}

// DrillMeta is the part of object metadata a Drill uses.
type DrillMeta struct {
	Name        string            `json:"name"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// DrillSpec says what to break, when, and what recovery must achieve.
type DrillSpec struct {
	// Scenario is the scenario kind, e.g. "namespace-restore".
	Scenario string `json:"scenario"`
	// Schedule is a cron expression (5 fields, or a descriptor such as
	// @monthly), optionally prefixed with CRON_TZ=<IANA zone>. Empty means the
	// drill only runs on demand.
	Schedule string `json:"schedule,omitempty"`
	// Suspend keeps a scheduled drill from running.
	Suspend bool `json:"suspend,omitempty"`
	// MinInterval is the shortest gap between two scheduled runs this drill
	// accepts. Scenario kinds that inject faults default to 1h; setting it
	// lower is the explicit override (never below 1s, for test clusters).
	MinInterval Duration `json:"minInterval,omitempty"`
	// SuccessfulRunsHistoryLimit and FailedRunsHistoryLimit bound how many
	// Completed DrillRuns of this drill are kept (PASS, and FAIL or
	// INCONCLUSIVE), as a CronJob bounds its Jobs. A run that may still hold
	// a fault is never deleted.
	SuccessfulRunsHistoryLimit *int32 `json:"successfulRunsHistoryLimit,omitempty"`
	FailedRunsHistoryLimit     *int32 `json:"failedRunsHistoryLimit,omitempty"`
	// Objectives are the RTO and RPO targets.
	Objectives Objectives `json:"objectives"`
	// Timeouts bound each phase of the run.
	Timeouts Timeouts `json:"timeouts,omitempty"`
	// Target names what the drill breaks.
	Target Target `json:"target"`
	// Params are the scenario kind's own parameters, decoded strictly by it.
	Params json.RawMessage `json:"params,omitempty"`
	// Alerts are what monitoring must show during the drill (expected
	// alerts, timed as detection) and what stops it (read from the
	// Alertmanager the daemon is pointed at).
	Alerts DrillAlerts `json:"alerts,omitempty"`
	// Verify checks the recovered data itself, after recovery, for the
	// scenario kinds that restore data (namespace-restore); other kinds
	// refuse it.
	Verify *DataChecks `json:"verify,omitempty"`
}

// DataChecks are checks of the restored data, run after the workloads are
// Ready: one that fails FAILs the run, one that cannot run makes it
// INCONCLUSIVE, never PASS. A check that reports the newest restored write
// measures the RPO from the data (the RPO marker is the fallback).
type DataChecks struct {
	// Job runs a check of the application's own (psql, redis-cli, a
	// checksum) as a Job in the restored namespace.
	Job *JobCheck `json:"job,omitempty"`
	// HTTP asks the application's own endpoint, through the API server's
	// service proxy, before the disaster and after the restore.
	HTTP *HTTPCheck `json:"http,omitempty"`
}

// HTTPCheck asks the application what its data holds, through the API
// server's service proxy (drillbot needs get on services/proxy for this
// Service only), once before the disaster and again after the restore.
// The endpoint answers GET <path>?before=<RFC 3339 time> with HTTP 200 and
// a JSON object over the durable writes at or before that time:
//
//	{"newest": "<RFC 3339 time of the newest write>", "count": 1234, "checksum": "<any string>"}
//
// count and checksum are optional; newest is null or absent when there
// is no write. Before the disaster drillbot asks as of the backup's start
// (every write before it is in the backup); after the restore it asks the
// same again, and every field of the first answer must be the same (FAIL
// naming what differs), then as of the disaster, whose newest gives the
// RPO. An endpoint that does not answer in the recover phase, or answers
// otherwise, makes the run INCONCLUSIVE, never PASS. The Service must
// select pods of the restored namespace (not ExternalName, not endpoints
// made by hand): the answer must come from what was restored.
type HTTPCheck struct {
	// Service is the Service in the target namespace.
	Service string `json:"service"`
	// Port is the Service's port, by name or number.
	Port string `json:"port"`
	// Path is the endpoint's path, starting with /.
	Path string `json:"path"`
	// Scheme is http (default) or https.
	Scheme string `json:"scheme,omitempty"`
}

// JobCheck is a data check run as a Job in the restored namespace, under
// its Pod Security level, once (no retry), as the last part of recovery
// (its time is the RTO's last share, data-verified). Exit 0:
// the data is good; a non-zero exit: the data is not (FAIL, naming the exit
// code and the log's last lines); a pod that never ran to an exit (not
// admitted, image not found, deadline): INCONCLUSIVE. A log line
// "drillbot-newest: <RFC 3339>" gives the newest restored write, from which
// the RPO is measured. The pod gets DRILLBOT_DISASTER_TIME (RFC 3339, when
// drillbot deleted what it restored: report the newest write before it),
// DRILLBOT_BACKUP and DRILLBOT_RUN in its environment. The Job is deleted
// after the check (and removes itself after 10 minutes if drillbot cannot).
type JobCheck struct {
	// Template is the Job's pod template: the user's image, command and
	// volumes (the restored PVCs, by claim name). restartPolicy must be
	// Never or unset.
	Template corev1.PodTemplateSpec `json:"template"`
}

// DrillAlerts are a drill's checks against the cluster's alerts.
type DrillAlerts struct {
	// Expect lists alerts that must fire while the fault is active: a run
	// in which one did not fire in time FAILs, however fast it recovered.
	Expect []ExpectedAlert `json:"expect,omitempty"`
	// StopWhen adds, for this drill, matcher sets (Alertmanager syntax,
	// e.g. {severity="critical"}) to the daemon's: while an alert matching
	// one is active the drill does not start, and a running drill stops and
	// reverts.
	StopWhen []string `json:"stopWhen,omitempty"`
}

// ExpectedAlert is an alert a drill's fault must raise.
type ExpectedAlert struct {
	// Name is the alert's alertname.
	Name string `json:"name"`
	// Matchers narrow the alert by its other labels (Alertmanager syntax,
	// e.g. {namespace="kyverno"}).
	Matchers string `json:"matchers,omitempty"`
	// Within is the longest acceptable time from the disaster to the alert
	// firing (its time to detect).
	Within Duration `json:"within"`
	// ResolveWithin, when set, is the longest acceptable time from recovery
	// to the alert no longer active.
	ResolveWithin Duration `json:"resolveWithin,omitempty"`
}

// Objectives are the recovery targets a drill is measured against.
type Objectives struct {
	// RTO is the longest acceptable time from disaster to recovery.
	RTO Duration `json:"rto"`
	// RPO is the longest acceptable data-loss window. Empty means not measured.
	RPO Duration `json:"rpo,omitempty"`
}

// Timeouts bound each phase. Empty fields take the engine's defaults.
type Timeouts struct {
	Preflight Duration `json:"preflight,omitempty"`
	Inject    Duration `json:"inject,omitempty"`
	Recover   Duration `json:"recover,omitempty"`
	Verify    Duration `json:"verify,omitempty"`
	Revert    Duration `json:"revert,omitempty"`
}

// Target names what a drill acts on.
type Target struct {
	Namespace string `json:"namespace"`
	// Selector narrows the target to labelled objects inside the namespace,
	// for scenarios that act on some pods or objects only.
	Selector map[string]string `json:"selector,omitempty"`
	// Name narrows the target to one named object, for scenarios that need it.
	Name string `json:"name,omitempty"`
}

// Duration is a Go duration string ("90s", "30m", "1h"). It is kept as
// written so validation can name the field of a bad value.
type Duration string

// Verdict is a run's outcome.
type Verdict string

// Verdicts.
const (
	VerdictPass         Verdict = "PASS"
	VerdictFail         Verdict = "FAIL"
	VerdictInconclusive Verdict = "INCONCLUSIVE"
)

// Phase is where a run is in its state machine.
type Phase string

// Phases, in order. Completed is the only terminal phase.
const (
	PhasePending    Phase = "Pending"
	PhasePreflight  Phase = "Preflight"
	PhaseInjecting  Phase = "Injecting"
	PhaseRecovering Phase = "Recovering"
	PhaseVerifying  Phase = "Verifying"
	PhaseReverting  Phase = "Reverting"
	// PhaseRevertFailed: the run has its verdict, but an undo failed and its
	// fault may still be active. Not terminal: drillbot retries the revert
	// (the sweep, with backoff; drillbot halt at once), the target stays
	// locked, and the run reaches Completed only once every fault is reverted.
	PhaseRevertFailed Phase = "RevertFailed"
	PhaseCompleted    Phase = "Completed"
)

// DrillRun records one execution of a drill. Its status is the run's report
// and its undo journal.
type DrillRun struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              DrillRunSpec   `json:"spec"`
	Status            DrillRunStatus `json:"status,omitempty"`
}

// DrillRunSpec is a snapshot of the drill as it was when the run started, so a
// restarted daemon can revert the run even if the catalog changed meanwhile.
type DrillRunSpec struct {
	Drill    string    `json:"drill"`
	Scenario string    `json:"scenario"`
	Trigger  string    `json:"trigger,omitempty"`
	Source   string    `json:"source,omitempty"`
	Snapshot DrillSpec `json:"snapshot"`
	// DefinitionDigest is "sha256:" and the hex SHA-256 of Snapshot as
	// JSON: the version of the drill (the plan) this run tested.
	DefinitionDigest string `json:"definitionDigest,omitempty"`
	// StartedBy is who started the run: the daemon's schedule, or the
	// Kubernetes user of the credentials drillbot run used, as the API
	// server named them (a SelfSubjectReview), never as a flag said.
	StartedBy *Initiator `json:"startedBy,omitempty"`
}

// Initiators.
const (
	InitiatorSchedule = "schedule"
	InitiatorUser     = "user"
)

// Initiator is who started a run.
type Initiator struct {
	// Kind is schedule (the daemon's scheduler) or user (drillbot run).
	Kind string `json:"kind"`
	// User and Groups are the API server's answer to a SelfSubjectReview
	// made with the credentials that started the run (kind user).
	User   string   `json:"user,omitempty"`
	UID    string   `json:"uid,omitempty"`
	Groups []string `json:"groups,omitempty"`
	// Holder is the drillbot process that ran it (host/pid).
	Holder string `json:"holder,omitempty"`
}

// String names the initiator for people: "schedule", or "user alice".
func (i *Initiator) String() string {
	if i == nil {
		return "unknown (recorded before drillbot kept it)"
	}
	if i.Kind == InitiatorUser {
		return "user " + i.User
	}
	return i.Kind
}

// ArchiveStatus is where the run's evidence record is in the archive, or
// why it is not there yet.
type ArchiveStatus struct {
	// Object is the record's key in the archive; Digest the SHA-256 of
	// the record as stored ("sha256:..."); Seq its place in its drill's
	// chain.
	Object     string            `json:"object,omitempty"`
	Digest     string            `json:"digest,omitempty"`
	Seq        int64             `json:"seq,omitempty"`
	ArchivedAt *metav1.MicroTime `json:"archivedAt,omitempty"`
	// Attempts counts the writes tried; LastError is the newest failure
	// (cleared once archived).
	Attempts      int32             `json:"attempts,omitempty"`
	LastAttemptAt *metav1.MicroTime `json:"lastAttemptAt,omitempty"`
	LastError     string            `json:"lastError,omitempty"`
	// Phase is the run's phase when its record was written: a run
	// archived RevertFailed is archived again once its revert succeeds.
	Phase Phase `json:"phase,omitempty"`
}

// Archived says whether the run's record is in the archive.
func (s *DrillRunStatus) Archived() bool { return s.Archive != nil && s.Archive.Digest != "" }

// DrillRunStatus is what happened.
type DrillRunStatus struct {
	Phase   Phase   `json:"phase,omitempty"`
	Verdict Verdict `json:"verdict,omitempty"`
	Reason  string  `json:"reason,omitempty"`
	// Holder is the identity of the drillbot process running this run.
	Holder string `json:"holder,omitempty"`
	// HeartbeatAt is renewed by the holder while the run is in progress: a
	// run whose heartbeat is stale was left by a process that died, and
	// another drillbot reverts it.
	HeartbeatAt *metav1.MicroTime `json:"heartbeatAt,omitempty"`
	// HeartbeatSeconds is the holder's heartbeat interval: another drillbot
	// judges the heartbeat stale after three of these (or of its own, if
	// longer).
	HeartbeatSeconds int64 `json:"heartbeatSeconds,omitempty"`

	StartedAt   *metav1.MicroTime `json:"startedAt,omitempty"`
	DisasterAt  *metav1.MicroTime `json:"disasterAt,omitempty"`
	RecoveredAt *metav1.MicroTime `json:"recoveredAt,omitempty"`
	FinishedAt  *metav1.MicroTime `json:"finishedAt,omitempty"`

	// RTO and RPO are the measured values, as Go duration strings.
	RTO string `json:"rto,omitempty"`
	RPO string `json:"rpo,omitempty"`
	// RTOTarget and RPOTarget are copied from the drill for display.
	RTOTarget string `json:"rtoTarget,omitempty"`
	RPOTarget string `json:"rpoTarget,omitempty"`
	// RPOSource says where the RPO came from (restored marker, backup time).
	RPOSource string `json:"rpoSource,omitempty"`

	// Steps are the phases with their start and end.
	Steps []Step `json:"steps,omitempty"`
	// Milestones are the points a scenario reported during recovery; the
	// RTO breakdown is the time between consecutive milestones.
	Milestones []Milestone `json:"milestones,omitempty"`
	// Breakdown splits the RTO into the spans between milestones.
	Breakdown []Span `json:"breakdown,omitempty"`
	// Findings are observations worth reading even on PASS.
	Findings []string `json:"findings,omitempty"`
	// Journal is the undo journal: an entry is written before its fault is
	// injected and marked reverted once undone.
	Journal []JournalEntry `json:"journal,omitempty"`
	// RevertAttempts counts the reverts tried after the run's own (by the
	// sweep or drillbot halt) while it was RevertFailed.
	RevertAttempts int32 `json:"revertAttempts,omitempty"`
	// Detections are the drill's expected alerts: when each fired, its time
	// to detect, and when it resolved.
	Detections []Detection `json:"detections,omitempty"`
	// Stop, when set, says why the run did not start or was stopped: a
	// freeze window, an alert matching a stop condition, or alerts that
	// could not be read.
	Stop *Stop `json:"stop,omitempty"`
	// Posture is what a check counted: how many of the things it checked
	// keep the promise (namespaces covered, images signed...).
	Posture *PostureMeasure `json:"posture,omitempty"`
	// Archive is the run's evidence record in the archive (drillbot serve
	// --archive), once written, or the writes that failed.
	Archive *ArchiveStatus `json:"archive,omitempty"`
}

// PostureMeasure is a check's count.
type PostureMeasure struct {
	Compliant int32 `json:"compliant"`
	Total     int32 `json:"total"`
	// Of names what was counted (namespaces, images, canary writes).
	Of string `json:"of"`
}

// Detection is what became of one expected alert.
type Detection struct {
	// Alert is the expected alert's name (and matchers, if any).
	Alert string `json:"alert"`
	// Within is the detection target, as written in the drill.
	Within string `json:"within"`
	// AbsentAt and SeenAt bracket when it became visible, on drillbot's
	// clock: the last poll that did not see it firing (when that poll
	// began) and the first that did (when that poll ended). The deadline
	// is judged on them.
	AbsentAt *metav1.MicroTime `json:"absentAt,omitempty"`
	SeenAt   *metav1.MicroTime `json:"seenAt,omitempty"`
	// FiredAt is when it started firing: Alertmanager's startsAt when it
	// falls between AbsentAt and SeenAt, otherwise SeenAt (the latest it
	// can have started).
	FiredAt *metav1.MicroTime `json:"firedAt,omitempty"`
	// Detection is the time from the disaster to FiredAt.
	Detection string `json:"detection,omitempty"`
	// ResolveWithin is the resolution target ("" when not checked).
	ResolveWithin string `json:"resolveWithin,omitempty"`
	// ResolvedAt is when drillbot saw it no longer active after recovery.
	ResolvedAt *metav1.MicroTime `json:"resolvedAt,omitempty"`
	// Problem says why it does not count: not firing in time, silenced,
	// still active after recovery.
	Problem string `json:"problem,omitempty"`
	// Unmeasured says why it could not be measured (the run is then
	// INCONCLUSIVE, not FAIL): active before the disaster, a deadline
	// between two polls, alerts unreadable, not narrowed to this cluster.
	Unmeasured string `json:"unmeasured,omitempty"`
	// Notes are what the record keeps but the verdict does not use: a
	// startsAt that disagrees with drillbot's clock, no cluster identity.
	Notes []string `json:"notes,omitempty"`
}

// String says the alert's time to detect against its target, or why it
// does not count.
func (d Detection) String() string {
	measured := d.Detection
	switch {
	case measured != "":
	case d.Unmeasured != "":
		measured = "not measured"
	default:
		measured = "not detected"
	}
	line := d.Alert + " " + measured + " / target " + d.Within
	if d.Problem != "" {
		line += " (" + d.Problem + ")"
	} else if d.Unmeasured != "" {
		line += " (" + d.Unmeasured + ")"
	} else if d.ResolvedAt != nil {
		line += ", resolved"
	}
	return line
}

// DetectionLines is each detection as its String.
func DetectionLines(ds []Detection) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.String())
	}
	return out
}

// StopKind says what stopped a run.
type StopKind string

// Stop kinds.
const (
	StopFreezeWindow     StopKind = "FreezeWindow"
	StopAlert            StopKind = "Alert"
	StopAlertsUnreadable StopKind = "AlertsUnreadable"
	// StopExpectedFiring: an expected alert was already active before the
	// fault, so its detection cannot be measured.
	StopExpectedFiring StopKind = "ExpectedAlertFiring"
	// StopTargetBusy: a scheduled run found another run on its target and
	// did not start (recorded so the schedule's slot has its evidence).
	StopTargetBusy StopKind = "TargetBusy"
)

// Stop is why a run did not start, or was stopped.
type Stop struct {
	Kind StopKind `json:"kind"`
	// Name is the freeze window or the alert (with its labels).
	Name string `json:"name,omitempty"`
	// Before is true when the run never started (nothing was touched).
	Before bool              `json:"before,omitempty"`
	At     *metav1.MicroTime `json:"at,omitempty"`
	Detail string            `json:"detail,omitempty"`
}

// OpenFaults counts the journal entries not reverted: faults that may be
// active.
func (s *DrillRunStatus) OpenFaults() int {
	n := 0
	for _, j := range s.Journal {
		if j.State != JournalReverted {
			n++
		}
	}
	return n
}

// Step is one phase of a run.
type Step struct {
	Phase      Phase             `json:"phase"`
	StartedAt  metav1.MicroTime  `json:"startedAt"`
	FinishedAt *metav1.MicroTime `json:"finishedAt,omitempty"`
	Error      string            `json:"error,omitempty"`
}

// Milestone is a named moment during recovery, stamped by the engine.
type Milestone struct {
	Name string           `json:"name"`
	At   metav1.MicroTime `json:"at"`
}

// Span is a part of the RTO.
type Span struct {
	Name     string `json:"name"`
	Duration string `json:"duration"`
}

// JournalState is the state of one undo entry.
type JournalState string

// Journal entry states. An entry is Recorded before its fault is injected.
const (
	JournalRecorded JournalState = "Recorded"
	JournalReverted JournalState = "Reverted"
	JournalFailed   JournalState = "RevertFailed"
)

// JournalEntry is what is needed to undo one fault.
type JournalEntry struct {
	// ID is unique within the run.
	ID string `json:"id"`
	// Action names the fault, e.g. "delete-namespace".
	Action string `json:"action"`
	// Description is for people.
	Description string `json:"description,omitempty"`
	// Undo is the scenario's own undo data (original bytes, backup name, …).
	Undo       json.RawMessage   `json:"undo,omitempty"`
	State      JournalState      `json:"state"`
	RecordedAt metav1.MicroTime  `json:"recordedAt"`
	ExpiresAt  *metav1.MicroTime `json:"expiresAt,omitempty"`
	RevertedAt *metav1.MicroTime `json:"revertedAt,omitempty"`
	Error      string            `json:"error,omitempty"`
}

// DeepCopy returns a copy sharing nothing with in.
func (in *DrillRun) DeepCopy() *DrillRun {
	if in == nil {
		return nil
	}
	data, err := json.Marshal(in)
	if err != nil {
		panic("drillrun deepcopy: " + err.Error()) // every field is JSON-encodable
	}
	out := new(DrillRun)
	if err := json.Unmarshal(data, out); err != nil {
		panic("drillrun deepcopy: " + err.Error())
	}
	return out
}

// DrillPolicy is the daemon's policy file (serve --policy): when no drill
// starts, whatever its schedule.
type DrillPolicy struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Metadata   DrillMeta       `json:"metadata,omitempty"`
	Spec       DrillPolicySpec `json:"spec"`
}

// DrillPolicySpec holds the stop conditions and freeze windows.
type DrillPolicySpec struct {
	// StopWhen are matcher sets (Alertmanager syntax): while an active
	// alert matches one, no drill starts and running drills stop and
	// revert.
	StopWhen []string `json:"stopWhen,omitempty"`
	// FreezeWindows are times in which no scheduled drill starts.
	FreezeWindows []FreezeWindow `json:"freezeWindows,omitempty"`
}

// FreezeWindow is one freeze: from Start to End (RFC 3339), or recurring,
// from each time Schedule (cron) fires for Duration of wall-clock time in
// TimeZone (an IANA name; or a CRON_TZ= prefix on Schedule, not both).
type FreezeWindow struct {
	Name     string   `json:"name"`
	Start    string   `json:"start,omitempty"`
	End      string   `json:"end,omitempty"`
	Schedule string   `json:"schedule,omitempty"`
	TimeZone string   `json:"timeZone,omitempty"`
	Duration Duration `json:"duration,omitempty"`
}
