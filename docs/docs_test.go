// Package docs holds no code: its test keeps README.md and docs/ true to
// drillbot. Every drill snippet loads with drillbot's own loader, every
// relative link and #anchor resolves, every flag written after a drillbot
// command exists in the CLI's cobra tree, and every flag in that tree is
// written somewhere.
package docs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"unicode"

	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/scenarios"
)

// root is the repository, seen from this package.
const root = ".."

// fragmentMarker, as the first line of a yaml block, marks a drill snippet
// that is partial on purpose (e.g. only spec.alerts): it is not loaded.
const fragmentMarker = "# fragment"

// flagExemptions are flags of the command tree that need not be written in
// the docs, each with its reason.
var flagExemptions = map[string]string{
	"help":            "cobra's own, on every command; the docs say every command has --help",
	"no-descriptions": "cobra's completion command's own",
}

// doc is one markdown file.
type doc struct {
	path string // relative to the repository, slash-separated
	text string
}

// docFiles reads README.md and every .md under docs/.
func docFiles(t *testing.T) []doc {
	t.Helper()
	paths := []string{"README.md"}
	err := filepath.WalkDir(filepath.Join(root, "docs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".md") {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			paths = append(paths, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []doc
	for _, p := range paths {
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(p)))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, doc{path: p, text: string(b)})
	}
	return out
}

// block is a fenced code block.
type block struct {
	lang string
	line int // of the opening fence, 1-based
	body string
}

// split separates a markdown text into its fenced blocks and the prose
// between them (fenced lines blanked, so line numbers stay).
func split(text string) (blocks []block, prose string) {
	lines := strings.Split(text, "\n")
	var (
		in  *block
		out []string
		buf []string
	)
	for i, l := range lines {
		trimmed := strings.TrimSpace(l)
		if strings.HasPrefix(trimmed, "```") {
			if in == nil {
				in = &block{lang: strings.TrimSpace(strings.TrimPrefix(trimmed, "```")), line: i + 1}
				buf = nil
			} else {
				in.body = strings.Join(buf, "\n")
				blocks = append(blocks, *in)
				in = nil
			}
			out = append(out, "")
			continue
		}
		if in != nil {
			buf = append(buf, l)
			out = append(out, "")
			continue
		}
		out = append(out, l)
	}
	return blocks, strings.Join(out, "\n")
}

var (
	drillKind     = regexp.MustCompile(`(?m)^kind:\s*Drill\s*$`)
	specLine      = regexp.MustCompile(`(?m)^spec:\s*$`)
	scenarioLine  = regexp.MustCompile(`(?m)^\s+scenario:`)
	codeSpan      = regexp.MustCompile("`([^`]+)`")
	mdLink        = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	heading       = regexp.MustCompile(`^(#{1,6})\s+(.*?)\s*#*\s*$`)
	longFlag      = regexp.MustCompile(`--([a-z][a-z0-9-]*)`)
	schemeLink    = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
	htmlTag       = regexp.MustCompile(`<[^>]*>`)
	markdownLink  = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
	emphasisChars = strings.NewReplacer("*", "", "`", "")
)

// isDrillSnippet says whether a yaml block is a drill: kind Drill, or a
// spec holding a scenario.
func isDrillSnippet(b block) bool {
	if b.lang != "yaml" && b.lang != "yml" {
		return false
	}
	return drillKind.MatchString(b.body) || (specLine.MatchString(b.body) && scenarioLine.MatchString(b.body))
}

// checkSnippets loads every drill snippet of d with drillbot's own loader.
func checkSnippets(d doc, v drill.ParamsValidator) (problems []string, loaded, skipped int) {
	blocks, _ := split(d.text)
	for _, b := range blocks {
		if !isDrillSnippet(b) {
			continue
		}
		if strings.TrimSpace(strings.SplitN(b.body, "\n", 2)[0]) == fragmentMarker {
			skipped++
			continue
		}
		name := fmt.Sprintf("%s:%d", d.path, b.line)
		if _, err := drill.Parse(name, []byte(b.body), v); err != nil {
			problems = append(problems, fmt.Sprintf("%s: the drill snippet does not load: %v", name, err))
			continue
		}
		loaded++
	}
	return problems, loaded, skipped
}

