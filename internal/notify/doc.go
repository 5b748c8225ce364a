// Package notify delivers drill results to people: Slack, or the log when no
// Slack is configured, and Kubernetes Events on the DrillRun. A sink is one
// method (Alertmanager's contract); retries, backoff, Retry-After and
// failure counting live once, in the Dispatcher around the sinks. A
// notification outage never blocks or fails a drill or its undo: deliveries
// run beside the run, bounded in attempts.
//
// A message must reach someone (EVIDENCE.md rule 9):
//   - Slack messages are rendered within Slack's limits (Block Kit's 50
//     blocks, 3,000 characters a section, 150 a header; about 13,000 for all
//     blocks; 4,000 for a message's text). What does not fit is counted in
//     "… and N more findings: kubectl -n <ns> describe drillrun <name>".
//   - A run whose revert failed says FAULT MAY STILL BE ACTIVE first: in the
//     header, the first section and the first line of the text, which no cut
//     reaches.
//   - When Slack refuses the blocks (invalid_blocks, msg_blocks_too_long,
//     invalid_attachments, ...) the same report goes out at once as plain
//     text.
//   - Rate limits (429 with Retry-After honoured up to MaxRetryAfter, the
//     Web API's ratelimited), 5xx and transport failures are retried with
//     bounded backoff; a delivery given up on is counted
//     (drillbot_notification_failures_total), and the chart's
//     DrillbotNotificationFailed alert fires on it.
//   - Webhook URLs and tokens never appear in errors or logs.
package notify
