package drill

import (
	"fmt"
	"os"
	"time"

	"github.com/robfig/cron/v3"
	"k8s.io/apimachinery/pkg/util/validation/field"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/drillbot-io/drillbot/internal/alerts"
	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
)

// Policy is a validated DrillPolicy: the daemon-wide stop conditions and
// freeze windows.
type Policy struct {
	Source   string
	StopWhen []alerts.Matchers
	Freeze   []FreezeWindow
}

// FreezeWindow is a resolved freeze window: fixed (Start, End) or
// recurring (Schedule, Duration).
type FreezeWindow struct {
	Name       string
	Start, End time.Time
	Schedule   cron.Schedule
	Duration   time.Duration
}

// ActiveAt reports whether the window covers t, and until when.
func (w FreezeWindow) ActiveAt(t time.Time) (until time.Time, ok bool) {
	if w.Schedule == nil {
		return w.End, !t.Before(w.Start) && t.Before(w.End)
	}
	// The newest start s with t-Duration < s <= t, if any.
	if s := w.Schedule.Next(t.Add(-w.Duration)); !s.IsZero() && !s.After(t) {
		return s.Add(w.Duration), true
	}
	return time.Time{}, false
}

// Frozen reports the first freeze window covering t.
func (p Policy) Frozen(t time.Time) (name string, until time.Time, frozen bool) {
	for _, w := range p.Freeze {
		if u, ok := w.ActiveAt(t); ok {
			return w.Name, u, true
		}
	}
	return "", time.Time{}, false
}

// maxFreeze bounds one recurring freeze: a longer one would keep every
// drill from ever running.
const maxFreeze = 31 * 24 * time.Hour

// LoadPolicy reads and validates a DrillPolicy file. Errors name the file
// and field; on any error no policy is returned.
func LoadPolicy(file string) (Policy, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return Policy{}, fmt.Errorf("read policy file: %w", err)
	}
	return ParsePolicy(file, data)
}

// ParsePolicy decodes and validates one DrillPolicy document.
func ParsePolicy(file string, data []byte) (Policy, error) {
	fail := func(errs field.ErrorList) (Policy, error) { return Policy{}, &Error{File: file, Errs: errs} }
	jsonDoc, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return fail(field.ErrorList{field.Invalid(field.NewPath(""), "", "not valid YAML: "+err.Error())})
	}
	var d v1alpha1.DrillPolicy
	strictErrs, err := sigsjson.UnmarshalStrict(jsonDoc, &d, sigsjson.DisallowUnknownFields)
	if err != nil {
		return fail(field.ErrorList{typeError(err)})
	}
	var errs field.ErrorList
	for _, se := range strictErrs {
		errs = append(errs, strictError(se))
	}
	if d.APIVersion != v1alpha1.APIVersion {
		errs = append(errs, field.NotSupported(field.NewPath("apiVersion"), d.APIVersion, []string{v1alpha1.APIVersion}))
	}
	if d.Kind != "DrillPolicy" {
		errs = append(errs, field.NotSupported(field.NewPath("kind"), d.Kind, []string{"DrillPolicy"}))
	}
	p := Policy{Source: file}
	spec := field.NewPath("spec")
	for i, src := range d.Spec.StopWhen {
		m, err := alerts.ParseMatchers(src)
		if err != nil {
			errs = append(errs, field.Invalid(spec.Child("stopWhen").Index(i), src, "not Alertmanager matchers: "+err.Error()))
			continue
		}
		p.StopWhen = append(p.StopWhen, m)
	}
	names := map[string]bool{}
	for i, fw := range d.Spec.FreezeWindows {
		path := spec.Child("freezeWindows").Index(i)
		w, werrs := resolveFreeze(path, fw)
		if fw.Name != "" && names[fw.Name] {
			werrs = append(werrs, field.Duplicate(path.Child("name"), fw.Name))
		}
		names[fw.Name] = true
		errs = append(errs, werrs...)
		p.Freeze = append(p.Freeze, w)
	}
	if len(errs) > 0 {
		sortErrors(errs)
		return fail(errs)
	}
	return p, nil
}

func resolveFreeze(path *field.Path, fw v1alpha1.FreezeWindow) (FreezeWindow, field.ErrorList) {
	var errs field.ErrorList
	w := FreezeWindow{Name: fw.Name}
	if fw.Name == "" {
		errs = append(errs, field.Required(path.Child("name"), "logs, runs and metrics name the window"))
	}
	fixed, recurring := fw.Start != "" || fw.End != "", fw.Schedule != "" || fw.Duration != ""
	switch {
	case fixed && recurring:
		errs = append(errs, field.Invalid(path, fw.Name, "either start and end, or schedule and duration, not both"))
	case fixed:
		for _, f := range []struct {
			name, val string
			dst       *time.Time
		}{{"start", fw.Start, &w.Start}, {"end", fw.End, &w.End}} {
			t, err := time.Parse(time.RFC3339, f.val)
			if err != nil {
				errs = append(errs, field.Invalid(path.Child(f.name), f.val, "not an RFC 3339 time (e.g. 2026-12-20T00:00:00Z)"))
				continue
			}
			*f.dst = t
		}
		if len(errs) == 0 && !w.End.After(w.Start) {
			errs = append(errs, field.Invalid(path.Child("end"), fw.End, "must be after start"))
		}
	case recurring:
		sched, err := ParseSchedule(fw.Schedule)
		if err != nil {
			errs = append(errs, field.Invalid(path.Child("schedule"), fw.Schedule, err.Error()))
		} else if sched.Next(time.Now()).IsZero() {
			errs = append(errs, field.Invalid(path.Child("schedule"), fw.Schedule, "never fires: no time matches it within five years"))
		}
		w.Schedule = sched
		if fw.Duration == "" {
			errs = append(errs, field.Required(path.Child("duration"), "how long each freeze lasts"))
		} else if de := checkDuration(path.Child("duration"), fw.Duration); len(de) > 0 {
			errs = append(errs, de...)
		} else if w.Duration = mustDuration(fw.Duration, 0); w.Duration > maxFreeze {
			errs = append(errs, field.Invalid(path.Child("duration"), fw.Duration, fmt.Sprintf("at most %s per freeze", maxFreeze)))
		}
	default:
		errs = append(errs, field.Required(path, "start and end, or schedule and duration"))
	}
	return w, errs
}
