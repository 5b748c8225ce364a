package engine_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	testingclock "k8s.io/utils/clock/testing"

	"github.com/drillbot-io/drillbot/internal/alerts"
	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
)

// fakeAlerts is an Alertmanager whose alerts are a function of the fake
// clock's time; it counts reads.
type fakeAlerts struct {
	clk *testingclock.FakeClock
	mu  sync.Mutex
	at  func(now time.Time) ([]alerts.Alert, error)
	n   int
}

func (f *fakeAlerts) Active(context.Context) ([]alerts.Alert, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	return f.at(f.clk.Now())
}

func (f *fakeAlerts) reads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

func alert(name string, startsAt time.Time, kv ...string) alerts.Alert {
	l := map[string]string{"alertname": name}
	for i := 0; i+1 < len(kv); i += 2 {
		l[kv[i]] = kv[i+1]
	}
	return alerts.Alert{Name: name, Labels: l, StartsAt: startsAt}
}

func matchers(t *testing.T, s string) alerts.Matchers {
	t.Helper()
	m, err := alerts.ParseMatchers(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func alertDrill(t *testing.T, expect ...v1alpha1.ExpectedAlert) drill.Definition {
	t.Helper()
	d := definition(5*time.Minute, 0)
	d.Spec.Alerts.Expect = expect
	d.FromSpec()
	return d
}

// TestExpectedAlerts: the disaster is at t0 (the scripted Inject); Recover
// takes 90s of fake time. The alert's startsAt decides its detection.
func TestExpectedAlerts(t *testing.T) {
	down := v1alpha1.ExpectedAlert{Name: "KyvernoAdmissionDown", Matchers: `{namespace="kyverno"}`, Within: "2m"}
	cases := []struct {
		name       string
		expect     []v1alpha1.ExpectedAlert
		at         func(now time.Time) ([]alerts.Alert, error)
		verdict    v1alpha1.Verdict
		reason     []string
		detection  string
		problem    string
		notStarted bool
		// polled: recovery takes its 90s a second at a time, each second
		// polled (else the clock jumps 30s, then 60s).
		polled bool
	}{
		{name: "fired in time", expect: []v1alpha1.ExpectedAlert{down},
			at: func(now time.Time) ([]alerts.Alert, error) {
				if now.Before(t0.Add(20 * time.Second)) {
					return nil, nil
				}
				return []alerts.Alert{alert("KyvernoAdmissionDown", t0.Add(20*time.Second), "namespace", "kyverno")}, nil
			},
			verdict: v1alpha1.VerdictPass, reason: []string{"alert KyvernoAdmissionDown{namespace=\"kyverno\"} detected in 20s within 2m0s"}, detection: "20s"},
		{name: "never fired", expect: []v1alpha1.ExpectedAlert{{Name: "KyvernoAdmissionDown", Within: "1m"}},
			at:      func(time.Time) ([]alerts.Alert, error) { return nil, nil },
			verdict: v1alpha1.VerdictFail, reason: []string{"alert KyvernoAdmissionDown not firing within 1m0s of the disaster"}, problem: "not firing within 1m0s"},
		{name: "other labels do not count", expect: []v1alpha1.ExpectedAlert{{Name: "KyvernoAdmissionDown", Matchers: `{namespace="kyverno"}`, Within: "1m"}},
			at: func(time.Time) ([]alerts.Alert, error) {
				return []alerts.Alert{alert("KyvernoAdmissionDown", t0.Add(5*time.Second), "namespace", "other")}, nil
			},
			// Active from before the run? No: its labels differ, so it was
			// not the expected alert at the start either; it never fires.
			verdict: v1alpha1.VerdictFail, reason: []string{"not firing within 1m0s"}, problem: "not firing"},
		{name: "fired too late", expect: []v1alpha1.ExpectedAlert{{Name: "SlowAlert", Within: "1m"}},
			at: func(now time.Time) ([]alerts.Alert, error) {
				if now.Before(t0.Add(70 * time.Second)) {
					return nil, nil
				}
				return []alerts.Alert{alert("SlowAlert", t0.Add(70*time.Second))}, nil
			},
			// Polled every second: a poll past the deadline saw it absent,
			// so it is late on drillbot's clock (jumping from 30s to 90s,
			// the deadline would fall between two polls: undecidable).
			polled:  true,
			verdict: v1alpha1.VerdictFail, reason: []string{"alert SlowAlert fired 1m10s after the disaster, later than 1m0s"}, detection: "1m10s", problem: "later than 1m0s"},
		{name: "silenced: nobody notified", expect: []v1alpha1.ExpectedAlert{{Name: "Quiet", Within: "1m"}},
			at: func(now time.Time) ([]alerts.Alert, error) {
				if now.Before(t0.Add(10 * time.Second)) {
					return nil, nil
				}
				a := alert("Quiet", t0.Add(10*time.Second))
				a.Suppressed = true
				return []alerts.Alert{a}, nil
			},
			verdict: v1alpha1.VerdictFail, reason: []string{"silenced or inhibited"}, problem: "nobody was notified"},
		{name: "already active before the fault: not started", expect: []v1alpha1.ExpectedAlert{{Name: "Always", Within: "1m"}},
			at: func(time.Time) ([]alerts.Alert, error) {
				return []alerts.Alert{alert("Always", t0.Add(-time.Hour))}, nil
			},
			verdict: v1alpha1.VerdictInconclusive, reason: []string{"not started: expected alert Always{} already active"}, notStarted: true},
		{name: "alerts unreadable at the start: not started", expect: []v1alpha1.ExpectedAlert{{Name: "X", Within: "1m"}},
			at:      func(time.Time) ([]alerts.Alert, error) { return nil, errors.New("connection refused") },
			verdict: v1alpha1.VerdictInconclusive, reason: []string{"not started: alerts cannot be read", "connection refused"}, notStarted: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := testingclock.NewFakeClock(t0)
			sc := &script{clk: clk}
			src := &fakeAlerts{clk: clk, at: tc.at}
			if tc.polled {
				sc.recover = poller{clk: clk, src: src, step: time.Second}.recoverFor(90 * time.Second)
			}
			e := engine.New(engine.Config{Store: newStore(), Kinds: engine.Registry{"scripted": kind{sc}}, Clock: clk, Holder: "test", Alerts: src, AlertPoll: time.Second})
			run, err := e.Run(context.Background(), alertDrill(t, tc.expect...), "manual")
			if err != nil {
				t.Fatal(err)
			}
			st := run.Status
			wantVerdict(t, st, tc.verdict, tc.reason...)
			if tc.notStarted {
				if len(sc.calls) != 0 || st.Stop == nil || !st.Stop.Before {
					t.Errorf("held run: calls %v, stop %+v", sc.calls, st.Stop)
				}
				return
			}
			if len(st.Detections) != len(tc.expect) {
				t.Fatalf("detections %+v", st.Detections)
			}
			d := st.Detections[0]
			if d.Detection != tc.detection || !strings.Contains(d.Problem, tc.problem) {
				t.Errorf("detection %q problem %q, want %q, %q", d.Detection, d.Problem, tc.detection, tc.problem)
			}
			if tc.problem == "" && d.Problem != "" {
				t.Errorf("unexpected problem %q", d.Problem)
			}
		})
	}
}

// TestExpectedAlertResolves: with resolveWithin, the run waits after
// recovery until the alert is gone, and FAILs when it stays.
func TestExpectedAlertResolves(t *testing.T) {
	for _, tc := range []struct {
		name    string
		goneAt  time.Duration // after t0; 0: never
		verdict v1alpha1.Verdict
	}{{"resolved", 3 * time.Minute, v1alpha1.VerdictPass}, {"still firing", 0, v1alpha1.VerdictFail}} {
		t.Run(tc.name, func(t *testing.T) {
			clk := testingclock.NewFakeClock(t0)
			sc := &script{clk: clk}
			src := &fakeAlerts{clk: clk, at: func(now time.Time) ([]alerts.Alert, error) {
				if now.Before(t0.Add(10*time.Second)) || (tc.goneAt > 0 && !now.Before(t0.Add(tc.goneAt))) {
					return nil, nil
				}
				return []alerts.Alert{alert("Down", t0.Add(10*time.Second))}, nil
			}}
			// Recovery's 90s are polled every second: the alert is seen
			// within its deadline on drillbot's clock.
			sc.recover = poller{clk: clk, src: src, step: time.Second}.recoverFor(90 * time.Second)
			e := engine.New(engine.Config{Store: newStore(), Kinds: engine.Registry{"scripted": kind{sc}}, Clock: clk, Holder: "test", Alerts: src, AlertPoll: time.Second})
			def := alertDrill(t, v1alpha1.ExpectedAlert{Name: "Down", Within: "1m", ResolveWithin: "5m"})
			done := make(chan *v1alpha1.DrillRun)
			go func() {
				run, err := e.Run(context.Background(), def, "manual")
				if err != nil {
					t.Error(err)
				}
				done <- run
			}()
			// Recovery is at t0+90s (the script); then time passes until the
			// run has decided.
			var run *v1alpha1.DrillRun
			for run == nil {
				select {
				case run = <-done:
				case <-time.After(time.Millisecond):
					if clk.Now().After(t0.Add(100*time.Second)) || sc.recovered() {
						clk.Step(time.Second)
					}
				}
			}
			if run.Status.Verdict != tc.verdict {
				t.Errorf("verdict %s %q, want %s", run.Status.Verdict, run.Status.Reason, tc.verdict)
			}
			d := run.Status.Detections[0]
			if tc.verdict == v1alpha1.VerdictPass && (d.ResolvedAt == nil || d.ResolvedAt.Time.Before(t0.Add(tc.goneAt))) {
				t.Errorf("resolved at %v, want at or after %v", d.ResolvedAt, t0.Add(tc.goneAt))
			}
			if tc.verdict == v1alpha1.VerdictFail && !strings.Contains(d.Problem, "still active 5m0s after recovery") {
				t.Errorf("problem %q", d.Problem)
			}
		})
	}
}

// TestStopConditions: an alert matching a stop condition holds the start
// (nothing touched) and stops a running drill, which reverts.
func TestStopConditions(t *testing.T) {
	critical := func(from time.Time) func(now time.Time) ([]alerts.Alert, error) {
		return func(now time.Time) ([]alerts.Alert, error) {
			if now.Before(from) {
				return []alerts.Alert{alert("Harmless", t0, "severity", "info")}, nil
			}
			return []alerts.Alert{alert("EtcdDown", from, "severity", "critical")}, nil
		}
	}
	t.Run("held at the start", func(t *testing.T) {
		clk := testingclock.NewFakeClock(t0)
		sc := &script{clk: clk}
		e := engine.New(engine.Config{Store: newStore(), Kinds: engine.Registry{"scripted": kind{sc}}, Clock: clk, Holder: "test",
			Alerts: &fakeAlerts{clk: clk, at: critical(t0.Add(-time.Minute))}, StopWhen: []alerts.Matchers{matchers(t, `{severity="critical"}`)}})
		run, err := e.Run(context.Background(), definition(5*time.Minute, 0), "schedule")
		if err != nil {
			t.Fatal(err)
		}
		st := run.Status
		if st.Verdict != v1alpha1.VerdictInconclusive || !strings.Contains(st.Reason, `not started: alert EtcdDown{severity="critical"} firing (stop condition {severity="critical"})`) {
			t.Errorf("%s %q", st.Verdict, st.Reason)
		}
		if len(sc.calls) != 0 || st.Stop == nil || st.Stop.Kind != v1alpha1.StopAlert || !st.Stop.Before {
			t.Errorf("calls %v stop %+v", sc.calls, st.Stop)
		}
	})
	for _, tc := range []struct {
		name   string
		at     func(*testingclock.FakeClock) func(time.Time) ([]alerts.Alert, error)
		reason string
		kind   v1alpha1.StopKind
	}{
		{"an alert starts firing mid-drill", func(*testingclock.FakeClock) func(time.Time) ([]alerts.Alert, error) {
			return critical(t0.Add(30 * time.Second))
		},
			`stopped: alert EtcdDown{severity="critical"} firing`, v1alpha1.StopAlert},
		{"alerts unreadable for three polls", func(*testingclock.FakeClock) func(time.Time) ([]alerts.Alert, error) {
			return func(now time.Time) ([]alerts.Alert, error) {
				if now.Before(t0.Add(30 * time.Second)) {
					return nil, nil
				}
				return nil, errors.New("alertmanager: 503")
			}
		}, "stopped: alerts cannot be read", v1alpha1.StopAlertsUnreadable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := testingclock.NewFakeClock(t0)
			// Recovery waits for the target forever: only the stop ends it.
			sc := &script{clk: clk, recover: func(ctx context.Context, _ engine.Milestones) error {
				for ctx.Err() == nil {
					clk.Step(time.Second)
					time.Sleep(time.Millisecond)
				}
				return ctx.Err()
			}}
			e := engine.New(engine.Config{Store: newStore(), Kinds: engine.Registry{"scripted": kind{sc}}, Clock: clk, Holder: "test",
				Alerts: &fakeAlerts{clk: clk, at: tc.at(clk)}, StopWhen: []alerts.Matchers{matchers(t, `severity="critical"`)}, AlertPoll: time.Second})
			run, err := e.Run(context.Background(), definition(time.Hour, 0), "schedule")
			if err != nil {
				t.Fatal(err)
			}
			st := run.Status
			if st.Verdict != v1alpha1.VerdictFail || !strings.HasPrefix(st.Reason, tc.reason) {
				t.Errorf("%s %q, want FAIL %q...", st.Verdict, st.Reason, tc.reason)
			}
			if st.Stop == nil || st.Stop.Kind != tc.kind || st.Stop.Before {
				t.Errorf("stop %+v", st.Stop)
			}
			if st.Phase != v1alpha1.PhaseCompleted || len(st.Journal) != 1 || st.Journal[0].State != v1alpha1.JournalReverted {
				t.Errorf("not reverted: %s %+v", st.Phase, st.Journal)
			}
		})
	}
}

