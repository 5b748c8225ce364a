package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/notify"
)

var t0 = time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)

func finishedRun() *v1alpha1.DrillRun {
	recovered := metav1.NewMicroTime(t0.Add(6*time.Minute + 2*time.Second))
	return &v1alpha1.DrillRun{
		ObjectMeta: metav1.ObjectMeta{Name: "kill-kyverno-20261124-030000-abcd", Namespace: "drillbot-system"},
		Spec: v1alpha1.DrillRunSpec{Drill: "kill-kyverno", Scenario: "pod-kill",
			Snapshot: v1alpha1.DrillSpec{Target: v1alpha1.Target{Namespace: "kyverno"}}},
		Status: v1alpha1.DrillRunStatus{
			Phase: v1alpha1.PhaseCompleted, Verdict: v1alpha1.VerdictFail, Reason: "RTO 6m2s exceeds target 5m0s",
			RTO: "6m2s", RTOTarget: "5m", RPO: "0s", RPOTarget: "1m",
			Steps:     []v1alpha1.Step{{Phase: v1alpha1.PhaseRecovering, StartedAt: metav1.NewMicroTime(t0), FinishedAt: &recovered}},
			Breakdown: []v1alpha1.Span{{Name: "pods-deleted", Duration: "120ms"}, {Name: "admission-enforcing", Duration: "6m1.88s"}},
			Findings:  []string{"fail-open window: 41s during which an unsigned image was admitted"},
			Detections: []v1alpha1.Detection{{Alert: "KyvernoAdmissionDown", Within: "2m0s", Detection: "14.2s", FiredAt: &recovered},
				{Alert: "KyvernoWebhookErrors", Within: "1m0s", Problem: "not firing within 1m0s of the disaster"}},
		},
	}
}

// slackServer records what is posted and answers with the scripted statuses
// in order (the last one repeats).
type slackServer struct {
	*httptest.Server
	mu       sync.Mutex
	bodies   []string
	paths    []string
	statuses []int
	retryAt  string
}

func newSlackServer(t *testing.T, statuses ...int) *slackServer {
	s := &slackServer{statuses: statuses, retryAt: "7"}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.bodies = append(s.bodies, string(body))
		s.paths = append(s.paths, r.URL.Path)
		i := min(len(s.bodies)-1, len(s.statuses)-1)
		status := s.statuses[i]
		s.mu.Unlock()
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", s.retryAt)
		}
		w.WriteHeader(status)
		if strings.HasPrefix(r.URL.Path, "/api/") && status == http.StatusOK {
			_, _ = io.WriteString(w, `{"ok":true,"channel":"C1","ts":"1.2"}`)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *slackServer) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bodies)
}

