package notify

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/slack-go/slack"
)

// Slack's limits on one message. Slack refuses a message that breaks one
// (invalid_blocks, msg_blocks_too_long), so the whole report would be lost:
// Blocks and Text render within them, and say what they left out and where
// to read it. Lengths are counted in bytes, never less than Slack's count of
// characters.
const (
	// Block Kit (docs.slack.dev/reference/block-kit): at most 50 blocks; a
	// section's text at most 3,000 characters, its fields 2,000 each; a
	// header's text 150; any text object 3,000.
	maxBlocks      = 50
	maxSectionText = 3000
	maxFieldText   = 2000
	maxHeaderText  = 150
	// maxBlocksText bounds the text of all blocks together. Slack refuses
	// blocks holding more than about 13,000 characters in all
	// (msg_blocks_too_long; undocumented, slackapi/bolt-js#2509); this
	// leaves room for the JSON around them.
	maxBlocksText = 10000
	// maxText bounds the plain-text message: chat.postMessage advises 4,000
	// characters at most (and cuts at 40,000).
	maxText = 4000
	// listReserve is the text kept back, while a list is packed, for each
	// list after it: enough for its heading, a line and "… and N more".
	listReserve = 1000
)

// openFaultText is what a message about an open fault says first.
const openFaultText = "FAULT MAY STILL BE ACTIVE"

// mrkdwn escapes the three characters Slack's mrkdwn gives a meaning to
// (a finding that says "<!channel>" must not page a channel).
var mrkdwn = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace

// cut shortens s to at most n bytes, at a character boundary, ending it
// with "…" when it cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ell = "…"
	n -= len(ell)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:max(n, 0)] + ell
}

// more says how many lines of a kind a message left out and where to read
// them all.
func more(n int, noun, describe string) string {
	return fmt.Sprintf("… and %d more %s: %s", n, noun, describe)
}

// list is one section of the report: a heading over lines.
type list struct {
	heading, noun, bullet string
	lines                 []string
}

// lists are the report's sections after its title, most telling first.
func (s Summary) lists() []list {
	var ls []list
	if s.Reason != "" {
		ls = append(ls, list{heading: "*Reason*", noun: "lines of the reason", lines: strings.Split(s.Reason, "\n")})
	}
	ls = append(ls,
		list{heading: "*Detection* (disaster → alert firing)", noun: "detections", lines: s.Detection},
		list{heading: "*RTO breakdown*", noun: "spans", lines: s.Breakdown},
		list{heading: "*Phases*", noun: "phases", lines: s.Phases},
		list{heading: "*Findings*", noun: "findings", bullet: "• ", lines: s.Findings},
	)
	return ls
}

// size is the text list l takes when nothing is left out.
func (l list) size() int {
	n := len(l.heading)
	for _, x := range l.lines {
		n += 1 + len(l.bullet) + len(mrkdwn(x))
	}
	return n
}

// pack renders l as at most maxSections sections of mrkdwn holding at most
// budget bytes in all. What does not fit is counted in a last line that
// names the command showing all of it.
func (l list) pack(maxSections, budget int, describe string) []string {
	lines := make([]string, len(l.lines))
	for i, x := range l.lines {
		lines[i] = l.bullet + mrkdwn(x)
	}
	if secs, n := fill(l.heading, lines, maxSections, budget, 0); n == len(lines) {
		return secs
	}
	// Pack again, keeping room for the longest "more" line.
	reserve := 1 + len(more(len(lines), l.noun, describe))
	secs, n := fill(l.heading, lines, maxSections, budget, reserve)
	secs[len(secs)-1] += "\n" + more(len(lines)-n, l.noun, describe)
	return secs
}

// fill packs lines under heading into sections of at most maxSectionText
// bytes, at most maxSections of them, at most budget bytes in all, keeping
// reserve bytes free in each; it returns the sections and how many lines
// they hold. A line too long for a section of its own is cut.
func fill(heading string, lines []string, maxSections, budget, reserve int) ([]string, int) {
	limit, budget := maxSectionText-reserve, budget-reserve
	cont := heading + " (continued)"
	var secs []string
	cur, used := heading, 0
	for i, line := range lines {
		line = cut(line, limit-len(cont)-1)
		switch {
		case len(cur)+1+len(line) <= limit && used+len(cur)+1+len(line) <= budget:
			cur += "\n" + line
		case cur != heading && len(secs)+1 < maxSections && used+len(cur)+len(cont)+1+len(line) <= budget:
			secs, used = append(secs, cur), used+len(cur)
			cur = cont + "\n" + line
		default:
			return append(secs, cur), i
		}
	}
	return append(secs, cur), len(lines)
}

