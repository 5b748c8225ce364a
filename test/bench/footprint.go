package bench

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/drillbot-io/drillbot/internal/drill"
)

// Footprint is the idle daemon's cost.
type Footprint struct {
	Drills int           `json:"drills"`
	Window time.Duration `json:"window"`
	MaxRSS int64         `json:"maxRSSBytes"`
	// MaxAnon and MaxFile split the resident memory: anonymous (heap,
	// stacks: what the daemon allocates) and file-backed (the binary's
	// pages, shared with the page cache; not in a pod's working set).
	MaxAnon  int64         `json:"maxRSSAnonBytes"`
	MaxFile  int64         `json:"maxRSSFileBytes"`
	CPU      time.Duration `json:"cpu"`
	Requests int           `json:"requests"`
	// Reads are the gets, lists and watches among the requests; the rest
	// are writes.
	Reads int `json:"reads"`
	// MarkerTargets are the namespace-restore targets among the drills:
	// the daemon stamps the RPO marker in each once a minute.
	MarkerTargets int `json:"markerTargets"`
	// Mix is the requests by verb and target, most frequent first.
	Mix []string `json:"mix"`
	// Broad are list/watch requests outside drillbot's own objects.
	Broad []string `json:"broad"`
}

// WriteDrills writes n drills into dir, copies of the catalog's drills
// (cycling through them) with unique names, a yearly schedule (the
// scheduler holds n entries and none fires during the measurement) and a
// target namespace of their own ("idle-N"), so what grows with the number
// of targets (the RPO marker of each namespace-restore target) grows in
// the figure. It returns the target namespaces, for the caller to create
// and opt in.
func WriteDrills(catalog []drill.Definition, dir string, n int) ([]string, error) {
	if len(catalog) == 0 {
		return nil, fmt.Errorf("empty catalog")
	}
	var targets []string
	for i := range n {
		d := catalog[i%len(catalog)]
		doc := map[string]any{
			"apiVersion": "drillbot.io/v1alpha1", "kind": "Drill",
			"metadata": map[string]any{"name": fmt.Sprintf("%s-%d", d.Name[:min(len(d.Name), 30)], i)},
		}
		spec := d.Spec
		spec.Schedule = fmt.Sprintf("CRON_TZ=UTC %d 4 1 1 *", i%60)
		if spec.Target.Namespace != "" {
			spec.Target.Namespace = fmt.Sprintf("idle-%d", i)
			targets = append(targets, spec.Target.Namespace)
		}
		doc["spec"] = spec
		b, err := yaml.Marshal(doc)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("drill-%03d.yaml", i)), b, 0o644); err != nil {
			return nil, err
		}
	}
	return targets, nil
}

// MeasureFootprint starts `drillbot serve` with the drills in dir, waits
// until it is ready and settled, then samples its resident memory and CPU
// time from /proc for window and reads the requests it made in that window
// from the API server's audit log.
func MeasureFootprint(ctx context.Context, drillbot, kubeconfig, drillsDir, auditLog, user string, window time.Duration, logw *os.File) (*Footprint, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.CommandContext(ctx, drillbot, "serve", "--kubeconfig", kubeconfig, "--drills", drillsDir, "--listen", addr)
	cmd.Stdout, cmd.Stderr = logw, logw
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
	}()
	if err := waitReady(ctx, "http://"+addr+"/readyz", time.Minute); err != nil {
		return nil, err
	}
	time.Sleep(5 * time.Second) // startup (CRD check, interrupted runs) is not idle
	pid := cmd.Process.Pid
	from := time.Now()
	cpu0, err := cpuTime(pid)
	if err != nil {
		return nil, err
	}
	f := &Footprint{Window: window}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for deadline := from.Add(window); time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		m, err := rss(pid)
		if err != nil {
			return nil, err
		}
		f.MaxRSS, f.MaxAnon, f.MaxFile = max(f.MaxRSS, m.total), max(f.MaxAnon, m.anon), max(f.MaxFile, m.file)
	}
	to := time.Now()
	cpu1, err := cpuTime(pid)
	if err != nil {
		return nil, err
	}
	f.CPU = cpu1 - cpu0
	f.Window = to.Sub(from)
	// The audit backend writes before answering, but give it a moment.
	time.Sleep(500 * time.Millisecond)
	events, err := ReadAudit(auditLog, user, from, to)
	if err != nil {
		return nil, err
	}
	f.Requests = len(events)
	for _, e := range events {
		if e.Verb == "get" || e.Verb == "list" || e.Verb == "watch" {
			f.Reads++
		}
	}
	f.Mix = RequestMix(events)
	f.Broad = RequestMix(BroadReads(events))
	return f, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitReady(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not ready within %s", url, timeout)
}

// rss is the process's resident set size (VmRSS).
type resident struct{ total, anon, file int64 }