// dispatch delivers one finished run through a Dispatcher and returns the
// recorded sleeps, failures and log.
func dispatch(t *testing.T, sink notify.Sink) (sleeps []time.Duration, failed []string, log string) {
	t.Helper()
	var (
		mu  sync.Mutex
		buf bytes.Buffer
	)
	d := &notify.Dispatcher{
		Sinks:       []notify.Sink{sink},
		Logger:      slog.New(slog.NewTextHandler(&lockedWriter{mu: &mu, w: &buf}, nil)),
		MaxAttempts: 4, Backoff: time.Second, MaxDelay: 30 * time.Second,
		Sleep: func(_ context.Context, d time.Duration) error {
			mu.Lock()
			sleeps = append(sleeps, d)
			mu.Unlock()
			return nil
		},
		Failed: func(s string) { mu.Lock(); failed = append(failed, s); mu.Unlock() },
	}
	d.Observe(context.Background(), engine.Event{Type: engine.EventFinished, Run: finishedRun()})
	d.Wait(context.Background())
	mu.Lock()
	defer mu.Unlock()
	return sleeps, failed, buf.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestSlackWebhookDelivery(t *testing.T) {
	const secretPath = "/services/T000/B000/sEcReT-webhook-token"
	cases := []struct {
		name       string
		statuses   []int
		wantReqs   int
		wantSleeps []time.Duration
		wantFailed bool
	}{
		{name: "delivered at once", statuses: []int{200}, wantReqs: 1},
		{name: "429 honours Retry-After", statuses: []int{429, 200}, wantReqs: 2, wantSleeps: []time.Duration{7 * time.Second}},
		{name: "500s back off exponentially", statuses: []int{500, 502, 200}, wantReqs: 3, wantSleeps: []time.Duration{time.Second, 2 * time.Second}},
		{name: "outage gives up after the bounded attempts", statuses: []int{503}, wantReqs: 4,
			wantSleeps: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}, wantFailed: true},
		{name: "client errors are not retried", statuses: []int{400}, wantReqs: 1, wantFailed: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newSlackServer(t, tc.statuses...)
			sleeps, failed, log := dispatch(t, &notify.Slack{WebhookURL: srv.URL + secretPath})
			if got := srv.requests(); got != tc.wantReqs {
				t.Errorf("%d requests, want %d", got, tc.wantReqs)
			}
			if len(sleeps) != len(tc.wantSleeps) {
				t.Fatalf("slept %v, want %v", sleeps, tc.wantSleeps)
			}
			for i := range sleeps {
				if sleeps[i] != tc.wantSleeps[i] {
					t.Errorf("slept %v, want %v", sleeps, tc.wantSleeps)
				}
			}
			if (len(failed) == 1) != tc.wantFailed {
				t.Errorf("failures counted %v, want failed=%v", failed, tc.wantFailed)
			}
			if strings.Contains(log, "sEcReT") {
				t.Errorf("the webhook URL leaked into the log:\n%s", log)
			}
		})
	}
}

func TestSlackPayload(t *testing.T) {
	srv := newSlackServer(t, 200)
	if _, _, _ = dispatch(t, &notify.Slack{WebhookURL: srv.URL + "/hook"}); srv.requests() != 1 {
		t.Fatalf("%d requests", srv.requests())
	}
	var msg struct {
		Text        string `json:"text"`
		Attachments []struct {
			Color  string            `json:"color"`
			Blocks []json.RawMessage `json:"blocks"`
		} `json:"attachments"`
	}
	if err := json.Unmarshal([]byte(srv.bodies[0]), &msg); err != nil {
		t.Fatal(err)
	}
	if len(msg.Attachments) != 1 || msg.Attachments[0].Color != "#e01e5a" {
		t.Fatalf("want one red attachment for a FAIL, got %s", srv.bodies[0])
	}
	if !strings.Contains(msg.Text, ":rotating_light: FAIL") {
		t.Errorf("text %q", msg.Text)
	}
	body := srv.bodies[0]
	for _, want := range []string{
		`"type":"header"`, "FAIL · kill-kyverno", "pod-kill", "kyverno",
		"6m2s / target 5m", "0s / target 1m", "RTO 6m2s exceeds target 5m0s",
		"admission-enforcing 6m1.88s", "Recovering 6m2s", "fail-open window: 41s",
		"*Detection* (disaster → alert firing)", "KyvernoAdmissionDown 14.2s / target 2m0s",
		"KyvernoWebhookErrors not detected / target 1m0s (not firing within 1m0s of the disaster)",
		"kubectl -n drillbot-system describe drillrun kill-kyverno-20261124-030000-abcd",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("payload lacks %q:\n%s", want, body)
		}
	}
}

func TestSlackBotToken(t *testing.T) {
	srv := newSlackServer(t, 200)
	_, failed, _ := dispatch(t, &notify.Slack{Token: "xoxb-secret", Channel: "#dr-drills", APIURL: srv.URL + "/api/"})
	if len(failed) != 0 || srv.requests() != 1 || srv.paths[0] != "/api/chat.postMessage" {
		t.Fatalf("failed %v, requests %v", failed, srv.paths)
	}
	if !strings.Contains(srv.bodies[0], "channel=%23dr-drills") {
		t.Errorf("channel not posted: %s", srv.bodies[0])
	}
}