// Blocks renders a Summary as Block Kit blocks within Slack's limits: each
// section is capped, long lists are split across sections and, past the
// limits, end with how many lines were left out and the command that shows
// them. An open fault is said first, in the header and the first section.
func Blocks(s Summary) []slack.Block {
	md := func(t string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.MarkdownType, t, false, false)
	}
	header := strings.TrimSpace(s.Verdict + " · " + s.Drill)
	if s.OpenFault {
		header = openFaultText + " · " + header
	}
	describe := "`" + mrkdwn(s.Describe) + "`"
	texts := []string{cut(header, maxHeaderText), cut(mrkdwn(s.Title), maxSectionText), cut(describe, maxSectionText)}
	fields := []string{"*Scenario*\n" + mrkdwn(s.Scenario), "*Target*\n" + mrkdwn(s.Target), "*RTO*\n" + mrkdwn(s.RTO), "*RPO*\n" + mrkdwn(s.RPO)}
	var fieldObjs []*slack.TextBlockObject
	for i := range fields {
		fields[i] = cut(fields[i], maxFieldText)
		fieldObjs = append(fieldObjs, md(fields[i]))
	}
	blocks := []slack.Block{
		slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, texts[0], true, false)),
		slack.NewSectionBlock(md(texts[1]), fieldObjs, nil),
	}
	footer := slack.NewContextBlock("", md(texts[2]))
	used := len(strings.Join(texts, "")) + len(strings.Join(fields, ""))
	var ls []list
	for _, l := range s.lists() {
		if len(l.lines) > 0 {
			ls = append(ls, l)
		}
	}
	// Each list may take what the lists after it do not need at least:
	// one block each, and their whole text up to listReserve.
	blocksLeft, textLeft := maxBlocks-len(blocks)-1, maxBlocksText-used
	for i, l := range ls {
		needBlocks, needText := 0, 0
		for _, later := range ls[i+1:] {
			needBlocks++
			needText += min(later.size(), listReserve)
		}
		for _, sec := range l.pack(blocksLeft-needBlocks, textLeft-needText, describe) {
			blocks = append(blocks, slack.NewSectionBlock(md(sec), nil, nil))
			blocksLeft--
			textLeft -= len(sec)
		}
	}
	return append(blocks, footer)
}

// Text is the Summary as plain text within Slack's limit on a message's
// text (Slack's fallback when it refuses the blocks). Its first line is the
// title, which says first when a fault may still be active; what does not
// fit is counted in a last line naming the command that shows it all.
func (s Summary) Text() string {
	type line struct{ text, noun string }
	lines := []line{
		{text: fmt.Sprintf("scenario %s, target %s", s.Scenario, s.Target)},
		{text: fmt.Sprintf("RTO %s, RPO %s", s.RTO, s.RPO)},
	}
	if s.Stop != "" {
		lines = append(lines, line{text: "stop condition: " + s.Stop})
	}
	for _, r := range strings.Split(s.Reason, "\n") {
		if r != "" {
			lines = append(lines, line{text: r})
		}
	}
	if len(s.Detection) > 0 {
		lines = append(lines, line{text: "detection: " + strings.Join(s.Detection, ", ")})
	}
	if len(s.Breakdown) > 0 {
		lines = append(lines, line{text: "breakdown: " + strings.Join(s.Breakdown, ", ")})
	}
	if len(s.Phases) > 0 {
		lines = append(lines, line{text: "phases: " + strings.Join(s.Phases, ", ")})
	}
	for _, f := range s.Findings {
		lines = append(lines, line{text: "finding: " + f, noun: "findings"})
	}
	title := cut(s.Title, maxText/4)
	full := len(title) + 1 + len(s.Describe)
	for _, l := range lines {
		full += 1 + len(l.text)
	}
	var b strings.Builder
	b.WriteString(title)
	if full <= maxText {
		for _, l := range lines {
			b.WriteString("\n" + l.text)
		}
		b.WriteString("\n" + s.Describe)
		return b.String()
	}
	room := maxText - len(title) - 1 - len(more(len(lines), "lines", s.Describe))
	kept := 0
	for _, l := range lines {
		t := cut(l.text, maxText/4)
		if 1+len(t) > room {
			break
		}
		b.WriteString("\n" + t)
		room -= 1 + len(t)
		kept++
	}
	noun := "findings"
	for _, l := range lines[kept:] {
		if l.noun != "findings" {
			noun = "lines"
		}
	}
	b.WriteString("\n" + more(len(lines)-kept, noun, s.Describe))
	return b.String()
}
