// Package drill loads and validates drill definitions. Decoding is strict:
// unknown or duplicate fields, bad durations, bad cron expressions or time
// zones and missing required fields are errors that name the file and field,
// and one bad file fails the whole load, so nothing runs partially.
package drill

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/robfig/cron/v3"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/drillbot-io/drillbot/internal/alerts"
	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
)

// Default phase timeouts, used where a drill sets none.
const (
	DefaultPreflightTimeout = 2 * time.Minute
	DefaultInjectTimeout    = 10 * time.Minute
	DefaultVerifyTimeout    = 5 * time.Minute
	DefaultRevertTimeout    = 10 * time.Minute
	// The recover phase defaults to twice the RTO target, so a slow recovery
	// is still measured (and fails on its target) instead of being cut short.
	recoverTimeoutFactor = 2
)

// Schedule limits. A scheduled drill must have a next run, and two of its
// runs are never closer than its minimum interval: MinFaultInterval by
// default for kinds that inject faults, MinInterval for the others.
// spec.minInterval sets it explicitly (never below MinOverride, robfig's
// own resolution): the documented override for test clusters.
const (
	MinInterval      = time.Minute
	MinFaultInterval = time.Hour
	MinOverride      = time.Second
	// intervalSamples bounds how many upcoming runs are checked for the
	// shortest gap (a cron schedule repeats within a year of them or
	// reaches robfig's 5-year horizon first).
	intervalSamples = 600
)

// Default history limits: a year of monthly runs of each kind.
const (
	DefaultSuccessfulRunsHistoryLimit = 12
	DefaultFailedRunsHistoryLimit     = 12
)

// SystemNamespaces are never drill targets, whatever their labels.
var SystemNamespaces = []string{"kube-system", "kube-public", "kube-node-lease", "default"}

// maxNameLen keeps a run name (drill name, a timestamp and a suffix) within
// the 63 characters of a label value.
const maxNameLen = 40

// Definition is a validated drill.
type Definition struct {
	Name string
	// Source is the file the drill came from.
	Source   string
	Spec     v1alpha1.DrillSpec
	Schedule cron.Schedule
	RTO      time.Duration
	// RPO is zero when the drill does not measure it.
	RPO      time.Duration
	Timeouts Timeouts
	// History is how many Completed runs are kept.
	History History
	// Alerts are the drill's expected alerts and its own stop conditions.
	Alerts Alerts
}

// Alerts are a drill's resolved alert checks.
type Alerts struct {
	Expect   []ExpectedAlert
	StopWhen []alerts.Matchers
}

// ExpectedAlert is a resolved spec.alerts.expect entry.
type ExpectedAlert struct {
	Name string
	// Matchers is empty when the drill names the alert only.
	Matchers      *alerts.Matchers
	Within        time.Duration
	ResolveWithin time.Duration
}

// String names the alert with its matchers.
func (e ExpectedAlert) String() string {
	if e.Matchers == nil {
		return e.Name
	}
	return e.Name + e.Matchers.String()
}

// Matches reports whether an alert with these labels is this one.
func (e ExpectedAlert) Matches(l map[string]string) bool {
	return l["alertname"] == e.Name && (e.Matchers == nil || e.Matchers.Matches(l))
}

// History is a drill's resolved history limits.
type History struct{ Successful, Failed int }

// Timeouts are a drill's resolved phase timeouts.
type Timeouts struct {
	Preflight, Inject, Recover, Verify, Revert time.Duration
}

// ParamsValidator checks one scenario kind's params. It is implemented by the
// scenario registry, so the loader knows no scenario.
type ParamsValidator interface {
	ValidateParams(kind string, spec v1alpha1.DrillSpec, path *field.Path) field.ErrorList
	Known(kind string) bool
	Kinds() []string
	// InjectsFaults says whether the kind breaks something (false only for
	// read-only kinds such as dry-run probes).
	InjectsFaults(kind string) bool
	// Targetless says whether the kind's drills name no target namespace
	// (checks over the namespaces their params select).
	Targetless(kind string) bool
	// ChecksData says whether the kind runs spec.verify's data checks.
	ChecksData(kind string) bool
}