type freeze struct{ from, to time.Time }

func (f freeze) Frozen(t time.Time) (string, time.Time, bool) {
	return "year-end", f.to, !t.Before(f.from) && t.Before(f.to)
}

// TestFreezeWindowHoldsScheduledRunsOnly: a scheduled run in a freeze
// window is recorded as not started; a run asked for by hand goes ahead.
func TestFreezeWindowHoldsScheduledRunsOnly(t *testing.T) {
	for _, tc := range []struct {
		trigger string
		verdict v1alpha1.Verdict
	}{{engine.TriggerSchedule, v1alpha1.VerdictInconclusive}, {"manual", v1alpha1.VerdictPass}} {
		t.Run(tc.trigger, func(t *testing.T) {
			clk := testingclock.NewFakeClock(t0)
			sc := &script{clk: clk}
			e := engine.New(engine.Config{Store: newStore(), Kinds: engine.Registry{"scripted": kind{sc}}, Clock: clk, Holder: "test",
				Freeze: freeze{t0.Add(-time.Hour), t0.Add(24 * time.Hour)}})
			run, err := e.Run(context.Background(), definition(5*time.Minute, 0), tc.trigger)
			if err != nil {
				t.Fatal(err)
			}
			if run.Status.Verdict != tc.verdict {
				t.Fatalf("%s %q", run.Status.Verdict, run.Status.Reason)
			}
			if tc.verdict == v1alpha1.VerdictInconclusive {
				if !strings.Contains(run.Status.Reason, "not started: freeze window year-end (until 2026-11-25T03:00:00Z)") || len(sc.calls) != 0 {
					t.Errorf("%q, calls %v", run.Status.Reason, sc.calls)
				}
			}
		})
	}
}