func TestSlackDownNeverBlocksTheRun(t *testing.T) {
	// Observe returns at once even when every attempt would hang.
	block := make(chan struct{})
	defer close(block)
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-block }))
	defer srv.Close()
	d := &notify.Dispatcher{Sinks: []notify.Sink{&notify.Slack{WebhookURL: srv.URL}}, AttemptTimeout: time.Hour}
	returned := make(chan struct{})
	go func() {
		d.Observe(context.Background(), engine.Event{Type: engine.EventFinished, Run: finishedRun()})
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(time.Minute): // a watchdog, not a measurement
		t.Fatal("Observe blocked on Slack")
	}
}

func TestLogSinkIsTheDefaultReport(t *testing.T) {
	var buf bytes.Buffer
	_, err := notify.Log{Logger: slog.New(slog.NewTextHandler(&buf, nil))}.Notify(context.Background(), finishedRun(), notify.KindFinished)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"level=WARN", "verdict=FAIL", `rto="6m2s / target 5m"`, "fail-open window"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log lacks %q: %s", want, buf.String())
		}
	}
}

func TestSlackFromEnv(t *testing.T) {
	cases := []struct {
		name                    string
		webhook, token, channel string
		wantNil, wantErr        bool
	}{
		{name: "nothing configured", wantNil: true},
		{name: "webhook", webhook: "https://hooks.example/x"},
		{name: "token needs channel", token: "xoxb", wantErr: true},
		{name: "not both", webhook: "https://hooks.example/x", token: "xoxb", channel: "#c", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("DRILLBOT_SLACK_WEBHOOK_URL", tc.webhook)
			t.Setenv("DRILLBOT_SLACK_TOKEN", tc.token)
			t.Setenv("DRILLBOT_SLACK_CHANNEL", tc.channel)
			s, err := notify.SlackFromEnv()
			if (err != nil) != tc.wantErr || (s == nil) != (tc.wantNil || tc.wantErr) {
				t.Errorf("SlackFromEnv = %v, %v", s, err)
			}
			if err != nil && strings.Contains(err.Error(), "xoxb") {
				t.Errorf("error leaks the token: %v", err)
			}
		})
	}
}

func TestTransportErrorsDoNotLeakTheWebhookURL(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/services/T000/B000/sEcReT-webhook-token"
	srv.Close() // connection refused from now on
	_, failed, log := dispatch(t, &notify.Slack{WebhookURL: url})
	if len(failed) != 1 {
		t.Fatalf("failures %v", failed)
	}
	if !strings.Contains(log, "connection refused") || strings.Contains(log, "sEcReT") {
		t.Errorf("want the cause without the URL, got:\n%s", log)
	}
}