// Option changes how drills are checked.
type Option func(*options)

type options struct {
	protected []string
	now       time.Time
}

// Protect adds namespaces that are never targets (drillbot's own,
// Velero's) to SystemNamespaces: a drill naming one is invalid.
func Protect(namespaces ...string) Option {
	return func(o *options) { o.protected = append(o.protected, namespaces...) }
}

// At sets the time from which schedules are checked (default now).
func At(now time.Time) Option { return func(o *options) { o.now = now } }

func newOptions(opts []Option) options {
	o := options{now: time.Now(), protected: append([]string{}, SystemNamespaces...)}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// Error lists every problem found in one file.
type Error struct {
	File string
	Errs field.ErrorList
	// Doc is the 1-based document index in a multi-document file (0: whole file).
	Doc int
}

func (e *Error) Error() string {
	prefix := e.File
	if e.Doc > 0 {
		prefix = fmt.Sprintf("%s (document %d)", e.File, e.Doc)
	}
	msgs := make([]string, 0, len(e.Errs))
	for _, fe := range e.Errs {
		msgs = append(msgs, prefix+": "+fe.Error())
	}
	return strings.Join(msgs, "\n")
}

// cronParser accepts the standard five fields, descriptors such as @monthly
// and @every, and a CRON_TZ= or TZ= prefix.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule parses a drill schedule.
func ParseSchedule(s string) (cron.Schedule, error) {
	return cronParser.Parse(s)
}

// LoadPaths loads every *.yaml and *.yml file named or found under the given
// paths. All files are read and every error is returned, joined; on any error
// no definition is returned.
func LoadPaths(paths []string, v ParamsValidator, opts ...Option) ([]Definition, error) {
	var files []string
	for _, p := range paths {
		found, err := yamlFiles(p)
		if err != nil {
			return nil, err
		}
		files = append(files, found...)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no drill files (*.yaml, *.yml) in %s", strings.Join(paths, ", "))
	}
	var (
		defs   []Definition
		errs   []error
		byName = map[string]string{}
	)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("read drill file: %w", err))
			continue
		}
		got, err := Parse(f, data, v, opts...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, d := range got {
			if prev, dup := byName[d.Name]; dup {
				errs = append(errs, &Error{File: f, Errs: field.ErrorList{field.Duplicate(field.NewPath("metadata", "name"), d.Name+" (also in "+prev+")")}})
				continue
			}
			byName[d.Name] = f
			defs = append(defs, d)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return defs, nil
}

func yamlFiles(p string) ([]string, error) {
	info, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("drill path: %w", err)
	}
	if !info.IsDir() {
		return []string{p}, nil
	}
	var files []string
	err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		// Hidden entries are skipped: a ConfigMap volume holds each file
		// twice, as name -> ..data/name and in the ..<timestamp> directory
		// the kubelet swaps in atomically.
		if path != p && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk %s: %w", p, err)
	}
	sort.Strings(files)
	return files, nil
}

// Parse decodes and validates every document of one file.
func Parse(file string, data []byte, v ParamsValidator, opts ...Option) ([]Definition, error) {
	o := newOptions(opts)
	docs, err := splitDocuments(data)
	if err != nil {
		return nil, &Error{File: file, Errs: field.ErrorList{field.Invalid(field.NewPath(""), "", "not valid YAML: "+err.Error())}}
	}
	if len(docs) == 0 {
		return nil, &Error{File: file, Errs: field.ErrorList{field.Required(field.NewPath("kind"), "file holds no Drill")}}
	}
	var (
		defs []Definition
		errs []error
	)
	for i, doc := range docs {
		docIndex := 0
		if len(docs) > 1 {
			docIndex = i + 1
		}
		d, fieldErrs := parseOne(doc, v, o)
		if len(fieldErrs) > 0 {
			errs = append(errs, &Error{File: file, Doc: docIndex, Errs: fieldErrs})
			continue
		}
		d.Source = file
		defs = append(defs, d)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return defs, nil
}

func splitDocuments(data []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		docs = append(docs, doc)
	}
}