// slug is GitHub's anchor for a heading: lower case, markup dropped,
// punctuation other than - and _ removed, spaces as hyphens.
func slug(h string) string {
	h = markdownLink.ReplaceAllString(h, "$1")
	h = htmlTag.ReplaceAllString(h, "")
	h = emphasisChars.Replace(h)
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case unicode.IsLetter(r), unicode.IsDigit(r), r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteRune('-')
		}
	}
	return b.String()
}

// anchors are the heading anchors of a markdown text, numbered as GitHub
// numbers repeated ones (-1, -2, ...).
func anchors(text string) map[string]bool {
	_, prose := split(text)
	out := map[string]bool{}
	seen := map[string]int{}
	for _, l := range strings.Split(prose, "\n") {
		m := heading.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		a := slug(m[2])
		n := seen[a]
		seen[a]++
		if n > 0 {
			a = fmt.Sprintf("%s-%d", a, n)
		}
		out[a] = true
	}
	return out
}

// checkLinks checks every relative link of d: the file or directory
// exists, and an #anchor names a heading of the markdown file it points to.
// read returns a file's text (ok false when it does not exist).
func checkLinks(d doc, read func(path string) (text string, isDir, ok bool)) []string {
	_, prose := split(d.text)
	prose = codeSpan.ReplaceAllString(prose, "")
	var problems []string
	for i, l := range strings.Split(prose, "\n") {
		for _, m := range mdLink.FindAllStringSubmatch(l, -1) {
			link := m[1]
			if schemeLink.MatchString(link) {
				continue
			}
			where := fmt.Sprintf("%s:%d", d.path, i+1)
			target, anchor, _ := strings.Cut(link, "#")
			path := d.path
			if target != "" {
				path = filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(d.path), target)))
			}
			text, isDir, ok := read(path)
			if !ok {
				problems = append(problems, fmt.Sprintf("%s: link %s: %s does not exist", where, link, path))
				continue
			}
			if anchor == "" || isDir || !strings.HasSuffix(path, ".md") {
				continue
			}
			if !anchors(text)[anchor] {
				problems = append(problems, fmt.Sprintf("%s: link %s: %s has no heading with anchor #%s", where, link, path, anchor))
			}
		}
	}
	return problems
}

// command is one command of the CLI's cobra tree, as the flag dump prints it.
type command struct {
	Path   string `json:"path"`
	Name   string `json:"name"`
	Hidden bool   `json:"hidden"`
	Flags  []struct {
		Name      string `json:"name"`
		Shorthand string `json:"shorthand"`
		Hidden    bool   `json:"hidden"`
	} `json:"flags"`
	Children []string `json:"children"`
}

// tree is the CLI's commands by path ("drillbot", "drillbot run", ...).
type tree map[string]command

func (c command) hasFlag(name string) bool {
	return slices.ContainsFunc(c.Flags, func(f struct {
		Name      string `json:"name"`
		Shorthand string `json:"shorthand"`
		Hidden    bool   `json:"hidden"`
	}) bool {
		return f.Name == name
	})
}

func (c command) hasShorthand(s string) bool {
	for _, f := range c.Flags {
		if f.Shorthand == s {
			return true
		}
	}
	return false
}

var (
	cliOnce sync.Once
	cliTree tree
	cliErr  error
)

// cli builds drillbot with one file added by go build -overlay
// (testdata/flagdump.go.txt), which calls the CLI's own constructor,
// newRootCmd, and prints cobra's command tree.
func cli(t *testing.T) tree {
	t.Helper()
	cliOnce.Do(func() {
		cliTree, cliErr = buildTree()
	})
	if cliErr != nil {
		t.Fatal(cliErr)
	}
	return cliTree
}