func TestEventsTellTheStory(t *testing.T) {
	rec := record.NewFakeRecorder(10)
	e := notify.Events{Recorder: rec}
	run := finishedRun()
	for _, ev := range []engine.Event{
		{Type: engine.EventPhaseStarted, Phase: v1alpha1.PhaseRecovering, Run: run},
		{Type: engine.EventMilestone, Message: "admission-enforcing", Run: run},
		{Type: engine.EventPhaseFinished, Phase: v1alpha1.PhaseRecovering, Err: errors.New("timed out"), Run: run},
		{Type: engine.EventFinished, Run: run},
	} {
		e.Observe(context.Background(), ev)
	}
	close(rec.Events)
	var got []string
	for ev := range rec.Events {
		got = append(got, ev)
	}
	want := []string{
		"Normal Recovering Recovering started",
		"Normal Milestone recovery milestone: admission-enforcing",
		"Warning RecoveringFailed Recovering failed: timed out",
		"Warning FAIL FAIL: RTO 6m2s exceeds target 5m0s (RTO 6m2s, RPO 0s)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// recordingSink records the kinds it was asked to deliver, with titles.
type recordingSink struct {
	mu     sync.Mutex
	titles []string
}

func (*recordingSink) Name() string { return "recording" }
func (r *recordingSink) Notify(_ context.Context, run *v1alpha1.DrillRun, kind notify.Kind) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.titles = append(r.titles, string(kind)+": "+notify.Summarize(run, kind).Title)
	return false, nil
}

// TestRevertFailedAndLaterRevertedAreSaid: the FAIL message of a run whose
// revert failed says the fault may still be active; retries that fail again
// send nothing more; the retry that reverts it says so.
func TestRevertFailedAndLaterRevertedAreSaid(t *testing.T) {
	sink := &recordingSink{}
	d := &notify.Dispatcher{Sinks: []notify.Sink{sink}}
	open := finishedRun()
	open.Status.Phase = v1alpha1.PhaseRevertFailed
	open.Status.Journal = []v1alpha1.JournalEntry{{ID: "1-delete-pods", State: v1alpha1.JournalFailed}}
	d.Observe(context.Background(), engine.Event{Type: engine.EventFinished, Run: open.DeepCopy()})
	open.Status.RevertAttempts = 1
	d.Observe(context.Background(), engine.Event{Type: engine.EventRevertRetried, Run: open.DeepCopy(), Err: errors.New("still denied")})
	done := open.DeepCopy()
	done.Status.Phase, done.Status.RevertAttempts = v1alpha1.PhaseCompleted, 2
	done.Status.Journal[0].State = v1alpha1.JournalReverted
	d.Observe(context.Background(), engine.Event{Type: engine.EventRevertRetried, Run: done})
	d.Wait(context.Background())
	sink.mu.Lock()
	defer sink.mu.Unlock()
	slices.Sort(sink.titles) // deliveries run concurrently: "finished" < "reverted"
	if len(sink.titles) != 2 || !strings.Contains(sink.titles[0], "finished: ") || !strings.Contains(sink.titles[0], "FAULT MAY STILL BE ACTIVE") ||
		!strings.Contains(sink.titles[1], "reverted: ") || !strings.Contains(sink.titles[1], "attempt 2") || !strings.Contains(sink.titles[1], "stays FAIL") {
		t.Errorf("messages:\n%s", strings.Join(sink.titles, "\n"))
	}
}

// TestArchiveFailureIsSaidOnceAndRecorded: a run whose evidence cannot be
// archived is said in Slack on the first failure only (the retries are in
// the Events and the metric), and every attempt is an Event on the run.
func TestArchiveFailureIsSaidOnceAndRecorded(t *testing.T) {
	sink := &recordingSink{}
	d := &notify.Dispatcher{Sinks: []notify.Sink{sink}}
	rec := record.NewFakeRecorder(10)
	e := notify.Events{Recorder: rec}
	run := finishedRun()
	for attempt := int32(1); attempt <= 3; attempt++ {
		run.Status.Archive = &v1alpha1.ArchiveStatus{Attempts: attempt, LastError: "dial tcp: connection refused"}
		ev := engine.Event{Type: engine.EventArchiveFailed, Run: run.DeepCopy(), Err: errors.New("dial tcp: connection refused")}
		d.Observe(context.Background(), ev)
		e.Observe(context.Background(), ev)
	}
	run.Status.Archive = &v1alpha1.ArchiveStatus{Attempts: 4, Object: "prod/restore/0000000003.json", Seq: 3, Digest: "sha256:ab"}
	d.Observe(context.Background(), engine.Event{Type: engine.EventArchived, Run: run.DeepCopy()})
	e.Observe(context.Background(), engine.Event{Type: engine.EventArchived, Run: run.DeepCopy()})
	d.Wait(context.Background())
	close(rec.Events)
	var events []string
	for ev := range rec.Events {
		events = append(events, ev)
	}
	if len(events) != 4 || !strings.HasPrefix(events[0], "Warning ArchiveFailed evidence not archived (attempt 1, retried)") ||
		!strings.HasPrefix(events[3], "Normal Archived evidence archived: prod/restore/0000000003.json (place 3") {
		t.Errorf("events:\n%s", strings.Join(events, "\n"))
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.titles) != 1 || !strings.Contains(sink.titles[0], "archive-failed: ") || !strings.Contains(sink.titles[0], "not archived: dial tcp: connection refused") {
		t.Errorf("messages:\n%s", strings.Join(sink.titles, "\n"))
	}
}
