package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
)

// Slack posts Block Kit messages through an incoming webhook, or with a bot
// token to a channel. The webhook URL and token are secrets: they never
// appear in errors or logs.
type Slack struct {
	WebhookURL string
	Token      string
	Channel    string
	// APIURL overrides Slack's API base URL (tests).
	APIURL string
	Client *http.Client
	// Logger, when set, is told when Slack refused the blocks and the
	// plain-text message was sent instead.
	Logger *slog.Logger
}

// SlackFromEnv reads DRILLBOT_SLACK_WEBHOOK_URL, or DRILLBOT_SLACK_TOKEN with
// DRILLBOT_SLACK_CHANNEL (the chart maps them from a Secret). It returns nil
// when neither is set.
func SlackFromEnv() (*Slack, error) {
	s := &Slack{WebhookURL: os.Getenv("DRILLBOT_SLACK_WEBHOOK_URL"), Token: os.Getenv("DRILLBOT_SLACK_TOKEN"),
		Channel: os.Getenv("DRILLBOT_SLACK_CHANNEL")}
	switch {
	case s.WebhookURL == "" && s.Token == "":
		return nil, nil
	case s.WebhookURL != "" && s.Token != "":
		return nil, errors.New("slack: set DRILLBOT_SLACK_WEBHOOK_URL or DRILLBOT_SLACK_TOKEN, not both")
	case s.Token != "" && s.Channel == "":
		return nil, errors.New("slack: DRILLBOT_SLACK_TOKEN needs DRILLBOT_SLACK_CHANNEL")
	}
	return s, nil
}

// Name implements Sink.
func (s *Slack) Name() string { return "slack" }

// Notify implements Sink. When Slack refuses the message's blocks
// (invalid_blocks, msg_blocks_too_long, a webhook's 400), it sends the same
// report at once as plain text: a rendering fault must not lose a message,
// least of all one saying that a fault may still be active.
func (s *Slack) Notify(ctx context.Context, run *v1alpha1.DrillRun, kind Kind) (bool, error) {
	sum := Summarize(run, kind)
	text := sum.Text()
	err := s.post(ctx, sum.Title, &slack.Attachment{Color: sum.Color, Fallback: text, Blocks: slack.Blocks{BlockSet: Blocks(sum)}})
	if err == nil || !refusesBlocks(err) {
		return transient(err), err
	}
	s.logger().Warn("Slack refused the message's blocks; sending it as plain text", "err", err)
	if ferr := s.post(ctx, text, nil); ferr != nil {
		return transient(ferr), fmt.Errorf("%w; its plain-text fallback: %w", err, ferr)
	}
	return false, nil
}

// post sends one message: text, with att when not nil. Its error is a
// *RetryAfterError, a *slackError or, for a transport failure, an error
// without the webhook URL.
func (s *Slack) post(ctx context.Context, text string, att *slack.Attachment) error {
	client := s.Client
	if client == nil {
		client = http.DefaultClient
	}
	if s.WebhookURL != "" {
		msg := &slack.WebhookMessage{Text: mrkdwn(text)}
		if att != nil {
			msg.Attachments = []slack.Attachment{*att}
		}
		return s.postWebhook(ctx, client, msg)
	}
	opts := []slack.Option{slack.OptionHTTPClient(client)}
	if s.APIURL != "" {
		opts = append(opts, slack.OptionAPIURL(s.APIURL))
	}
	msg := []slack.MsgOption{slack.MsgOptionText(text, true)}
	if att != nil {
		msg = append(msg, slack.MsgOptionAttachments(*att))
	}
	_, _, err := slack.New(s.Token, opts...).PostMessageContext(ctx, s.Channel, msg...)
	var (
		rl *slack.RateLimitedError
		sc slack.StatusCodeError
		se slack.SlackErrorResponse
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &rl):
		return &RetryAfterError{After: rl.RetryAfter, Err: &slackError{Status: http.StatusTooManyRequests}}
	case errors.As(err, &sc):
		return &slackError{Status: sc.Code}
	case errors.As(err, &se):
		return &slackError{Status: http.StatusOK, Code: se.Err}
	}
	// Transport errors (connection refused, timeouts), and a Retry-After
	// slack-go could not read.
	return fmt.Errorf("slack: %w", Redact(err))
}

// postWebhook posts msg to the incoming webhook. slack-go's own poster drops
// the body of an error answer, which names the cause ("invalid_blocks").
func (s *Slack) postWebhook(ctx context.Context, client *http.Client, msg *slack.WebhookMessage) error {
	raw, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("slack: encoding the message: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.WebhookURL, bytes.NewReader(raw))
	if err != nil {
		// Its error would quote the URL, a secret.
		return &slackError{Code: "invalid_webhook_url"}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("slack: %w", Redact(err))
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
	}()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	e := &slackError{Status: resp.StatusCode}
	if code := strings.TrimSpace(string(body)); errorCode.MatchString(code) {
		e.Code = code
	}
	if after := retryAfter(resp.Header.Get("Retry-After"), time.Now()); resp.StatusCode == http.StatusTooManyRequests && after > 0 {
		return &RetryAfterError{After: after, Err: e}
	}
	return e
}

// errorCode is the shape of Slack's error codes; a body of another shape
// (an HTML error page) is not quoted.
var errorCode = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(h string, now time.Time) time.Duration {
	if secs, err := strconv.Atoi(h); err == nil {
		return time.Duration(max(secs, 0)) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// slackError is Slack's answer to a message it did not take: the HTTP
// status, and its error code when it gave one.
type slackError struct {
	Status int
	Code   string
}

func (e *slackError) Error() string {
	switch {
	case e.Status == 0:
		return "slack: " + e.Code
	case e.Code == "":
		return fmt.Sprintf("slack: HTTP %d", e.Status)
	case e.Status == http.StatusOK:
		return "slack: " + e.Code // the Web API answers its errors with 200
	}
	return fmt.Sprintf("slack: HTTP %d %s", e.Status, e.Code)
}

// transientCodes are the Web API's errors that a later attempt may not get.
var transientCodes = map[string]bool{
	"ratelimited": true, "rate_limited": true, "internal_error": true, "service_unavailable": true, "request_timeout": true,
}

// transient says whether a failed post is worth retrying: a rate limit,
// Slack's own outage, a transport failure. What Slack refused for good
// (channel_not_found, invalid_auth, a 4xx) is not.
func transient(err error) bool {
	if err == nil {
		return false
	}
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		return true
	}
	var se *slackError
	if !errors.As(err, &se) {
		return true
	}
	return se.Status >= 500 || se.Status == http.StatusTooManyRequests || se.Status == http.StatusRequestTimeout || transientCodes[se.Code]
}

// refusesBlocks says whether Slack refused a message for its blocks or
// attachments (invalid_blocks, invalid_blocks_format, msg_blocks_too_long,
// invalid_attachments, too_many_attachments), its size (msg_too_long) or
// its shape (invalid_payload): the plain text may still go through. An
// answer that names no cause is not taken for one.
func refusesBlocks(err error) bool {
	var se *slackError
	if !errors.As(err, &se) {
		return false
	}
	c := se.Code
	return strings.Contains(c, "block") || strings.Contains(c, "attachment") || c == "msg_too_long" || c == "invalid_payload"
}

func (s *Slack) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}
