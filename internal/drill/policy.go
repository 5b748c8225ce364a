package drill

import (
	"fmt"
	"os"
	"strings"
	"time"
	// The zone database is built in: the image has none (FROM scratch),
	// and every process must read a freeze window's zone the same way.
	_ "time/tzdata"

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
// recurring (Schedule, Location, Duration).
//
// A recurring window is defined in wall-clock terms in Location, whatever
// the evaluating process' time.Local: each time Schedule's fields match the
// wall clock there, a freeze starts and lasts until the wall clock there
// reads that time plus Duration (so a 62h weekend freeze from Friday 18:00
// ends Monday 08:00 on both DST weekends, 61h or 63h later). A wall-clock
// time the zone skips (spring forward) stands for the first instant after
// the gap; one it repeats (autumn) for its first occurrence.
type FreezeWindow struct {
	Name       string
	Start, End time.Time
	// Schedule holds the cron fields only: its Next (robfig's) is never
	// used, as it reads them in Schedule.Location and skips the gap.
	Schedule *cron.SpecSchedule
	Location *time.Location
	Duration time.Duration
}

// ActiveAt reports whether the window covers t, and until when.
func (w FreezeWindow) ActiveAt(t time.Time) (until time.Time, ok bool) {
	if w.Schedule == nil {
		return w.End, !t.Before(w.Start) && t.Before(w.End)
	}
	// Wall-clock starts map to instants monotonically, and each freeze
	// ends Duration of wall clock after its start: the newest start at or
	// before t ends last, so it alone decides.
	s, ok := w.lastStart(t)
	if !ok {
		return time.Time{}, false
	}
	end := instant(s.Add(w.Duration), w.Location)
	return end, t.Before(end)
}

// zoneMargin bounds how far a zone's offset moves wall-clock time from one
// day to the next (Samoa skipped a whole day in 2011).
const zoneMargin = 48 * time.Hour

// lastStart is the wall-clock time (in a UTC time.Time) of the newest start
// whose instant is at or before t, looking back no further than could still
// cover t.
func (w FreezeWindow) lastStart(t time.Time) (time.Time, bool) {
	now := wallClock(t, w.Location)
	from := now.Add(-w.Duration - zoneMargin)
	for day := now.Add(zoneMargin).Truncate(24 * time.Hour); !day.Before(from.Truncate(24 * time.Hour)); day = day.AddDate(0, 0, -1) {
		if !dayMatches(w.Schedule, day) {
			continue
		}
		for h := 23; h >= 0; h-- {
			if w.Schedule.Hour&(1<<uint(h)) == 0 {
				continue
			}
			for m := 59; m >= 0; m-- {
				if w.Schedule.Minute&(1<<uint(m)) == 0 {
					continue
				}
				for sec := 59; sec >= 0; sec-- {
					if w.Schedule.Second&(1<<uint(sec)) == 0 {
						continue
					}
					s := day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sec)*time.Second)
					if s.Before(from) {
						return time.Time{}, false
					}
					if !instant(s, w.Location).After(t) {
						return s, true
					}
				}
			}
		}
	}
	return time.Time{}, false
}

// firesWithin reports whether the schedule matches any day from t's to
// span later (its hours and minutes are never empty).
func firesWithin(s *cron.SpecSchedule, t time.Time, loc *time.Location, span time.Duration) bool {
	from := wallClock(t, loc).Truncate(24 * time.Hour)
	for day := from; day.Before(from.Add(span)); day = day.AddDate(0, 0, 1) {
		if dayMatches(s, day) {
			return true
		}
	}
	return false
}

// starBit marks a cron field written as * (robfig/cron's).
const starBit = 1 << 63

// dayMatches is robfig/cron's day rule on a wall-clock date: month, and day
// of month and day of week (either one when both are restricted).
func dayMatches(s *cron.SpecSchedule, day time.Time) bool {
	if s.Month&(1<<uint(day.Month())) == 0 {
		return false
	}
	dom, dow := s.Dom&(1<<uint(day.Day())) > 0, s.Dow&(1<<uint(day.Weekday())) > 0
	if s.Dom&starBit > 0 || s.Dow&starBit > 0 {
		return dom && dow
	}
	return dom || dow
}

// wallClock is t's wall-clock reading in loc, as a time in UTC (so that
// adding to it counts wall-clock time).
func wallClock(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC)
}

