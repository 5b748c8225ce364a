package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/notify"
)

// Slack's Block Kit limits (https://docs.slack.dev/reference/block-kit/blocks):
// a message holds at most 50 blocks; a section's text at most 3,000
// characters and each of its at most 10 fields 2,000; a header's text 150; a
// context block at most 10 elements. Slack also refuses a message whose
// blocks hold more than about 13,000 characters in all (msg_blocks_too_long,
// slackapi/bolt-js#2509): the test allows 12,000. Lengths are counted in
// bytes here: a byte count is never below Slack's count of characters.
const (
	slackMaxBlocks      = 50
	slackMaxSectionText = 3000
	slackMaxFieldText   = 2000
	slackMaxHeaderText  = 150
	slackMaxElements    = 10
	slackMaxBlocksText  = 12000
	slackMaxText        = 4000 // chat.postMessage: keep text within 4,000
)

// bigRun is a run whose report is far longer than one Slack message: n
// findings of 100 characters each, numbered so a test can count them.
func bigRun(n int) *v1alpha1.DrillRun {
	run := finishedRun()
	run.Status.Findings = nil
	for i := range n {
		f := fmt.Sprintf("finding %03d: ", i)
		run.Status.Findings = append(run.Status.Findings, f+strings.Repeat("x", 100-len(f)))
	}
	return run
}

// openFault makes run one whose revert failed: its fault may still be active.
func openFault(run *v1alpha1.DrillRun) *v1alpha1.DrillRun {
	run.Status.Phase = v1alpha1.PhaseRevertFailed
	run.Status.Journal = []v1alpha1.JournalEntry{{ID: "1-delete-pods", State: v1alpha1.JournalFailed}}
	return run
}

// blockTexts checks every block of blocks against Slack's limits and returns
// their texts in order, one string per block.
func blockTexts(t *testing.T, blocks []slack.Block) []string {
	t.Helper()
	if len(blocks) > slackMaxBlocks {
		t.Errorf("%d blocks, Slack takes at most %d", len(blocks), slackMaxBlocks)
	}
	check := func(what, text string, limit int) {
		t.Helper()
		if len(text) > limit || utf8.RuneCountInString(text) > limit {
			t.Errorf("%s: %d bytes, Slack takes at most %d characters", what, len(text), limit)
		}
		if strings.TrimSpace(text) == "" {
			t.Errorf("%s is empty (Slack refuses it)", what)
		}
	}
	var texts []string
	total := 0
	for i, b := range blocks {
		var parts []string
		switch b := b.(type) {
		case *slack.HeaderBlock:
			check(fmt.Sprintf("block %d header", i), b.Text.Text, slackMaxHeaderText)
			parts = append(parts, b.Text.Text)
		case *slack.SectionBlock:
			check(fmt.Sprintf("block %d section text", i), b.Text.Text, slackMaxSectionText)
			parts = append(parts, b.Text.Text)
			if len(b.Fields) > slackMaxElements {
				t.Errorf("block %d: %d fields", i, len(b.Fields))
			}
			for j, f := range b.Fields {
				check(fmt.Sprintf("block %d field %d", i, j), f.Text, slackMaxFieldText)
				parts = append(parts, f.Text)
			}
		case *slack.ContextBlock:
			if len(b.ContextElements.Elements) > slackMaxElements {
				t.Errorf("block %d: %d context elements", i, len(b.ContextElements.Elements))
			}
			for j, e := range b.ContextElements.Elements {
				tx, ok := e.(*slack.TextBlockObject)
				if !ok {
					t.Fatalf("block %d element %d: %T", i, j, e)
				}
				check(fmt.Sprintf("block %d context %d", i, j), tx.Text, slackMaxSectionText)
				parts = append(parts, tx.Text)
			}
		default:
			t.Fatalf("block %d: unexpected %T", i, b)
		}
		text := strings.Join(parts, "\n")
		total += len(text)
		texts = append(texts, text)
	}
	if total > slackMaxBlocksText {
		t.Errorf("the blocks hold %d bytes of text; Slack refuses about 13,000 (msg_blocks_too_long)", total)
	}
	return texts
}

var moreRE = regexp.MustCompile(`… and (\d+) more (\w+): ` + "`?" + `kubectl -n drillbot-system describe drillrun kill-kyverno-20261124-030000-abcd`)