func stripComments(doc []byte) []byte {
	var out bytes.Buffer
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' && !bytes.Equal(t, []byte("---")) {
			out.Write(line)
			out.WriteByte('\n')
		}
	}
	return out.Bytes()
}

func parseOne(doc []byte, v ParamsValidator, o options) (Definition, field.ErrorList) {
	var d v1alpha1.Drill
	jsonDoc, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return Definition{}, field.ErrorList{field.Invalid(field.NewPath(""), "", "not valid YAML: "+err.Error())}
	}
	strictErrs, err := sigsjson.UnmarshalStrict(jsonDoc, &d, sigsjson.DisallowUnknownFields)
	if err != nil {
		return Definition{}, field.ErrorList{typeError(err)}
	}
	var errs field.ErrorList
	for _, se := range strictErrs {
		errs = append(errs, strictError(se))
	}
	errs = append(errs, validate(&d, v, o)...)
	if len(errs) > 0 {
		return Definition{}, errs
	}
	return resolve(d), nil
}

// typeError turns a JSON decoding error into a field error naming the field
// where the decoder says which ("... into Go struct field Drill.spec.x of type y").
func typeError(err error) *field.Error {
	msg := err.Error()
	const marker, typeMarker = "into Go struct field ", " of type "
	if i := strings.Index(msg, marker); i >= 0 {
		rest := msg[i+len(marker):]
		if j := strings.Index(rest, typeMarker); j >= 0 {
			path := rest[:j]
			if dot := strings.Index(path, "."); dot >= 0 {
				path = path[dot+1:] // drop the Go struct name
			}
			what := strings.TrimSuffix(strings.TrimPrefix(msg[:i], "json: cannot unmarshal "), " ")
			return field.TypeInvalid(field.NewPath(path), what, "expected "+rest[j+len(typeMarker):])
		}
	}
	return field.Invalid(field.NewPath(""), "", msg)
}

// strictError turns sigs.k8s.io/json's unknown or duplicate field error into
// a field error.
func strictError(err error) *field.Error {
	var fe sigsjson.FieldError
	if !errors.As(err, &fe) {
		return field.Invalid(field.NewPath(""), "", err.Error())
	}
	path := field.NewPath(fe.FieldPath())
	if strings.HasPrefix(err.Error(), "duplicate field") {
		return field.Duplicate(path, "")
	}
	return field.Forbidden(path, "unknown field")
}

