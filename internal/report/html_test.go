package report_test

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/report"
	"github.com/drillbot-io/drillbot/test/localcluster"
)

// sampleReport has a restore drill with an RTO over target once, checks,
// and a drill that never ran.
func sampleReport() report.Report {
	runs := []v1alpha1.DrillRun{
		run("shop", "shop-3", 1, v1alpha1.VerdictPass, "12s"),
		run("shop", "shop-2", 8, v1alpha1.VerdictFail, "45m0s"),
		run("shop", "shop-1", 15, v1alpha1.VerdictPass, "20m0s"),
		checkRun("pod-security-audit", "pod-security-audit", "psa-1", 1, v1alpha1.VerdictFail, "Pod Security compliance: 1 of 3 namespaces"),
		checkRun("signed-images", "signed-images", "si-1", 2, v1alpha1.VerdictPass, "signed images: 4 of 4 running in 2 namespaces"),
	}
	return report.Build(runs, report.Options{Now: now, Drills: []report.DrillInfo{{Name: "never", Scenario: "pod-kill", RTOTarget: "5m"}}})
}

func TestHTMLIsSelfContained(t *testing.T) {
	var b bytes.Buffer
	if err := report.Write(&b, sampleReport(), "html"); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{"<title>Disaster-recovery status report</title>", "Compliance: 50%", "<svg", `class="target"`,
		"Posture: the hardening plan", "1 of 3 namespaces", "RTO p95"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, banned := range []string{"<script", "http://", "https://", "<link", "@import"} {
		if strings.Contains(strings.ReplaceAll(page, `xmlns="http://www.w3.org/2000/svg"`, ""), banned) {
			t.Errorf("page is not self-contained: it has %q", banned)
		}
	}
	// Markup from a run's reason is escaped, never rendered.
	r := sampleReport()
	for i := range r.Drills {
		if r.Drills[i].Name == "shop" {
			r.Drills[i].Runs[0].Reason = `<img src=x onerror=alert(1)>`
		}
	}
	b.Reset()
	if err := report.Write(&b, r, "html"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "<img src=x") {
		t.Error("a reason's markup reached the page unescaped")
	}
}

// TestHTMLInARealBrowser loads the page in Debian's chromium (headless,
// through the DevTools protocol), fails on any console error or uncaught
// exception, checks what rendered, and takes a screenshot.
func TestHTMLInARealBrowser(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv(localcluster.RequireEnv) != "" {
			t.Fatal("no chromium (make test installs Debian's: apt-get install chromium)")
		}
		t.Skip("no chromium")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "report.html")
	var b bytes.Buffer
	if err := report.Write(&b, sampleReport(), "html"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(filepath.Join(dir, "profile")), chromedp.WindowSize(1200, 900),
		// Nothing leaves the machine: every request but file:// goes to a
		// closed port on loopback.
		chromedp.ProxyServer("http://127.0.0.1:9"), chromedp.Flag("proxy-bypass-list", "<-loopback>"),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-domain-reliability", true))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	// The page's console, uncaught exceptions and the browser's log, as
	// chromedp reports them, from before the navigation on.
	cctx, stopConsole := context.WithCancel(ctx)
	var (
		mu       sync.Mutex
		messages []string
		wg       sync.WaitGroup
	)
	console := chromedp.Console(cctx)
	wg.Go(func() {
		for m, err := range console {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning || m.IsException() {
				mu.Lock()
				messages = append(messages, m.String())
				mu.Unlock()
			}
		}
	})
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+file), chromedp.WaitVisible(chromedp.CSS("svg"))); err != nil {
		t.Fatal(err)
	}
	charts, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("svg polyline").length`))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("table tr").length`))
	if err != nil {
		t.Fatal(err)
	}
	headline, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(".headline")))
	if err != nil {
		t.Fatal(err)
	}
	over, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("circle.dot.over").length`))
	if err != nil {
		t.Fatal(err)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		t.Fatal(err)
	}
	stopConsole()
	wg.Wait()
	if len(messages) > 0 {
		t.Errorf("the page logged: %q", messages)
	}
	if charts != 1 || rows < 10 || !strings.Contains(headline, "Compliance: 50%") {
		t.Errorf("rendered %d charts, %d table rows, headline %q", charts, rows, headline)
	}
	if over != 1 {
		t.Errorf("%d runs marked over their RTO target on the charts, want 1 (shop-2)", over)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 800 || b.Dy() < 600 {
		t.Errorf("screenshot %v", b)
	}
	out := filepath.Join(dir, "report.png")
	if d := os.Getenv("DRILLBOT_SCREENSHOT_DIR"); d != "" {
		out = filepath.Join(d, "report.png")
	}
	if err := os.WriteFile(out, shot, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%d bytes, %v)", out, len(shot), img.Bounds())
}