// TestPreflightFailureDoesNotWaitForExpectedAlerts: a run that broke
// nothing has nothing to detect; it ends at once (it waited out the
// deadlines, a minute of real time, before).
func TestPreflightFailureDoesNotWaitForExpectedAlerts(t *testing.T) {
	clk := testingclock.NewFakeClock(t0)
	sc := &script{clk: clk, preflight: func(context.Context) error { return errors.New("target not healthy") }}
	src := &fakeAlerts{clk: clk, at: func(time.Time) ([]alerts.Alert, error) { return nil, nil }}
	e := engine.New(engine.Config{Store: newStore(), Kinds: engine.Registry{"scripted": kind{sc}}, Clock: clk, Holder: "test", Alerts: src, AlertPoll: time.Second})
	done := make(chan *v1alpha1.DrillRun, 1)
	go func() {
		run, err := e.Run(context.Background(), alertDrill(t, v1alpha1.ExpectedAlert{Name: "X", Within: "1m"}), "manual")
		if err != nil {
			t.Error(err)
		}
		done <- run
	}()
	select {
	case run := <-done:
		if run.Status.Verdict != v1alpha1.VerdictFail || len(run.Status.Detections) != 1 || run.Status.Detections[0].Problem != "no fault was injected" {
			t.Errorf("%s %q %+v", run.Status.Verdict, run.Status.Reason, run.Status.Detections)
		}
	case <-time.After(10 * time.Second): // a hang guard: the fake clock never moves
		t.Fatal("a run that failed preflight waited for its expected alerts")
	}
}