func validate(d *v1alpha1.Drill, v ParamsValidator, o options) field.ErrorList {
	var errs field.ErrorList
	if d.APIVersion != v1alpha1.APIVersion {
		errs = append(errs, field.NotSupported(field.NewPath("apiVersion"), d.APIVersion, []string{v1alpha1.APIVersion}))
	}
	if d.Kind != "Drill" {
		errs = append(errs, field.NotSupported(field.NewPath("kind"), d.Kind, []string{"Drill"}))
	}
	name := field.NewPath("metadata", "name")
	if d.Metadata.Name == "" {
		errs = append(errs, field.Required(name, "every drill needs a name"))
	} else {
		// The name becomes a label value and a DrillRun name prefix.
		for _, msg := range validation.IsDNS1123Subdomain(d.Metadata.Name) {
			errs = append(errs, field.Invalid(name, d.Metadata.Name, msg))
		}
		if len(d.Metadata.Name) > maxNameLen {
			errs = append(errs, field.TooLong(name, d.Metadata.Name, maxNameLen))
		}
	}
	spec := field.NewPath("spec")
	s := d.Spec
	switch {
	case s.Scenario == "":
		errs = append(errs, field.Required(spec.Child("scenario"), "name a scenario kind"))
	case !v.Known(s.Scenario):
		errs = append(errs, field.NotSupported(spec.Child("scenario"), s.Scenario, v.Kinds()))
	default:
		errs = append(errs, v.ValidateParams(s.Scenario, s, spec.Child("params"))...)
		if s.Verify != nil && !v.ChecksData(s.Scenario) {
			errs = append(errs, field.Forbidden(spec.Child("verify"), "scenario "+s.Scenario+" restores no data to check: data checks run only in kinds that restore data in place (namespace-restore)"))
		}
	}
	errs = append(errs, validateDataChecks(s.Verify, spec.Child("verify"))...)
	minGap := MinInterval
	if s.Scenario != "" && v.Known(s.Scenario) && v.InjectsFaults(s.Scenario) {
		minGap = MinFaultInterval
	}
	if s.MinInterval != "" {
		if e := checkDuration(spec.Child("minInterval"), s.MinInterval); len(e) > 0 {
			errs = append(errs, e...)
		} else if mi := mustDuration(s.MinInterval, 0); mi < MinOverride {
			errs = append(errs, field.Invalid(spec.Child("minInterval"), s.MinInterval, fmt.Sprintf("must be at least %s", MinOverride)))
		} else {
			minGap = mi
		}
	}
	if s.Schedule != "" {
		if sched, err := ParseSchedule(s.Schedule); err != nil {
			errs = append(errs, field.Invalid(spec.Child("schedule"), s.Schedule, err.Error()))
		} else {
			errs = append(errs, checkSchedule(spec.Child("schedule"), s.Schedule, sched, o.now, minGap, s.MinInterval != "")...)
		}
	}
	for name, lim := range map[string]*int32{"successfulRunsHistoryLimit": s.SuccessfulRunsHistoryLimit, "failedRunsHistoryLimit": s.FailedRunsHistoryLimit} {
		if lim != nil && *lim < 1 {
			errs = append(errs, field.Invalid(spec.Child(name), *lim, "must be at least 1: the newest run is the drill's evidence"))
		}
	}
	obj := spec.Child("objectives")
	if s.Objectives.RTO == "" {
		errs = append(errs, field.Required(obj.Child("rto"), "every drill is measured against an RTO target"))
	} else {
		errs = append(errs, checkDuration(obj.Child("rto"), s.Objectives.RTO)...)
	}
	if s.Objectives.RPO != "" {
		errs = append(errs, checkDuration(obj.Child("rpo"), s.Objectives.RPO)...)
	}
	to := spec.Child("timeouts")
	for name, val := range map[string]v1alpha1.Duration{
		"preflight": s.Timeouts.Preflight, "inject": s.Timeouts.Inject, "recover": s.Timeouts.Recover,
		"verify": s.Timeouts.Verify, "revert": s.Timeouts.Revert,
	} {
		if val != "" {
			errs = append(errs, checkDuration(to.Child(name), val)...)
		}
	}
	errs = append(errs, validateAlerts(spec.Child("alerts"), s)...)
	targetless := s.Scenario != "" && v.Known(s.Scenario) && v.Targetless(s.Scenario)
	switch {
	case targetless && (s.Target.Namespace != "" || len(s.Target.Selector) > 0 || s.Target.Name != ""):
		errs = append(errs, field.Forbidden(spec.Child("target"), s.Scenario+" checks the namespaces its params select and names no target"))
	case targetless:
	case s.Target.Namespace == "":
		errs = append(errs, field.Required(spec.Child("target", "namespace"), "every drill names its target namespace"))
	default:
		for _, msg := range validation.IsDNS1123Label(s.Target.Namespace) {
			errs = append(errs, field.Invalid(spec.Child("target", "namespace"), s.Target.Namespace, msg))
		}
		for _, p := range o.protected {
			if s.Target.Namespace == p {
				errs = append(errs, field.Forbidden(spec.Child("target", "namespace"),
					fmt.Sprintf("namespace %s is protected (the system's, drillbot's or Velero's): it is never a drill target", p)))
				break
			}
		}
	}
	sortErrors(errs)
	return errs
}