// TestBlocksStayWithinSlackLimits: a report too long for one message is
// rendered within Block Kit's limits, says how many lines it left out and
// where to read them, and a fault that may still be active is said first.
func TestBlocksStayWithinSlackLimits(t *testing.T) {
	long := func(n int, prefix string) []string {
		var out []string
		for i := range n {
			p := fmt.Sprintf("%s %03d: ", prefix, i)
			out = append(out, p+strings.Repeat("y", 100-len(p)))
		}
		return out
	}
	cases := []struct {
		name   string
		run    func() *v1alpha1.DrillRun
		counts map[string]int // the lines of each kind, by the word the "more" line uses
		open   bool
	}{
		{name: "200 findings of 100 characters", run: func() *v1alpha1.DrillRun { return bigRun(200) },
			counts: map[string]int{"findings": 200}},
		{name: "200 findings, revert failed", run: func() *v1alpha1.DrillRun { return openFault(bigRun(200)) },
			counts: map[string]int{"findings": 200}, open: true},
		{name: "a 10,000-character reason and 300 detections", run: func() *v1alpha1.DrillRun {
			r := bigRun(50)
			r.Status.Reason = strings.Repeat("reason words ", 770)
			for i := range 300 {
				r.Status.Detections = append(r.Status.Detections, v1alpha1.Detection{
					Alert: fmt.Sprintf("Alert%03d%s", i, strings.Repeat("z", 60)), Within: "1m0s", Problem: "not firing within 1m0s of the disaster"})
			}
			return r
		}, counts: map[string]int{"findings": 50}},
		{name: "a 253-character drill name, revert failed", run: func() *v1alpha1.DrillRun {
			r := openFault(bigRun(3))
			r.Spec.Drill = strings.Repeat("d", 253)
			return r
		}, counts: map[string]int{"findings": 3}, open: true},
		{name: "one finding of 20,000 characters", run: func() *v1alpha1.DrillRun {
			r := finishedRun()
			r.Status.Findings = []string{strings.Repeat("<&>", 6000) + " end"}
			return r
		}, counts: map[string]int{"findings": 1}},
		{name: "many breakdown spans and phases", run: func() *v1alpha1.DrillRun {
			r := bigRun(120)
			for _, l := range long(400, "span") {
				r.Status.Breakdown = append(r.Status.Breakdown, v1alpha1.Span{Name: l, Duration: "1s"})
			}
			return r
		}, counts: map[string]int{"findings": 120}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			run := tc.run()
			texts := blockTexts(t, notify.Blocks(notify.Summarize(run, notify.KindFinished)))
			all := strings.Join(texts, "\n")
			if tc.open {
				if !strings.Contains(texts[0], "FAULT MAY STILL BE ACTIVE") {
					t.Errorf("the header does not say the fault may still be active: %q", texts[0])
				}
				if !strings.HasPrefix(texts[1], ":rotating_light: FAULT MAY STILL BE ACTIVE") {
					t.Errorf("the first section does not start with the open fault: %.200q", texts[1])
				}
			}
			// Every finding is shown or counted in "… and N more".
			shown := 0
			for _, f := range run.Status.Findings {
				if strings.Contains(all, f[:min(len(f), 40)]) || strings.Contains(all, "&lt;&amp;&gt;") {
					shown++
				}
			}
			left := 0
			for _, m := range moreRE.FindAllStringSubmatch(all, -1) {
				if m[2] == "findings" {
					left, _ = strconv.Atoi(m[1])
				}
			}
			if shown+left != tc.counts["findings"] || shown == 0 {
				t.Errorf("%d findings shown and %d said to be left out, of %d", shown, left, tc.counts["findings"])
			}
			if len(run.Status.Findings) >= 200 && left == 0 {
				t.Errorf("the message does not say how many findings it left out:\n%s", all[max(0, len(all)-400):])
			}
			if !strings.Contains(all, "kubectl -n drillbot-system describe drillrun") {
				t.Errorf("the message lost the describe command")
			}
		})
	}
}

// scripted is a fake Slack (webhook and Web API) on loopback answering each
// request with the next scripted reply; the last one repeats.
type scripted struct {
	*httptest.Server
	mu      sync.Mutex
	replies []reply
	reqs    []posted
}

type reply struct {
	status     int
	body       string // a webhook's plain body, or the API's JSON
	retryAfter string
}

// posted is what one request carried: the message's text and whether it had
// blocks (in attachments or at the top).
type posted struct {
	path      string
	text      string
	hasBlocks bool
}

func newScripted(t *testing.T, replies ...reply) *scripted {
	s := &scripted{replies: replies}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		p := posted{path: r.URL.Path}
		if strings.HasPrefix(r.URL.Path, "/api/") {
			v, err := url.ParseQuery(string(raw))
			if err != nil {
				t.Errorf("form: %v", err)
			}
			p.text = v.Get("text")
			p.hasBlocks = v.Get("attachments") != "" || v.Get("blocks") != ""
		} else {
			var m struct {
				Text        string            `json:"text"`
				Attachments []json.RawMessage `json:"attachments"`
				Blocks      []json.RawMessage `json:"blocks"`
			}
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Errorf("webhook JSON: %v", err)
			}
			p.text, p.hasBlocks = m.Text, len(m.Attachments)+len(m.Blocks) > 0
		}
		s.mu.Lock()
		s.reqs = append(s.reqs, p)
		rep := s.replies[min(len(s.reqs), len(s.replies))-1]
		s.mu.Unlock()
		if rep.retryAfter != "" {
			w.Header().Set("Retry-After", rep.retryAfter)
		}
		w.WriteHeader(rep.status)
		_, _ = io.WriteString(w, rep.body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *scripted) posted() []posted {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]posted(nil), s.reqs...)
}