// poller steps the fake clock by step and waits until the alert watch has
// read the alerts and is waiting again, so every step is one poll.
type poller struct {
	clk  *testingclock.FakeClock
	src  *fakeAlerts
	step time.Duration
}

func (p poller) stepTo(end time.Time) {
	for p.clk.Now().Before(end) {
		n, w := p.src.reads(), p.clk.Waiters()
		p.clk.Step(p.step)
		for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Microsecond) {
			if p.src.reads() > n && p.clk.Waiters() >= w {
				break
			}
		}
	}
}

// recoverFor is a Recover that takes d of fake time, polled at every step.
func (p poller) recoverFor(d time.Duration) func(context.Context, engine.Milestones) error {
	return func(context.Context, engine.Milestones) error {
		p.stepTo(p.clk.Now().Add(d))
		return nil
	}
}

type detectionCase struct {
	name   string
	expect []v1alpha1.ExpectedAlert
	// preflight is fake time between the start check and the disaster,
	// polled.
	preflight, recover time.Duration
	poll               time.Duration
	scope              string // the cluster identity, "" for none
	at                 func(disaster time.Time, now time.Time) ([]alerts.Alert, error)
	verdict            v1alpha1.Verdict
	reason             []string
	check              func(t *testing.T, d v1alpha1.Detection)
}