// checkSchedule refuses a schedule that never fires (robfig/cron finds no
// match within five years, e.g. February 30th) or fires more often than
// minGap.
func checkSchedule(path *field.Path, expr string, sched cron.Schedule, now time.Time, minGap time.Duration, overridden bool) field.ErrorList {
	next := sched.Next(now)
	if next.IsZero() {
		return field.ErrorList{field.Invalid(path, expr, "never fires: no time matches it within five years")}
	}
	shortest := time.Duration(0)
	prev := next
	for range intervalSamples {
		n := sched.Next(prev)
		if n.IsZero() {
			break
		}
		if gap := n.Sub(prev); shortest == 0 || gap < shortest {
			shortest = gap
		}
		if shortest < minGap {
			break
		}
		prev = n
	}
	if shortest != 0 && shortest < minGap {
		how := "set spec.minInterval to allow it explicitly"
		if overridden {
			how = "spec.minInterval allows no less"
		}
		return field.ErrorList{field.Invalid(path, expr, fmt.Sprintf("fires every %s, more often than the minimum interval %s for this drill: %s", shortest, minGap, how))}
	}
	return nil
}

// maxResolveWithin bounds how long a run waits, after recovery, for an
// expected alert to resolve.
const maxResolveWithin = time.Hour

// validateAlerts checks spec.alerts: names, matchers in Alertmanager's
// syntax, and deadlines the fault can meet (a detection deadline past the
// recover timeout asks for an alert after the fault is gone).
func validateAlerts(path *field.Path, s v1alpha1.DrillSpec) field.ErrorList {
	var errs field.ErrorList
	recoverTO := mustDuration(s.Timeouts.Recover, recoverTimeoutFactor*mustDuration(s.Objectives.RTO, 0))
	if checkDuration(field.NewPath(""), s.Timeouts.Recover) != nil && s.Timeouts.Recover != "" {
		recoverTO = 0 // reported on its own field
	}
	seen := map[string]bool{}
	for i, e := range s.Alerts.Expect {
		p := path.Child("expect").Index(i)
		if e.Name == "" {
			errs = append(errs, field.Required(p.Child("name"), "the alertname the fault must raise"))
		} else if !model.LabelValue(e.Name).IsValid() || strings.ContainsAny(e.Name, "{}\"\n") {
			errs = append(errs, field.Invalid(p.Child("name"), e.Name, "not an alertname"))
		}
		key := e.Name + e.Matchers
		if seen[key] {
			errs = append(errs, field.Duplicate(p, key))
		}
		seen[key] = true
		if e.Matchers != "" {
			if _, err := alerts.ParseMatchers(e.Matchers); err != nil {
				errs = append(errs, field.Invalid(p.Child("matchers"), e.Matchers, "not Alertmanager matchers: "+err.Error()))
			}
		}
		if e.Within == "" {
			errs = append(errs, field.Required(p.Child("within"), "the longest acceptable time from the disaster to the alert firing"))
		} else if de := checkDuration(p.Child("within"), e.Within); len(de) > 0 {
			errs = append(errs, de...)
		} else if w := mustDuration(e.Within, 0); recoverTO > 0 && w > recoverTO {
			errs = append(errs, field.Invalid(p.Child("within"), e.Within, fmt.Sprintf("longer than the recover timeout %s: the fault is gone by then", recoverTO)))
		}
		if e.ResolveWithin != "" {
			if de := checkDuration(p.Child("resolveWithin"), e.ResolveWithin); len(de) > 0 {
				errs = append(errs, de...)
			} else if mustDuration(e.ResolveWithin, 0) > maxResolveWithin {
				errs = append(errs, field.Invalid(p.Child("resolveWithin"), e.ResolveWithin, fmt.Sprintf("at most %s: the run waits for it", maxResolveWithin)))
			}
		}
	}
	for i, m := range s.Alerts.StopWhen {
		if _, err := alerts.ParseMatchers(m); err != nil {
			errs = append(errs, field.Invalid(path.Child("stopWhen").Index(i), m, "not Alertmanager matchers: "+err.Error()))
		}
	}
	return errs
}