const secretHook = "/services/T000/B000/sEcReT-webhook-token"

// sinks returns the two ways drillbot posts to Slack, at srv.
func sinks(srv *scripted) map[string]*notify.Slack {
	return map[string]*notify.Slack{
		"webhook": {WebhookURL: srv.URL + secretHook},
		"token":   {Token: "xoxb-sEcReT-token", Channel: "#dr-drills", APIURL: srv.URL + "/api/"},
	}
}

var (
	apiOK = reply{status: 200, body: `{"ok":true,"channel":"C1","ts":"1.2"}`}
	hook  = reply{status: 200, body: "ok"}
)

func apiErr(code string) reply {
	return reply{status: 200, body: `{"ok":false,"error":"` + code + `"}`}
}

// deliverRun dispatches run through a Dispatcher to sink and returns its sleeps,
// failures and log.
func deliverRun(t *testing.T, sink notify.Sink, run *v1alpha1.DrillRun) (sleeps []time.Duration, failed []string, log string) {
	t.Helper()
	var (
		mu  sync.Mutex
		buf strings.Builder
	)
	d := &notify.Dispatcher{
		Sinks:       []notify.Sink{sink},
		Logger:      newTextLogger(&lockedWriter{mu: &mu, w: &buf}),
		MaxAttempts: 4, Backoff: time.Second, MaxDelay: 30 * time.Second,
		Sleep: func(_ context.Context, d time.Duration) error {
			mu.Lock()
			sleeps = append(sleeps, d)
			mu.Unlock()
			return nil
		},
		Failed: func(s string) { mu.Lock(); failed = append(failed, s); mu.Unlock() },
	}
	d.Observe(context.Background(), engine.Event{Type: engine.EventFinished, Run: run})
	d.Wait(context.Background())
	mu.Lock()
	defer mu.Unlock()
	return sleeps, failed, buf.String()
}

// TestSlackRefusingBlocksGetsPlainText: when Slack refuses the blocks
// (invalid_blocks, invalid_attachments, msg_blocks_too_long), the same report
// goes out as a plain-text message within Slack's text limit, its first line
// saying that the fault may still be active; nothing is counted as lost.
func TestSlackRefusingBlocksGetsPlainText(t *testing.T) {
	cases := []struct {
		name    string
		sink    string
		refusal reply
		ok      reply
	}{
		{name: "webhook invalid_blocks", sink: "webhook", refusal: reply{status: 400, body: "invalid_blocks"}, ok: hook},
		{name: "webhook invalid_attachments", sink: "webhook", refusal: reply{status: 400, body: "invalid_attachments"}, ok: hook},
		{name: "API invalid_blocks", sink: "token", refusal: apiErr("invalid_blocks"), ok: apiOK},
		{name: "API msg_blocks_too_long", sink: "token", refusal: apiErr("msg_blocks_too_long"), ok: apiOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newScripted(t, tc.refusal, tc.ok)
			_, failed, log := deliverRun(t, sinks(srv)[tc.sink], openFault(bigRun(200)))
			reqs := srv.posted()
			if len(failed) != 0 || len(reqs) != 2 {
				t.Fatalf("failures %v after %d requests; want the plain-text fallback delivered\n%s", failed, len(reqs), log)
			}
			fb := reqs[1]
			if fb.hasBlocks {
				t.Errorf("the fallback carries blocks again")
			}
			if len(fb.text) > slackMaxText {
				t.Errorf("fallback text is %d bytes, over %d", len(fb.text), slackMaxText)
			}
			first, _, _ := strings.Cut(fb.text, "\n")
			if !strings.Contains(first, "FAULT MAY STILL BE ACTIVE") {
				t.Errorf("the fallback's first line does not say the fault may still be active: %q", first)
			}
			if m := moreRE.FindStringSubmatch(fb.text); m == nil {
				t.Errorf("the fallback does not say what it left out:\n%s", fb.text[max(0, len(fb.text)-300):])
			}
			if strings.Contains(log, "sEcReT") {
				t.Errorf("a secret leaked into the log:\n%s", log)
			}
		})
	}
}

