// Package evidence keeps drillbot's evidence outside the cluster it
// judges: every finished run (held runs too) is written once to an object
// store as a record signed with drillbot's key (a DSSE envelope, made with
// sigstore's packages), chained per cluster and drill (each record holds
// the digest of the one before it and its place in the chain), and never
// overwritten (conditional create, which a probe checks the store honours
// and a read-back checks each write against; S3 Object Lock retention
// where the bucket has it). Annotations (a finding's owner and due date)
// are records of their own in the same chain, signed by whoever annotates:
// an original is never edited.
//
// What the archiver takes as written: a record it created and read back
// byte for byte, or, for a run whose status update was lost, a record of
// that run archived since it finished that its own key verifies. It
// appends after the newest place its cluster's runs say they wrote, so a
// deleted place is never refilled, and refuses a chain whose newest
// trusted record names another cluster's UID.
//
// What `drillbot evidence verify` rests on: a record counts when its
// signature verifies against a key the auditor trusts for its kind (an
// annotator's key signs annotations only), its fields are the ones the
// DrillRun it holds decides, its digest is the one the next record chains
// to, its place in the chain is the one its key says, and no earlier
// record of the chain holds the same run. A record that fails any of these
// is named, as is a place with no record (deleted), a place the cluster's
// runs say they wrote that holds nothing or another record, a chain of
// two clusters, and a scheduled slot in the period with no scheduled run
// (a gap: slots computed in the daemon's zone, under the schedule its
// scheduled runs show, one slot per run). Nothing verified is a problem,
// never "no problem".
package evidence

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
)

// PayloadType is the DSSE payload type of drillbot's records.
const PayloadType = "application/vnd.drillbot.evidence.v1+json"

// Record kinds.
const (
	KindRun        = "RunRecord"
	KindAnnotation = "Annotation"
)

// Record is one piece of evidence: a run, or an annotation of one.
type Record struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// Cluster is the cluster the run was in.
	Cluster Cluster `json:"cluster"`
	// Drill names the chain the record is in.
	Drill string `json:"drill"`
	// Seq is the record's place in its drill's chain, from 1; Prev the
	// digest of the record before it ("" for the first).
	Seq        int64       `json:"seq"`
	Prev       string      `json:"prev,omitempty"`
	ArchivedAt time.Time   `json:"archivedAt"`
	Run        *Run        `json:"run,omitempty"`
	Annotation *Annotation `json:"annotation,omitempty"`
	Index      *Index      `json:"index,omitempty"`

	// digest is the record's as stored, once verified.
	digest string
}

// Cluster identifies a cluster: the name it was given (serve
// --cluster-name) and the UID of its kube-system namespace.
type Cluster struct {
	Name string `json:"name"`
	UID  string `json:"uid,omitempty"`
}

// Run is a run's evidence: the fields an auditor asks for, and the whole
// DrillRun they come from.
type Run struct {
	// ID is the run's unique id (its DrillRun's UID); Name its DrillRun's.
	ID   string `json:"id"`
	Name string `json:"name"`
	// StartedBy is who started it (the schedule, or a user as the API
	// server named them).
	StartedBy v1alpha1.Initiator `json:"startedBy"`
	// TestType is live restore, segregated restore (into another
	// cluster), control outage or posture check (engine.Test*).
	TestType string `json:"testType"`
	// Scope is what the run exercised.
	Scope Scope `json:"scope"`
	// Definition is the drill as it ran; DefinitionDigest its digest (the
	// version of the plan tested).
	Definition       v1alpha1.DrillSpec `json:"definition"`
	DefinitionDigest string             `json:"definitionDigest"`
	Source           string             `json:"source,omitempty"`
	// Objectives and what was achieved against them.
	Result Result `json:"result"`
	// Steps are the timestamped step log: phases, then milestones.
	Steps []Step `json:"steps"`
	// DataChecks are the checks of the recovered data that ran, and what
	// they found.
	DataChecks []string `json:"dataChecks,omitempty"`
	Findings   []string `json:"findings,omitempty"`
	// NextScheduledRun is when the drill's schedule fires next after this
	// run started (empty for an on-demand drill).
	NextScheduledRun *time.Time `json:"nextScheduledRun,omitempty"`
	// ScheduleZone is the time zone the daemon's scheduler computed slots
	// in for a schedule without CRON_TZ (its local zone; empty: UTC).
	// verify computes slots in it, whatever the verifier's zone.
	ScheduleZone string `json:"scheduleZone,omitempty"`
	// DrillRun is the run as the cluster held it when it was archived.
	DrillRun v1alpha1.DrillRun `json:"drillRun"`
	// Page is the run's HTML page (the report of this run alone).
	Page string `json:"page,omitempty"`
}