// rss reads VmRSS, RssAnon and RssFile from /proc/PID/status.
func rss(pid int) (resident, error) {
	var r resident
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return r, err
	}
	fields := map[string]*int64{"VmRSS:": &r.total, "RssAnon:": &r.anon, "RssFile:": &r.file}
	found := 0
	for line := range bytes.Lines(b) {
		for name, dst := range fields {
			if v, ok := bytes.CutPrefix(line, []byte(name)); ok {
				kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(string(v)), " kB"), 10, 64)
				if err != nil {
					return r, fmt.Errorf("%s of pid %d: %w", name, pid, err)
				}
				*dst = kb << 10
				found++
			}
		}
	}
	if found != len(fields) {
		return r, fmt.Errorf("no VmRSS, RssAnon and RssFile for pid %d", pid)
	}
	return r, nil
}

// clockTicks is USER_HZ, 100 on Linux for every architecture Go supports.
const clockTicks = 100

// cpuTime is the process's user+system CPU time (/proc/PID/stat fields 14
// and 15).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: fields count from its ")".
	rest := string(b[bytes.LastIndexByte(b, ')')+2:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// Rows are the footprint's table rows.
func (f *Footprint) Rows(maxRSS int64) []Row {
	mib := float64(f.MaxRSS) / (1 << 20)
	perMin := float64(f.Requests) / f.Window.Minutes()
	broad := "none"
	if len(f.Broad) > 0 {
		broad = strings.Join(f.Broad, "; ")
	}
	return []Row{
		{Figure: fmt.Sprintf("idle serve, %d drills: max RSS", f.Drills), Drillbot: fmt.Sprintf("%.1f MiB", mib),
			Target: fmt.Sprintf("< %d MiB", maxRSS>>20), Met: Met(f.MaxRSS < maxRSS), Value: mib, Unit: "MiB"},
		{Figure: "idle serve: of which anonymous (heap, stacks)", Drillbot: fmt.Sprintf("%.1f MiB", float64(f.MaxAnon)/(1<<20)),
			Value: float64(f.MaxAnon) / (1 << 20), Unit: "MiB"},
		{Figure: "idle serve: of which file-backed (the binary's pages)", Drillbot: fmt.Sprintf("%.1f MiB", float64(f.MaxFile)/(1<<20)),
			Value: float64(f.MaxFile) / (1 << 20), Unit: "MiB"},
		{Figure: fmt.Sprintf("idle serve: CPU over %s", f.Window.Round(time.Second)), Drillbot: fmt.Sprintf("%s (%.2f%% of a core)", f.CPU, 100*f.CPU.Seconds()/f.Window.Seconds()),
			Value: f.CPU.Seconds(), Unit: "s"},
		{Figure: fmt.Sprintf("idle serve, %d drills: API requests per minute", f.Drills), Drillbot: fmt.Sprintf("%.1f (reads %.1f, writes %.1f; %d namespace-restore targets)", perMin, f.perMin(f.Reads), f.perMin(f.Requests-f.Reads), f.MarkerTargets),
			Value: perMin, Unit: "req/min"},
		{Figure: "idle serve: lists/watches beyond its own DrillRuns", Drillbot: broad, Target: "none", Met: Met(len(f.Broad) == 0),
			Value: float64(len(f.Broad)), Unit: "kinds"},
	}
}

func (f *Footprint) perMin(n int) float64 { return float64(n) / f.Window.Minutes() }

// GrowthRows compare an idle daemon of many drills with one of few: the
// reads must not grow with the drills (target: within 20% and 1 request a
// minute), the writes are the RPO marker's, one apply per namespace-restore
// target a minute (target: no more than that).
func GrowthRows(few, many *Footprint) []Row {
	r0, r1 := few.perMin(few.Reads), many.perMin(many.Reads)
	w1 := many.perMin(many.Requests - many.Reads)
	flat := r1 <= r0*1.2+1
	fig := fmt.Sprintf("idle serve, %d -> %d drills: reads per minute", few.Drills, many.Drills)
	// A minute's window may hold one tick more or fewer.
	ticks := many.Window.Minutes() + 1
	return []Row{
		{Figure: fig, Drillbot: fmt.Sprintf("%.1f -> %.1f", r0, r1), Target: "flat (<= 1.2x + 1)", Met: Met(flat), Value: r1, Unit: "req/min"},
		{Figure: fmt.Sprintf("idle serve, %d drills: writes per minute (the RPO marker: one apply per namespace-restore target)", many.Drills),
			Drillbot: fmt.Sprintf("%.1f for %d targets", w1, many.MarkerTargets),
			Target:   fmt.Sprintf("<= %d (one per target a minute)", many.MarkerTargets),
			Met:      Met(float64(many.Requests-many.Reads) <= float64(many.MarkerTargets)*ticks), Value: w1, Unit: "req/min"},
	}
}