func sortErrors(errs field.ErrorList) {
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Field < errs[j].Field })
}

func checkDuration(path *field.Path, d v1alpha1.Duration) field.ErrorList {
	v, err := time.ParseDuration(string(d))
	if err != nil {
		return field.ErrorList{field.Invalid(path, string(d), "not a duration (use e.g. 90s, 30m, 1h)")}
	}
	if v <= 0 {
		return field.ErrorList{field.Invalid(path, string(d), "must be positive")}
	}
	return nil
}

// mustDuration parses a duration already validated, or returns def when empty.
func mustDuration(d v1alpha1.Duration, def time.Duration) time.Duration {
	if d == "" {
		return def
	}
	v, _ := time.ParseDuration(string(d))
	return v
}

func resolve(d v1alpha1.Drill) Definition {
	def := Definition{Name: d.Metadata.Name, Spec: d.Spec}
	def.FromSpec()
	return def
}

// FromSpec fills the parsed fields of a Definition from its Spec, which must
// be valid. A restarted daemon uses it to rebuild a run's drill from the
// snapshot in the DrillRun.
func (def *Definition) FromSpec() {
	s := def.Spec
	if s.Schedule != "" {
		def.Schedule, _ = ParseSchedule(s.Schedule)
	}
	def.RTO = mustDuration(s.Objectives.RTO, 0)
	def.RPO = mustDuration(s.Objectives.RPO, 0)
	def.History = History{Successful: DefaultSuccessfulRunsHistoryLimit, Failed: DefaultFailedRunsHistoryLimit}
	if s.SuccessfulRunsHistoryLimit != nil {
		def.History.Successful = int(*s.SuccessfulRunsHistoryLimit)
	}
	if s.FailedRunsHistoryLimit != nil {
		def.History.Failed = int(*s.FailedRunsHistoryLimit)
	}
	def.Alerts = Alerts{}
	for _, e := range s.Alerts.Expect {
		ea := ExpectedAlert{Name: e.Name, Within: mustDuration(e.Within, 0), ResolveWithin: mustDuration(e.ResolveWithin, 0)}
		if e.Matchers != "" {
			m, _ := alerts.ParseMatchers(e.Matchers)
			ea.Matchers = &m
		}
		def.Alerts.Expect = append(def.Alerts.Expect, ea)
	}
	for _, src := range s.Alerts.StopWhen {
		m, _ := alerts.ParseMatchers(src)
		def.Alerts.StopWhen = append(def.Alerts.StopWhen, m)
	}
	def.Timeouts = Timeouts{
		Preflight: mustDuration(s.Timeouts.Preflight, DefaultPreflightTimeout),
		Inject:    mustDuration(s.Timeouts.Inject, DefaultInjectTimeout),
		Recover:   mustDuration(s.Timeouts.Recover, recoverTimeoutFactor*def.RTO),
		Verify:    mustDuration(s.Timeouts.Verify, DefaultVerifyTimeout),
		Revert:    mustDuration(s.Timeouts.Revert, DefaultRevertTimeout),
	}
}