// Scope is what a run exercised.
type Scope struct {
	Cluster    string   `json:"cluster"`
	Namespaces []string `json:"namespaces,omitempty"`
	// Dependencies are the external systems the drill exercised (Azure
	// Key Vault, Rekor, Velero's store...).
	Dependencies []string `json:"dependencies,omitempty"`
}

// Result is the verdict and the objectives met or not.
type Result struct {
	Verdict   v1alpha1.Verdict `json:"verdict"`
	Reason    string           `json:"reason,omitempty"`
	RTO       string           `json:"rto,omitempty"`
	RTOTarget string           `json:"rtoTarget,omitempty"`
	RTOMet    *bool            `json:"rtoMet,omitempty"`
	RPO       string           `json:"rpo,omitempty"`
	RPOTarget string           `json:"rpoTarget,omitempty"`
	RPOMet    *bool            `json:"rpoMet,omitempty"`
	// Held says why the run did not start or was stopped (freeze, stop
	// condition, busy target).
	Held string `json:"held,omitempty"`
}

// Step is one line of the step log.
type Step struct {
	At   time.Time `json:"at"`
	What string    `json:"what"`
}

// Annotation is what a person adds to a run's finding later: who owns
// the remediation and by when. It never changes the run's record.
type Annotation struct {
	// Run is the annotated run's ID, and RunRecord the digest of its record.
	Run       string `json:"run"`
	RunRecord string `json:"runRecord"`
	// Finding is the finding's index in the run's findings (0-based) and
	// its text, as the record has it.
	Finding     int    `json:"finding"`
	FindingText string `json:"findingText"`
	Owner       string `json:"owner"`
	Due         string `json:"due,omitempty"`
	Note        string `json:"note,omitempty"`
	// By is who annotated, as the API server named them (empty when no
	// cluster was asked); the signature's key says who signed.
	By string `json:"by,omitempty"`
}

// Digest is "sha256:" and the hex SHA-256 of data.
func Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Layout names the objects of the archive under its prefix: one chain per
// cluster and drill, one object per place in it,
// <prefix>/<cluster>/<drill>/<seq, 10 digits>.json.
type Layout struct{ Prefix string }

// ChainPrefix is the folder of a drill's chain.
func (l Layout) ChainPrefix(cluster, drill string) string {
	return path.Join(l.Prefix, cluster, drill) + "/"
}

// Key is the object of place seq in a chain.
func (l Layout) Key(cluster, drill string, seq int64) string {
	return fmt.Sprintf("%s%010d.json", l.ChainPrefix(cluster, drill), seq)
}

// ProbeKey is the object the archiver creates twice to learn whether the
// store refuses overwrites (one per cluster, kept; not a record).
func (l Layout) ProbeKey(cluster string) string {
	return path.Join(l.Prefix, probeFolder, cluster+".json")
}

const probeFolder = "_probe"

// Parse splits an object key of the layout into its cluster, drill and
// place; ok is false for keys that are not records.
func (l Layout) Parse(key string) (cluster, drill string, seq int64, ok bool) {
	rest := strings.TrimPrefix(key, strings.TrimSuffix(l.Prefix, "/")+"/")
	if l.Prefix == "" {
		rest = key
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || !strings.HasSuffix(parts[2], ".json") {
		return "", "", 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSuffix(parts[2], ".json"), 10, 64)
	if err != nil || n < 1 || len(strings.TrimSuffix(parts[2], ".json")) != 10 {
		return "", "", 0, false
	}
	return parts[0], parts[1], n, true
}