// runDetection runs one scripted drill with expected alerts: the disaster
// is at t0+preflight, recovery takes tc.recover of fake time, and the
// alerts are polled at every tc.poll.
func runDetection(t *testing.T, tc detectionCase, cfg func(*engine.Config)) v1alpha1.DrillRunStatus {
	t.Helper()
	clk := testingclock.NewFakeClock(t0)
	disaster := t0.Add(tc.preflight)
	src := &fakeAlerts{clk: clk, at: func(now time.Time) ([]alerts.Alert, error) { return tc.at(disaster, now) }}
	p := poller{clk: clk, src: src, step: tc.poll}
	sc := &script{clk: clk, recover: p.recoverFor(tc.recover), preflight: func(context.Context) error {
		p.stepTo(disaster)
		return nil
	}}
	c := engine.Config{Store: newStore(), Kinds: engine.Registry{"scripted": kind{sc}}, Clock: clk, Holder: "test", Alerts: src, AlertPoll: tc.poll}
	if tc.scope != "" {
		scope, err := alerts.ParseScope(tc.scope)
		if err != nil {
			t.Fatal(err)
		}
		c.AlertScope = scope
	}
	if cfg != nil {
		cfg(&c)
	}
	e := engine.New(c)
	done := make(chan *v1alpha1.DrillRun)
	go func() {
		run, err := e.Run(context.Background(), alertDrill(t, tc.expect...), "manual")
		if err != nil {
			t.Error(err)
		}
		done <- run
	}()
	// Once recovered, time goes on until the run has decided its alerts.
	var run *v1alpha1.DrillRun
	for run == nil {
		select {
		case run = <-done:
		case <-time.After(time.Millisecond):
			if sc.recovered() {
				clk.Step(tc.poll)
			}
		}
	}
	if run.Name == "" {
		t.FailNow()
	}
	wantVerdict(t, run.Status, tc.verdict, tc.reason...)
	return run.Status
}

// TestDetectionSeenBeforeTheDisaster: an expected alert that
// starts firing after the start check but before the disaster is not the
// fault's doing; its detection cannot be measured (INCONCLUSIVE), never a
// detection of 0s.
func TestDetectionSeenBeforeTheDisaster(t *testing.T) {
	x := []v1alpha1.ExpectedAlert{{Name: "Down", Within: "2m"}}
	for _, tc := range []detectionCase{
		{name: "seen by a poll before the disaster, startsAt before it",
			expect: x, preflight: 10 * time.Second, recover: time.Minute, poll: time.Second,
			at: func(disaster, now time.Time) ([]alerts.Alert, error) {
				if now.Before(t0.Add(3 * time.Second)) {
					return nil, nil
				}
				return []alerts.Alert{alert("Down", t0.Add(3*time.Second))}, nil
			},
			verdict: v1alpha1.VerdictInconclusive, reason: []string{"alert Down", "before the disaster"}},
		{name: "seen by a poll before the disaster, startsAt after it (clocks disagree)",
			expect: x, preflight: 10 * time.Second, recover: time.Minute, poll: time.Second,
			at: func(disaster, now time.Time) ([]alerts.Alert, error) {
				if now.Before(t0.Add(3 * time.Second)) {
					return nil, nil
				}
				return []alerts.Alert{alert("Down", disaster.Add(20*time.Second))}, nil
			},
			verdict: v1alpha1.VerdictInconclusive, reason: []string{"alert Down", "before the disaster"}},
		{name: "first seen after the disaster, startsAt before it",
			expect: x, preflight: 10 * time.Second, recover: time.Minute, poll: time.Second,
			at: func(disaster, now time.Time) ([]alerts.Alert, error) {
				if now.Before(disaster.Add(30 * time.Second)) {
					return nil, nil
				}
				return []alerts.Alert{alert("Down", disaster.Add(-5*time.Second))}, nil
			},
			verdict: v1alpha1.VerdictInconclusive, reason: []string{"alert Down", "before the disaster"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := runDetection(t, tc, nil)
			if d := st.Detections[0]; d.Detection == "0s" || d.FiredAt != nil || d.Problem != "" || !strings.Contains(d.Unmeasured, "before the disaster") {
				t.Errorf("detection %+v, want unmeasured (active before the disaster)", d)
			}
		})
	}
}