// instant is the instant at which loc's wall clock reads wall (given in
// UTC): the first one when the zone repeats it, the first instant after
// the gap when the zone skips it. time.Date leaves both unspecified.
func instant(wall time.Time, loc *time.Location) time.Time {
	guess := time.Date(wall.Year(), wall.Month(), wall.Day(), wall.Hour(), wall.Minute(), wall.Second(), wall.Nanosecond(), loc)
	// The candidates: wall read with the offset in force at the guess, and
	// with those of the periods before and after it.
	start, end := guess.ZoneBounds()
	probes := []time.Time{guess}
	if !start.IsZero() {
		probes = append(probes, start.Add(-time.Nanosecond))
	}
	if !end.IsZero() {
		probes = append(probes, end)
	}
	var first time.Time
	for _, p := range probes {
		_, off := p.Zone()
		c := wall.Add(-time.Duration(off) * time.Second).In(loc)
		if wallClock(c, loc).Equal(wall) && (first.IsZero() || c.Before(first)) {
			first = c
		}
	}
	if !first.IsZero() {
		return first
	}
	// A gap: the transition whose clock jumps over wall.
	for _, p := range probes {
		_, off := p.Zone()
		c := wall.Add(-time.Duration(off) * time.Second).In(loc)
		if s, _ := c.ZoneBounds(); !s.IsZero() && wallClock(s.Add(-time.Nanosecond), loc).Before(wall) && wallClock(s, loc).After(wall) {
			return s
		}
	}
	return guess
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
	if fixed && !recurring && fw.TimeZone != "" {
		errs = append(errs, field.Invalid(path.Child("timeZone"), fw.TimeZone, "only for recurring windows (schedule): start and end carry their own offset"))
	}
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
		errs = append(errs, resolveRecurring(path, fw, &w)...)
	default:
		errs = append(errs, field.Required(path, "start and end, or schedule and duration"))
	}
	return w, errs
}

// resolveRecurring checks a recurring window: an anchored cron schedule
// (not @every), exactly one zone (timeZone, or a CRON_TZ= or TZ= prefix),
// and a duration of at most maxFreeze.
func resolveRecurring(path *field.Path, fw v1alpha1.FreezeWindow, w *FreezeWindow) field.ErrorList {
	var errs field.ErrorList
	prefixed := strings.HasPrefix(strings.TrimSpace(fw.Schedule), "CRON_TZ=") || strings.HasPrefix(strings.TrimSpace(fw.Schedule), "TZ=")
	switch {
	case fw.TimeZone != "" && prefixed:
		errs = append(errs, field.Invalid(path.Child("timeZone"), fw.TimeZone, "the schedule names its zone with CRON_TZ= already: one zone, in timeZone or CRON_TZ=, not both"))
	case fw.TimeZone == "" && !prefixed:
		errs = append(errs, field.Required(path.Child("timeZone"), "an IANA time zone (e.g. Europe/Berlin, UTC) the schedule and duration are read in: without one each process would read them in its own"))
	case fw.TimeZone == "Local":
		errs = append(errs, field.Invalid(path.Child("timeZone"), fw.TimeZone, "the process' own zone differs between processes: name the zone"))
	case fw.TimeZone != "":
		loc, err := time.LoadLocation(fw.TimeZone)
		if err != nil {
			errs = append(errs, field.Invalid(path.Child("timeZone"), fw.TimeZone, "not an IANA time zone: "+err.Error()))
		}
		w.Location = loc
	}
	if fw.Schedule == "" {
		errs = append(errs, field.Required(path.Child("schedule"), "a cron expression for when each freeze starts"))
	} else if sched, err := ParseSchedule(fw.Schedule); err != nil {
		errs = append(errs, field.Invalid(path.Child("schedule"), fw.Schedule, err.Error()))
	} else if spec, ok := sched.(*cron.SpecSchedule); !ok {
		errs = append(errs, field.Invalid(path.Child("schedule"), fw.Schedule, "@every has no anchor in time, so the window would never freeze: use a cron expression (e.g. '0 18 * * 5')"))
	} else {
		w.Schedule = spec
		if prefixed {
			if spec.Location == time.Local {
				errs = append(errs, field.Invalid(path.Child("schedule"), fw.Schedule, "CRON_TZ=Local: the process' own zone differs between processes: name the zone"))
			}
			w.Location = spec.Location
		}
		if w.Location != nil && !firesWithin(spec, time.Now(), w.Location, 5*366*24*time.Hour) {
			errs = append(errs, field.Invalid(path.Child("schedule"), fw.Schedule, "never fires: no time matches it within five years"))
		}
	}
	if fw.Duration == "" {
		errs = append(errs, field.Required(path.Child("duration"), "how long each freeze lasts (wall-clock time in its zone)"))
	} else if de := checkDuration(path.Child("duration"), fw.Duration); len(de) > 0 {
		errs = append(errs, de...)
	} else if w.Duration = mustDuration(fw.Duration, 0); w.Duration > maxFreeze {
		errs = append(errs, field.Invalid(path.Child("duration"), fw.Duration, fmt.Sprintf("at most %s per freeze", maxFreeze)))
	}
	return errs
}