// TestSlackTransientFailuresAreRetried: rate limits (HTTP 429 with or
// without Retry-After, the API's "ratelimited" answer) and Slack's own
// outages are retried with bounded backoff; a Retry-After is honoured, not
// cut short; what Slack refuses for good is not retried.
func TestSlackTransientFailuresAreRetried(t *testing.T) {
	cases := []struct {
		name       string
		sink       string
		replies    []reply
		wantReqs   int
		wantSleeps []time.Duration
		wantFailed bool
	}{
		{name: "webhook 429 rate_limited with Retry-After", sink: "webhook",
			replies: []reply{{status: 429, body: "rate_limited", retryAfter: "7"}, hook}, wantReqs: 2, wantSleeps: []time.Duration{7 * time.Second}},
		{name: "webhook 429 without Retry-After", sink: "webhook",
			replies: []reply{{status: 429, body: "rate_limited"}, hook}, wantReqs: 2, wantSleeps: []time.Duration{time.Second}},
		{name: "a Retry-After longer than the backoff cap is honoured", sink: "webhook",
			replies: []reply{{status: 429, body: "rate_limited", retryAfter: "120"}, hook}, wantReqs: 2, wantSleeps: []time.Duration{2 * time.Minute}},
		{name: "API 429 with Retry-After", sink: "token",
			replies: []reply{{status: 429, retryAfter: "3"}, apiOK}, wantReqs: 2, wantSleeps: []time.Duration{3 * time.Second}},
		{name: "API ratelimited", sink: "token",
			replies: []reply{apiErr("ratelimited"), apiOK}, wantReqs: 2, wantSleeps: []time.Duration{time.Second}},
		{name: "API rate_limited", sink: "token",
			replies: []reply{apiErr("rate_limited"), apiOK}, wantReqs: 2, wantSleeps: []time.Duration{time.Second}},
		{name: "API internal_error then 503", sink: "token",
			replies: []reply{apiErr("internal_error"), {status: 503}, apiOK}, wantReqs: 3, wantSleeps: []time.Duration{time.Second, 2 * time.Second}},
		{name: "webhook rollup_error (500)", sink: "webhook",
			replies: []reply{{status: 500, body: "rollup_error"}, hook}, wantReqs: 2, wantSleeps: []time.Duration{time.Second}},
		{name: "API channel_not_found is not retried", sink: "token",
			replies: []reply{apiErr("channel_not_found")}, wantReqs: 1, wantFailed: true},
		{name: "webhook no_service (404) is not retried", sink: "webhook",
			replies: []reply{{status: 404, body: "no_service"}}, wantReqs: 1, wantFailed: true},
		{name: "a refused fallback is not retried forever", sink: "webhook",
			replies: []reply{{status: 400, body: "invalid_blocks"}, {status: 400, body: "invalid_payload"}}, wantReqs: 2, wantFailed: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newScripted(t, tc.replies...)
			sleeps, failed, log := deliverRun(t, sinks(srv)[tc.sink], finishedRun())
			if got := len(srv.posted()); got != tc.wantReqs {
				t.Errorf("%d requests, want %d\n%s", got, tc.wantReqs, log)
			}
			if fmt.Sprint(sleeps) != fmt.Sprint(tc.wantSleeps) {
				t.Errorf("slept %v, want %v", sleeps, tc.wantSleeps)
			}
			if (len(failed) == 1) != tc.wantFailed {
				t.Errorf("failures counted %v, want failed=%v\n%s", failed, tc.wantFailed, log)
			}
			if strings.Contains(log, "sEcReT") {
				t.Errorf("a secret leaked into the log:\n%s", log)
			}
		})
	}
}

// TestSlackErrorsKeepSecrets: whatever Slack answers, the error a sink
// returns names neither the webhook URL nor the token.
func TestSlackErrorsKeepSecrets(t *testing.T) {
	for _, rep := range []reply{{status: 400, body: "invalid_payload"}, {status: 500}, {status: 429, retryAfter: "soon"}, apiErr("invalid_auth")} {
		srv := newScripted(t, rep)
		for name, s := range sinks(srv) {
			if name == "webhook" && rep.status == 200 {
				continue // a webhook's 200 is success
			}
			_, err := s.Notify(context.Background(), finishedRun(), notify.KindFinished)
			if err == nil {
				t.Errorf("%s: %d %q: no error", name, rep.status, rep.body)
				continue
			}
			if strings.Contains(err.Error(), "sEcReT") {
				t.Errorf("%s: the error leaks a secret: %v", name, err)
			}
		}
	}
	closed := newScripted(t, hook)
	closed.Close()
	for name, s := range sinks(closed) {
		if _, err := s.Notify(context.Background(), finishedRun(), notify.KindFinished); err == nil || strings.Contains(err.Error(), "sEcReT") {
			t.Errorf("%s: connection refused gave %v", name, err)
		}
	}
}

func newTextLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