// TestDetectionOnDrillbotsClock: the deadline is decided on
// drillbot's own polls; Alertmanager's startsAt refines the figure only
// when it falls between the last poll that did not see the alert and the
// first that did.
func TestDetectionOnDrillbotsClock(t *testing.T) {
	for _, tc := range []detectionCase{
		{name: "drillbot 90s ahead: seen 2m30s after the disaster, startsAt says 1m",
			expect: []v1alpha1.ExpectedAlert{{Name: "Down", Within: "2m"}}, recover: 3 * time.Minute, poll: 30 * time.Second,
			at: func(disaster, now time.Time) ([]alerts.Alert, error) {
				if now.Before(disaster.Add(150 * time.Second)) {
					return nil, nil
				}
				return []alerts.Alert{alert("Down", disaster.Add(60*time.Second))}, nil
			},
			// Polls at 2m (absent) and 2m30s (firing): late on drillbot's
			// clock; startsAt (1m) is outside those polls, so only noted.
			verdict: v1alpha1.VerdictFail, reason: []string{"alert Down fired 2m30s after the disaster, later than 2m0s"},
			check: func(t *testing.T, d v1alpha1.Detection) {
				if d.Detection != "2m30s" || len(d.Notes) == 0 || !strings.Contains(strings.Join(d.Notes, " "), "clocks disagree") {
					t.Errorf("detection %q notes %q", d.Detection, d.Notes)
				}
			}},
		{name: "the deadline falls between two polls; startsAt says in time",
			expect: []v1alpha1.ExpectedAlert{{Name: "Down", Within: "115s"}}, recover: 3 * time.Minute, poll: 10 * time.Second,
			at: func(disaster, now time.Time) ([]alerts.Alert, error) {
				if now.Before(disaster.Add(112 * time.Second)) {
					return nil, nil
				}
				return []alerts.Alert{alert("Down", disaster.Add(111*time.Second))}, nil
			},
			verdict: v1alpha1.VerdictInconclusive, reason: []string{"alert Down not measured", "deadline falls between these polls"},
			check: func(t *testing.T, d v1alpha1.Detection) {
				if d.AbsentAt == nil || d.SeenAt == nil || !d.AbsentAt.Time.Equal(t0.Add(110*time.Second)) ||
					!d.SeenAt.Time.Equal(t0.Add(120*time.Second)) || d.FiredAt != nil {
					t.Errorf("bracket %v..%v fired %v, want 1m50s..2m0s, not credited", d.AbsentAt, d.SeenAt, d.FiredAt)
				}
			}},
		{name: "first seen at the first poll past the deadline: late",
			expect: []v1alpha1.ExpectedAlert{{Name: "Down", Within: "2m"}}, recover: 3 * time.Minute, poll: 10 * time.Second,
			at: func(disaster, now time.Time) ([]alerts.Alert, error) {
				if now.Before(disaster.Add(125 * time.Second)) {
					return nil, nil
				}
				return []alerts.Alert{alert("Down", disaster.Add(121*time.Second))}, nil
			},
			verdict: v1alpha1.VerdictFail, reason: []string{"alert Down fired 2m1s after the disaster, later than 2m0s"}},
		{name: "clocks agree: startsAt inside the bracket refines the figure",
			expect: []v1alpha1.ExpectedAlert{{Name: "Down", Within: "1m"}}, recover: 90 * time.Second, poll: time.Second,
			at: func(disaster, now time.Time) ([]alerts.Alert, error) {
				if now.Before(disaster.Add(30 * time.Second)) {
					return nil, nil
				}
				return []alerts.Alert{alert("Down", disaster.Add(29500*time.Millisecond))}, nil
			},
			verdict: v1alpha1.VerdictPass, reason: []string{"alert Down detected in 29.5s within 1m0s"},
			check: func(t *testing.T, d v1alpha1.Detection) {
				if d.AbsentAt == nil || d.SeenAt == nil || !d.AbsentAt.Time.Equal(t0.Add(29*time.Second)) || !d.SeenAt.Time.Equal(t0.Add(30*time.Second)) {
					t.Errorf("bracket %v..%v, want 29s..30s", d.AbsentAt, d.SeenAt)
				}
				if len(d.Notes) != 1 || !strings.Contains(d.Notes[0], "not narrowed to this cluster") {
					t.Errorf("notes %q, want only: not narrowed to this cluster", d.Notes)
				}
			}},
		{name: "startsAt outside the bracket: the figure is drillbot's",
			expect: []v1alpha1.ExpectedAlert{{Name: "Down", Within: "1m"}}, recover: 90 * time.Second, poll: time.Second,
			at: func(disaster, now time.Time) ([]alerts.Alert, error) {
				if now.Before(disaster.Add(30 * time.Second)) {
					return nil, nil
				}
				return []alerts.Alert{alert("Down", disaster.Add(10*time.Second))}, nil
			},
			verdict: v1alpha1.VerdictPass, reason: []string{"alert Down detected in 30s within 1m0s"},
			check: func(t *testing.T, d v1alpha1.Detection) {
				if !strings.Contains(strings.Join(d.Notes, " "), "startsAt (10s after the disaster) is not between") {
					t.Errorf("notes %q, want the clock disagreement", d.Notes)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := runDetection(t, tc, nil)
			if tc.check != nil {
				tc.check(t, st.Detections[0])
			}
		})
	}
}

// TestExpectedAlertsScopedToTheCluster: with one Alertmanager
// for several clusters, another cluster's alert of the same name is not
// this drill's detection.
func TestExpectedAlertsScopedToTheCluster(t *testing.T) {
	x := []v1alpha1.ExpectedAlert{{Name: "Down", Within: "1m"}}
	firesAt := func(labels ...string) func(disaster, now time.Time) ([]alerts.Alert, error) {
		return func(disaster, now time.Time) ([]alerts.Alert, error) {
			if now.Before(disaster.Add(20 * time.Second)) {
				return nil, nil
			}
			return []alerts.Alert{alert("Down", disaster.Add(20*time.Second), labels...)}, nil
		}
	}
	for _, tc := range []detectionCase{
		{name: "no identity: an alert from a labelled cluster is not credited",
			expect: x, recover: 90 * time.Second, poll: time.Second, at: firesAt("cluster", "prod-us"),
			verdict: v1alpha1.VerdictInconclusive, reason: []string{"alert Down", `cluster="prod-us"`, "--alert-cluster-label"}},
		{name: "identity set: another cluster's alert of the same name does not count",
			expect: x, recover: 90 * time.Second, poll: time.Second, scope: "cluster=prod-eu", at: firesAt("cluster", "prod-us"),
			verdict: v1alpha1.VerdictFail, reason: []string{"alert Down not firing within 1m0s"}},
		{name: "identity set: an alert without the cluster label does not count",
			expect: x, recover: 90 * time.Second, poll: time.Second, scope: "cluster=prod-eu", at: firesAt(),
			verdict: v1alpha1.VerdictFail, reason: []string{"alert Down not firing within 1m0s"}},
		{name: "identity set: this cluster's alert counts, among others'",
			expect: x, recover: 90 * time.Second, poll: time.Second, scope: "cluster=prod-eu",
			at: func(disaster, now time.Time) ([]alerts.Alert, error) {
				other := alert("Down", disaster.Add(-time.Hour), "cluster", "prod-us") // firing all along, elsewhere
				if now.Before(disaster.Add(20 * time.Second)) {
					return []alerts.Alert{other}, nil
				}
				return []alerts.Alert{other, alert("Down", disaster.Add(19500*time.Millisecond), "cluster", "prod-eu")}, nil
			},
			verdict: v1alpha1.VerdictPass, reason: []string{"alert Down detected in 19.5s within 1m0s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := runDetection(t, tc, nil)
			if tc.verdict == v1alpha1.VerdictPass && len(st.Detections[0].Notes) != 0 {
				t.Errorf("notes %q, want none", st.Detections[0].Notes)
			}
		})
	}
}

// TestStopConditionsAreNotScoped: a stop condition is honoured whatever
// cluster its alert names (on doubt, no fault): to scope one, write the
// cluster label into it. An alert Alertmanager has not yet routed
// (unprocessed) holds a run too.
func TestStopConditionsAreNotScoped(t *testing.T) {
	for _, tc := range []struct {
		name string
		a    alerts.Alert
	}{
		{"another cluster's", alert("EtcdDown", t0, "severity", "critical", "cluster", "prod-us")},
		{"unprocessed", func() alerts.Alert {
			a := alert("EtcdDown", t0, "severity", "critical")
			a.Unprocessed = true
			return a
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := testingclock.NewFakeClock(t0)
			sc := &script{clk: clk}
			e := engine.New(engine.Config{Store: newStore(), Kinds: engine.Registry{"scripted": kind{sc}}, Clock: clk, Holder: "test",
				Alerts:     &fakeAlerts{clk: clk, at: func(time.Time) ([]alerts.Alert, error) { return []alerts.Alert{tc.a}, nil }},
				StopWhen:   []alerts.Matchers{matchers(t, `{severity="critical"}`)},
				AlertScope: alerts.Scope{Label: "cluster", Value: "prod-eu"}})
			run, err := e.Run(context.Background(), definition(5*time.Minute, 0), "schedule")
			if err != nil {
				t.Fatal(err)
			}
			wantVerdict(t, run.Status, v1alpha1.VerdictInconclusive, "not started: alert EtcdDown")
			if len(sc.calls) != 0 {
				t.Errorf("calls %v", sc.calls)
			}
		})
	}
	t.Run("expected alert active in another cluster: the run starts", func(t *testing.T) {
		clk := testingclock.NewFakeClock(t0)
		sc := &script{clk: clk}
		check := engine.StartConditions{Alerts: &fakeAlerts{clk: clk, at: func(time.Time) ([]alerts.Alert, error) {
			return []alerts.Alert{alert("Down", t0.Add(-time.Hour), "cluster", "prod-us")}, nil
		}}, Scope: alerts.Scope{Label: "cluster", Value: "prod-eu"}}
		if st := check.Check(context.Background(), alertDrill(t, v1alpha1.ExpectedAlert{Name: "Down", Within: "1m"}), "manual", t0); st != nil {
			t.Errorf("held: %+v", st)
		}
		_ = sc
	})
}

// TestDetectionNotDecidable: an expected alert not yet notified, or alerts
// unreadable past the deadline, are not a detection; unreadable alerts are
// not a missed one either (EVIDENCE rule 5).
func TestDetectionNotDecidable(t *testing.T) {
	x := []v1alpha1.ExpectedAlert{{Name: "Down", Within: "1m"}}
	for _, tc := range []detectionCase{
		{name: "unprocessed past the deadline: nobody notified",
			expect: x, recover: 90 * time.Second, poll: time.Second,
			at: func(disaster, now time.Time) ([]alerts.Alert, error) {
				if now.Before(disaster.Add(20 * time.Second)) {
					return nil, nil
				}
				a := alert("Down", disaster.Add(20*time.Second))
				a.Unprocessed = true
				return []alerts.Alert{a}, nil
			},
			verdict: v1alpha1.VerdictFail, reason: []string{"alert Down active but not yet routed by Alertmanager (unprocessed)", "nobody was notified within 1m0s"}},
		{name: "alerts unreadable from before the deadline to the end",
			expect: x, recover: 90 * time.Second, poll: time.Second,
			at: func(disaster, now time.Time) ([]alerts.Alert, error) {
				if now.Before(disaster.Add(30 * time.Second)) {
					return nil, nil
				}
				return nil, errors.New("alertmanager: 503")
			},
			verdict: v1alpha1.VerdictInconclusive, reason: []string{"alert Down not measured", "no poll read the alerts after its 1m0s deadline", "503"}},
	} {
		t.Run(tc.name, func(t *testing.T) { runDetection(t, tc, nil) })
	}
}

// TestResolutionNotFailedByAnotherClustersAlert (EVIDENCE
// rules 6 and 8): without a cluster identity, an alert naming a cluster is
// not evidence of a detection; it is no evidence either that this
// cluster's alert is still active after recovery. This cluster's alert
// (no cluster label) fired and resolved; another cluster's of the same
// name fires meanwhile and stays: the resolution is not a FAIL.
func TestResolutionNotFailedByAnotherClustersAlert(t *testing.T) {
	runDetection(t, detectionCase{
		expect:  []v1alpha1.ExpectedAlert{{Name: "Down", Within: "1m", ResolveWithin: "30s"}},
		recover: 90 * time.Second, poll: time.Second,
		at: func(disaster, now time.Time) ([]alerts.Alert, error) {
			var out []alerts.Alert
			if !now.Before(disaster.Add(20*time.Second)) && now.Before(disaster.Add(90*time.Second)) {
				out = append(out, alert("Down", disaster.Add(19500*time.Millisecond)))
			}
			if !now.Before(disaster.Add(60 * time.Second)) {
				out = append(out, alert("Down", disaster.Add(60*time.Second), "cluster", "prod-us"))
			}
			return out, nil
		},
		verdict: v1alpha1.VerdictInconclusive, reason: []string{"alert Down not measured", `cluster="prod-us"`},
	}, nil)
}