func buildTree() (tree, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "drillbot-docs-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	overlay, err := json.Marshal(map[string]map[string]string{"Replace": {
		filepath.Join(abs, "cmd", "drillbot", "zz_docs_flagdump.go"): filepath.Join(abs, "docs", "testdata", "flagdump.go.txt"),
	}})
	if err != nil {
		return nil, err
	}
	ov := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(ov, overlay, 0o600); err != nil {
		return nil, err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("the flag check builds drillbot: %w", err)
	}
	bin := filepath.Join(dir, "drillbot")
	build := exec.Command(goBin, "build", "-overlay", ov, "-o", bin, "./cmd/drillbot")
	build.Dir = abs
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build -overlay ./cmd/drillbot: %w\n%s", err, out)
	}
	run := exec.Command(bin)
	run.Env = append(os.Environ(), "DRILLBOT_DOCS_FLAGDUMP=1")
	out, err := run.Output()
	if err != nil {
		return nil, fmt.Errorf("drillbot's flag dump: %w", err)
	}
	var cmds []command
	if err := json.Unmarshal(out, &cmds); err != nil {
		return nil, fmt.Errorf("drillbot's flag dump: %w", err)
	}
	tr := tree{}
	for _, c := range cmds {
		tr[c.Path] = c
	}
	if _, ok := tr["drillbot"]; !ok || len(tr) < 2 {
		return nil, errors.New("drillbot's flag dump holds no command tree")
	}
	return tr, nil
}

