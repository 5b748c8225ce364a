package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

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

// Notify implements Sink.
func (s *Slack) Notify(ctx context.Context, run *v1alpha1.DrillRun, kind Kind) (bool, error) {
	sum := Summarize(run, kind)
	blocks := Blocks(sum)
	client := s.Client
	if client == nil {
		client = http.DefaultClient
	}
	var err error
	if s.WebhookURL != "" {
		err = slack.PostWebhookCustomHTTPContext(ctx, s.WebhookURL, client, &slack.WebhookMessage{
			Text:        sum.Title,
			Attachments: []slack.Attachment{{Color: sum.Color, Fallback: sum.Text(), Blocks: slack.Blocks{BlockSet: blocks}}},
		})
	} else {
		opts := []slack.Option{slack.OptionHTTPClient(client)}
		if s.APIURL != "" {
			opts = append(opts, slack.OptionAPIURL(s.APIURL))
		}
		_, _, err = slack.New(s.Token, opts...).PostMessageContext(ctx, s.Channel,
			slack.MsgOptionText(sum.Title, false),
			slack.MsgOptionAttachments(slack.Attachment{Color: sum.Color, Fallback: sum.Text(), Blocks: slack.Blocks{BlockSet: blocks}}))
	}
	return classify(err)
}

// classify says whether a Slack error is worth retrying.
func classify(err error) (bool, error) {
	if err == nil {
		return false, nil
	}
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return true, &RetryAfterError{After: rl.RetryAfter, Err: errors.New("slack: rate limited (HTTP 429)")}
	}
	var sc slack.StatusCodeError
	if errors.As(err, &sc) {
		transient := sc.Code >= 500 || sc.Code == http.StatusTooManyRequests || sc.Code == http.StatusRequestTimeout
		return transient, fmt.Errorf("slack: HTTP %d", sc.Code)
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return false, fmt.Errorf("slack: %s", se.Err) // e.g. channel_not_found, invalid_auth
	}
	// Transport errors (connection refused, timeouts) are transient.
	return true, fmt.Errorf("slack: %w", Redact(err))
}

// Blocks renders a Summary as Block Kit blocks.
func Blocks(s Summary) []slack.Block {
	md := func(t string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.MarkdownType, t, false, false)
	}
	blocks := []slack.Block{
		slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, strings.TrimSpace(s.Verdict+" · "+s.Drill), true, false)),
		slack.NewSectionBlock(md(s.Title), []*slack.TextBlockObject{
			md("*Scenario*\n" + s.Scenario), md("*Target*\n" + s.Target),
			md("*RTO*\n" + s.RTO), md("*RPO*\n" + s.RPO),
		}, nil),
	}
	if s.Reason != "" {
		blocks = append(blocks, slack.NewSectionBlock(md("*Reason*\n"+s.Reason), nil, nil))
	}
	if len(s.Detection) > 0 {
		blocks = append(blocks, slack.NewSectionBlock(md("*Detection* (disaster → alert firing)\n"+strings.Join(s.Detection, "\n")), nil, nil))
	}
	if len(s.Breakdown) > 0 {
		blocks = append(blocks, slack.NewSectionBlock(md("*RTO breakdown*\n"+strings.Join(s.Breakdown, "\n")), nil, nil))
	}
	if len(s.Phases) > 0 {
		blocks = append(blocks, slack.NewSectionBlock(md("*Phases*\n"+strings.Join(s.Phases, "\n")), nil, nil))
	}
	if len(s.Findings) > 0 {
		blocks = append(blocks, slack.NewSectionBlock(md("*Findings*\n• "+strings.Join(s.Findings, "\n• ")), nil, nil))
	}
	blocks = append(blocks, slack.NewContextBlock("", md("`"+s.Describe+"`")))
	return blocks
}