// DecodeParams strictly decodes a scenario's params into out, returning
// field errors under path. Scenario kinds call it from ValidateParams.
func DecodeParams(raw []byte, out any, path *field.Path) field.ErrorList {
	if len(raw) == 0 {
		raw = []byte("{}")
	}
	strictErrs, err := sigsjson.UnmarshalStrict(raw, out, sigsjson.DisallowUnknownFields)
	if err != nil {
		fe := typeError(err)
		fe.Field = joinPath(path, fe.Field)
		return field.ErrorList{fe}
	}
	var errs field.ErrorList
	for _, se := range strictErrs {
		fe := strictError(se)
		fe.Field = joinPath(path, fe.Field)
		errs = append(errs, fe)
	}
	return errs
}

// Params decodes a validated drill's params into out (scenario kinds call it
// from New, after ValidateParams accepted them).
func Params(spec v1alpha1.DrillSpec, out any) error {
	if errs := DecodeParams(spec.Params, out, field.NewPath("spec", "params")); len(errs) > 0 {
		return errs.ToAggregate()
	}
	return nil
}

func joinPath(path *field.Path, sub string) string {
	if sub == "" || sub == "<nil>" {
		return path.String()
	}
	return path.String() + "." + sub
}

// validateDataChecks checks spec.verify: a check named, a Job's pod that
// runs once.
func validateDataChecks(v *v1alpha1.DataChecks, path *field.Path) field.ErrorList {
	if v == nil {
		return nil
	}
	if v.Job == nil && v.HTTP == nil {
		return field.ErrorList{field.Required(path, "name a data check: job, http, or both")}
	}
	errs := validateHTTPCheck(v.HTTP, path.Child("http"))
	if v.Job == nil {
		return errs
	}
	tpl := path.Child("job", "template", "spec")
	if len(v.Job.Template.Spec.Containers) == 0 {
		errs = append(errs, field.Required(tpl.Child("containers"), "the check's container: its image and command"))
	}
	for i, c := range v.Job.Template.Spec.Containers {
		if c.Image == "" {
			errs = append(errs, field.Required(tpl.Child("containers").Index(i).Child("image"), "the check's image"))
		}
	}
	if v.Job.Template.Spec.ActiveDeadlineSeconds != nil {
		errs = append(errs, field.Forbidden(tpl.Child("activeDeadlineSeconds"), "the check's deadline is the recover phase's, set by drillbot (a pod killed at its own deadline gives no answer)"))
	}
	if rp := v.Job.Template.Spec.RestartPolicy; rp != "" && rp != "Never" {
		errs = append(errs, field.NotSupported(tpl.Child("restartPolicy"), rp, []string{"Never"}))
	}
	return errs
}

func validateHTTPCheck(h *v1alpha1.HTTPCheck, path *field.Path) field.ErrorList {
	if h == nil {
		return nil
	}
	var errs field.ErrorList
	if h.Service == "" {
		errs = append(errs, field.Required(path.Child("service"), "the Service in the target namespace whose endpoint answers"))
	} else {
		for _, m := range validation.IsDNS1035Label(h.Service) {
			errs = append(errs, field.Invalid(path.Child("service"), h.Service, m))
		}
	}
	switch {
	case h.Port == "":
		errs = append(errs, field.Required(path.Child("port"), "the Service's port, by name or number"))
	case strings.Trim(h.Port, "0123456789") == "":
		if n, err := strconv.Atoi(h.Port); err != nil || n < 1 || n > 65535 {
			errs = append(errs, field.Invalid(path.Child("port"), h.Port, "a port number is 1 to 65535"))
		}
	default:
		for _, m := range validation.IsValidPortName(h.Port) {
			errs = append(errs, field.Invalid(path.Child("port"), h.Port, m))
		}
	}
	if !strings.HasPrefix(h.Path, "/") || strings.ContainsAny(h.Path, "?#") {
		errs = append(errs, field.Invalid(path.Child("path"), h.Path, "the endpoint's path: starts with /, no query (drillbot adds ?before=<time>)"))
	}
	if h.Scheme != "" && h.Scheme != "http" && h.Scheme != "https" {
		errs = append(errs, field.NotSupported(path.Child("scheme"), h.Scheme, []string{"http", "https"}))
	}
	return errs
}