// commandLines are the texts of d where a drillbot command may be written:
// each inline code span, and each line of a code block that is not yaml
// or markdown (shell continuations and help-style "[--flag]" lines joined
// to the line before).
func commandLines(d doc) []string {
	blocks, prose := split(d.text)
	var out []string
	for _, m := range codeSpan.FindAllStringSubmatch(prose, -1) {
		out = append(out, strings.ReplaceAll(m[1], "\n", " "))
	}
	for _, b := range blocks {
		switch b.lang {
		case "yaml", "yml", "markdown", "json":
			continue
		}
		var cur string
		for _, l := range strings.Split(b.body, "\n") {
			t := strings.TrimSpace(l)
			switch {
			case strings.HasSuffix(cur, `\`):
				cur = strings.TrimSuffix(cur, `\`) + " " + t
			case strings.HasPrefix(t, "[") && cur != "":
				cur += " " + t
			default:
				if cur != "" {
					out = append(out, cur)
				}
				cur = l
			}
		}
		if cur != "" {
			out = append(out, cur)
		}
	}
	return out
}

// commandStarts are the tokens after which a word is a command.
var commandStarts = map[string]bool{"$": true, "kubectl": true, "sudo": true, "|": true, "||": true, "&&": true, ";": true, "then": true, "do": true}

// isDrillbot says whether a token is drillbot's binary.
func isDrillbot(tok string) bool {
	tok = strings.TrimLeft(tok, "$<(")
	return tok == "drillbot" || tok == "kubectl-drillbot" || strings.HasSuffix(tok, "/drillbot") && !strings.Contains(tok, "helm")
}

// checkFlags checks every flag written after a drillbot command in line
// exists on that command.
func checkFlags(where, line string, tr tree) []string {
	toks := strings.Fields(line)
	var problems []string
	for i := 0; i < len(toks); i++ {
		if !isDrillbot(toks[i]) || (i > 0 && !commandStarts[toks[i-1]]) {
			continue
		}
		cmd := tr["drillbot"]
		j := i + 1
		for ; j < len(toks); j++ {
			if !slices.Contains(cmd.Children, toks[j]) {
				break
			}
			cmd = tr[cmd.Path+" "+toks[j]]
		}
		for ; j < len(toks); j++ {
			tok := toks[j]
			if commandStarts[tok] && tok != "$" && tok != "kubectl" || strings.HasPrefix(tok, "#") || tok == ">" || strings.HasPrefix(tok, "2>") {
				break
			}
			tok = strings.Trim(tok, "[](),;")
			switch {
			case strings.HasPrefix(tok, "--"):
				name, _, _ := strings.Cut(strings.TrimPrefix(tok, "--"), "=")
				if name != "" && !cmd.hasFlag(name) {
					problems = append(problems, fmt.Sprintf("%s: `%s`: %s has no flag --%s", where, strings.TrimSpace(line), cmd.Path, name))
				}
			case len(tok) == 2 && tok[0] == '-' && unicode.IsLetter(rune(tok[1])):
				if !cmd.hasShorthand(tok[1:]) {
					problems = append(problems, fmt.Sprintf("%s: `%s`: %s has no flag %s", where, strings.TrimSpace(line), cmd.Path, tok))
				}
			}
		}
		i = j - 1
	}
	return problems
}

// undocumented are the flags of the tree written nowhere in the docs.
func undocumented(tr tree, docs []doc) []string {
	written := map[string]bool{}
	for _, d := range docs {
		for _, m := range longFlag.FindAllStringSubmatch(d.text, -1) {
			written[m[1]] = true
		}
	}
	missing := map[string][]string{}
	for path, c := range tr {
		if c.Hidden {
			continue
		}
		for _, f := range c.Flags {
			if f.Hidden || written[f.Name] || flagExemptions[f.Name] != "" {
				continue
			}
			missing[f.Name] = append(missing[f.Name], path)
		}
	}
	var out []string
	for name, paths := range missing {
		sort.Strings(paths)
		out = append(out, fmt.Sprintf("--%s (%s) is documented nowhere in README.md or docs/", name, strings.Join(paths, ", ")))
	}
	sort.Strings(out)
	return out
}

func TestDrillSnippetsLoad(t *testing.T) {
	v := scenarios.Registry(scenarios.Deps{})
	var loaded, skipped int
	for _, d := range docFiles(t) {
		problems, l, s := checkSnippets(d, v)
		loaded, skipped = loaded+l, skipped+s
		for _, p := range problems {
			t.Error(p)
		}
	}
	if loaded == 0 && !t.Failed() {
		t.Error("no drill snippet found: the check checks nothing")
	}
	t.Logf("%d drill snippets loaded, %d fragments skipped", loaded, skipped)
}

func TestLinksResolve(t *testing.T) {
	docs := docFiles(t)
	read := func(path string) (string, bool, bool) {
		fi, err := os.Stat(filepath.Join(root, filepath.FromSlash(path)))
		if err != nil {
			return "", false, false
		}
		if fi.IsDir() {
			return "", true, true
		}
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(path)))
		return string(b), false, err == nil
	}
	for _, d := range docs {
		for _, p := range checkLinks(d, read) {
			t.Error(p)
		}
	}
}

func TestFlagsExist(t *testing.T) {
	tr := cli(t)
	for _, d := range docFiles(t) {
		for _, l := range commandLines(d) {
			for _, p := range checkFlags(d.path, l, tr) {
				t.Error(p)
			}
		}
	}
}

func TestFlagsDocumented(t *testing.T) {
	for _, p := range undocumented(cli(t), docFiles(t)) {
		t.Error(p)
	}
}

func TestSlug(t *testing.T) {
	for h, want := range map[string]string{
		"drillbot plan: what a drill will do, and may it":                     "drillbot-plan-what-a-drill-will-do-and-may-it",
		"Install in a cluster (Helm)":                                         "install-in-a-cluster-helm",
		"Did anyone notice? Expected alerts, stop conditions, freeze windows": "did-anyone-notice-expected-alerts-stop-conditions-freeze-windows",
		"`spec.alerts.expect[]`":                                              "specalertsexpect",
		"transparency-log-outage (rekor-outage: the Rekor row)":               "transparency-log-outage-rekor-outage-the-rekor-row",
	} {
		if got := slug(h); got != want {
			t.Errorf("slug(%q) = %q, want %q", h, got, want)
		}
	}
}

func TestCheckFlagsReadsCommandLines(t *testing.T) {
	tr := tree{
		"drillbot": {Path: "drillbot", Children: []string{"run"}},
		"drillbot run": {Path: "drillbot run", Flags: []struct {
			Name      string `json:"name"`
			Shorthand string `json:"shorthand"`
			Hidden    bool   `json:"hidden"`
		}{{Name: "filename", Shorthand: "f"}, {Name: "wait"}}},
	}
	for line, problems := range map[string]int{
		"drillbot run -f x.yaml --wait":                    0,
		"$ drillbot run --filename=x.yaml [--wiat]":        1,
		"kubectl drillbot run -x":                          1,
		"helm install drillbot deploy/helm/drillbot --set": 0, // helm's, not drillbot's
		"drillbot run --wait | grep --bogus":               0, // grep's
		"drillbot run --wait   # then --anything in prose": 0,
	} {
		if got := checkFlags("t", line, tr); len(got) != problems {
			t.Errorf("%q: %d problems, want %d: %v", line, len(got), problems, got)
		}
	}
}
