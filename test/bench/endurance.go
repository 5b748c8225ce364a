package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/test/testharness"
)

// EnduranceConfig is the endurance figure: Runs started runs back to back
// (a slot that found its drill's previous run still on the target is not
// one) by drillbot serve processes (leader election on), PodKill pod-kill
// drills and Falco corrupt-config drills at once, each on a target of its
// own and firing every Every; the leader is killed (SIGKILL) once half the
// runs have finished, and the standby takes over.
type EnduranceConfig struct {
	Drillbot   string
	Kubeconfig string
	Dir        string
	Runs       int
	PodKill    int
	Falco      int
	Every      time.Duration
	// History is each drill's successful and failed runs history limit.
	History int
	Log     *slog.Logger
}

// Sample is a daemon's own account (its /metrics: client_golang's Go and
// process collectors) after some finished runs.
type Sample struct {
	Runs       int   `json:"runs"`
	RSS        int64 `json:"rssBytes"`
	Goroutines int   `json:"goroutines"`
	FDs        int   `json:"openFDs"`
}

// Term is one leader's term: samples after its first runs and its last.
type Term struct {
	First Sample `json:"first"`
	Last  Sample `json:"last"`
}

// Endurance is what the figure found.
type Endurance struct {
	Runs     int            `json:"runs"`
	Wall     time.Duration  `json:"wall"`
	Verdicts map[string]int `json:"verdicts"`
	// NoVerdict are the runs that finished (or vanished) without one.
	NoVerdict []string `json:"noVerdict,omitempty"`
	// Reasons counts the reasons of the verdicts other than PASS, by drill
	// kind (digits blanked, so one cause is one line).
	Reasons map[string]int `json:"reasons,omitempty"`
	Terms   []Term         `json:"terms"`
	// Takeover is the time from the leader's kill to the first run the
	// standby finished.
	Takeover time.Duration `json:"takeover"`
	// MaxKept is the most DrillRuns one drill had at the end, against
	// History (successful + failed limits).
	MaxKept int `json:"maxKept"`
	History int `json:"history"`
	// Leftovers is what the drills left in the cluster after the daemons
	// stopped: target Leases, NetworkPolicies, drillbot annotations,
	// ConfigMaps that are not the target's own, rules not the original.
	Leftovers []string `json:"leftovers,omitempty"`
	Drills    int      `json:"drills"`
	Every     string   `json:"every"`
}

// FalcoRules are the stand-in Falco's rules, restored after each run.
const FalcoRules = "- rule: Terminal shell in container\n  condition: spawned_process and container and shell_procs\n"

// MeasureEndurance runs the endurance figure on a kwok cluster: kube
// reads and sets up the targets, dyn watches the DrillRuns.
func MeasureEndurance(ctx context.Context, kube kubernetes.Interface, dyn dynamic.Interface, cfg EnduranceConfig) (*Endurance, error) {
	log := cfg.Log
	var targets, docs []string
	for i := range cfg.PodKill {
		ns, doc := enduranceDrill("pod-kill", i, cfg)
		if err := SampleDeployment(ctx, kube, ns, KwokTemplate(map[string]string{"app": "web"}), 2); err != nil {
			return nil, fmt.Errorf("target %s: %w", ns, err)
		}
		targets, docs = append(targets, ns), append(docs, doc)
	}
	playCtx, stopPlaying := context.WithCancel(ctx)
	defer stopPlaying()
	var players sync.WaitGroup
	defer players.Wait()
	defer stopPlaying()
	for i := range cfg.Falco {
		ns, doc := enduranceDrill("corrupt-config", i, cfg)
		if err := testharness.Falco(ctx, kube, ns, FalcoRules); err != nil {
			return nil, err
		}
		players.Add(1)
		go func() {
			defer players.Done()
			testharness.PlayFalco(playCtx, Slogf{Log: log}, kube, ns, nil)
		}()
		targets, docs = append(targets, ns), append(docs, doc)
	}
	drills := filepath.Join(cfg.Dir, "endurance-drills")
	if err := os.MkdirAll(drills, 0o755); err != nil {
		return nil, err
	}
	for i, d := range docs {
		if err := os.WriteFile(filepath.Join(drills, fmt.Sprintf("drill-%02d.yaml", i)), []byte(d), 0o644); err != nil {
			return nil, err
		}
	}

	// Each drill is named after its target.
	watch := newRunWatch(dyn, "drillbot-system", targets)
	started := time.Now()
	a, err := startServe(ctx, cfg, drills, "a")
	if err != nil {
		return nil, err
	}
	defer a.stop()
	if err := a.waitLog(ctx, "leading: scheduling drills", time.Minute); err != nil {
		return nil, err
	}
	b, err := startServe(ctx, cfg, drills, "b")
	if err != nil {
		return nil, err
	}
	defer b.stop()
	if err := b.waitLog(ctx, "standing by", time.Minute); err != nil {
		return nil, err
	}
	e := &Endurance{Runs: cfg.Runs, Drills: len(docs), Every: cfg.Every.String(), History: 2 * cfg.History}
	half := cfg.Runs / 2
	first := min(100, half/2)
	var term Term
	if term.First, err = watch.sampleAt(ctx, a, first); err != nil {
		return nil, err
	}
	if term.Last, err = watch.sampleAt(ctx, a, half); err != nil {
		return nil, err
	}
	e.Terms = append(e.Terms, term)
	log.Info("endurance: killing the leader", "runs", half)
	killed := time.Now()
	a.kill()
	if err := b.waitLog(ctx, "leading: scheduling drills", 2*time.Minute); err != nil {
		return nil, err
	}
	base := watch.finished()
	if err := watch.until(ctx, base+1); err != nil {
		return nil, err
	}
	e.Takeover = time.Since(killed)
	term = Term{}
	if term.First, err = watch.sampleAt(ctx, b, base+first); err != nil {
		return nil, err
	}
	if term.Last, err = watch.sampleAt(ctx, b, cfg.Runs); err != nil {
		return nil, err
	}
	e.Terms = append(e.Terms, term)
	// A graceful stop: the run in progress is reverted before b exits.
	if err := b.term(); err != nil {
		return nil, err
	}
	e.Wall = time.Since(started)
	if err := watch.poll(ctx); err != nil {
		return nil, err
	}
	e.Verdicts, e.NoVerdict, e.MaxKept, e.Reasons = watch.account()
	stopPlaying()
	e.Leftovers, err = leftovers(ctx, kube, targets)
	if err != nil {
		return nil, err
	}
	return e, nil
}

// enduranceDrill is the i-th drill of kind (pod-kill or corrupt-config)
// of the endurance figure and its target namespace.
func enduranceDrill(kind string, i int, cfg EnduranceConfig) (ns, doc string) {
	short, target, params := "pk", "{namespace: %s, selector: {app: web}}", ""
	if kind == "corrupt-config" {
		short, target, params = "falco", "{namespace: %s}", "\n  params: {configMap: falco-rules, key: falco_rules.yaml, daemonSet: falco}"
	}
	ns = fmt.Sprintf("endure-%s-%d", short, i)
	return ns, fmt.Sprintf(`apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata: {name: %s}
spec:
  scenario: %s
  schedule: "@every %s"
  minInterval: 1s
  successfulRunsHistoryLimit: %d
  failedRunsHistoryLimit: %d
  objectives: {rto: 1m}
  timeouts: {recover: 1m}
  target: %s%s
`, ns, kind, cfg.Every, cfg.History, cfg.History, fmt.Sprintf(target, ns), params)
}

// Slogf logs a test helper's lines (testharness.Logger) at debug level.
type Slogf struct{ Log *slog.Logger }

func (s Slogf) Logf(format string, args ...any) { s.Log.Debug(fmt.Sprintf(format, args...)) }

// KwokTemplate is a pod template kwok runs (the image is never pulled).
func KwokTemplate(labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "registry.example/web:1"}}}}
}

// runWatch follows the DrillRuns in ns by polling (a run is kept until
// History newer runs of its drill finished, many seconds): each run seen,
// and which finished.
type runWatch struct {
	dyn dynamic.Interface
	ns  string
	// drills are the figure's own: runs of others recorded in ns (the API
	// load figure's, before) are not counted.
	drills map[string]bool
	mu     sync.Mutex
	seen   map[string]*v1alpha1.DrillRun
	done   map[string]bool
	// present are the runs the cluster held at the last poll.
	present map[string]bool
}

func newRunWatch(dyn dynamic.Interface, ns string, drills []string) *runWatch {
	w := &runWatch{dyn: dyn, ns: ns, drills: map[string]bool{}, seen: map[string]*v1alpha1.DrillRun{}, done: map[string]bool{}}
	for _, d := range drills {
		w.drills[d] = true
	}
	return w
}

func (w *runWatch) poll(ctx context.Context) error {
	list, err := w.dyn.Resource(v1alpha1.DrillRunResource).Namespace(w.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	present := map[string]bool{}
	for i := range list.Items {
		var r v1alpha1.DrillRun
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(list.Items[i].Object, &r); err != nil {
			return err
		}
		if !w.drills[r.Spec.Drill] {
			continue
		}
		present[r.Name] = true
		w.seen[r.Name] = &r
		if r.Status.FinishedAt != nil {
			w.done[r.Name] = true
		}
	}
	w.present = present
	for name := range w.seen {
		if !present[name] && !w.done[name] {
			// Pruned before it was seen finished: counted, without a verdict
			// unless one was seen.
			w.done[name] = true
		}
	}
	return nil
}

// finished counts the runs that finished, leaving out the slots that never
// started (their drill's previous run still held the target): a run is a
// drill that ran.
func (w *runWatch) finished() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for name := range w.done {
		if !notStarted(w.seen[name]) {
			n++
		}
	}
	return n
}

// notStarted: a slot held because its drill's run still held the target.
func notStarted(r *v1alpha1.DrillRun) bool {
	return r != nil && r.Status.Stop != nil && r.Status.Stop.Kind == v1alpha1.StopTargetBusy
}

// until polls until n runs finished.
func (w *runWatch) until(ctx context.Context, n int) error {
	return wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, time.Duration(n)*time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := w.poll(ctx); err != nil {
			return false, err
		}
		return w.finished() >= n, nil
	})
}

// sampleAt waits until n runs finished, then samples d.
func (w *runWatch) sampleAt(ctx context.Context, d *serve, n int) (Sample, error) {
	if err := w.until(ctx, n); err != nil {
		return Sample{}, fmt.Errorf("waiting for %d finished runs (%d so far): %w", n, w.finished(), err)
	}
	s, err := d.sample(ctx)
	s.Runs = w.finished()
	return s, err
}

// account counts the verdicts of the runs seen, the runs without one, and
// the most runs one drill holds now.
func (w *runWatch) account() (map[string]int, []string, int, map[string]int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	verdicts, reasons := map[string]int{}, map[string]int{}
	var none []string
	kept, most := map[string]int{}, 0
	for name, r := range w.seen {
		if w.present[name] {
			kept[r.Spec.Drill]++
			most = max(most, kept[r.Spec.Drill])
		}
		switch {
		case !w.done[name]:
			none = append(none, name+" (unfinished)")
		case r.Status.Verdict == "":
			none = append(none, fmt.Sprintf("%s (%s)", name, r.Status.Phase))
		case notStarted(r):
			// A slot that never started: the drill's own run still held
			// its target (held, INCONCLUSIVE): not a run.
			verdicts["not started (target busy)"]++
		default:
			verdicts[string(r.Status.Verdict)]++
			if r.Status.Verdict != v1alpha1.VerdictPass {
				reasons[fmt.Sprintf("%s %s: %s", r.Spec.Scenario, r.Status.Verdict, blankDigits(r.Status.Reason))]++
			}
		}
	}
	sort.Strings(none)
	return verdicts, none, most, reasons
}

// blankDigits replaces runs of digits with "N" and cuts s to 160 bytes.
func blankDigits(s string) string {
	var b strings.Builder
	digit := false
	for _, r := range s {
		if r >= '0' && r <= '9' {
			if !digit {
				b.WriteByte('N')
			}
			digit = true
			continue
		}
		digit = false
		b.WriteRune(r)
	}
	out := b.String()
	return out[:min(len(out), 160)]
}

// leftovers lists what the drills left behind in their targets and in
// drillbot's namespace.
func leftovers(ctx context.Context, kube kubernetes.Interface, targets []string) ([]string, error) {
	var out []string
	for _, ns := range targets {
		if _, err := kube.CoordinationV1().Leases("drillbot-system").Get(ctx, engine.LeaseName(ns), metav1.GetOptions{}); err == nil {
			out = append(out, "target Lease of "+ns)
		} else if !apierrors.IsNotFound(err) {
			return nil, err
		}
		nps, err := kube.NetworkingV1().NetworkPolicies(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		for _, np := range nps.Items {
			out = append(out, "NetworkPolicy "+ns+"/"+np.Name)
		}
		cms, err := kube.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		for _, cm := range cms.Items {
			switch {
			case cm.Name == "kube-root-ca.crt":
			case cm.Name == "falco-rules":
				if cm.Data["falco_rules.yaml"] != FalcoRules {
					out = append(out, "falco-rules in "+ns+" not the original")
				}
			default:
				out = append(out, "ConfigMap "+ns+"/"+cm.Name)
			}
		}
		deps, err := kube.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		dss, err := kube.AppsV1().DaemonSets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		var metas []metav1.ObjectMeta
		for _, d := range deps.Items {
			metas = append(metas, d.ObjectMeta)
		}
		for _, d := range dss.Items {
			metas = append(metas, d.ObjectMeta)
		}
		for _, m := range metas {
			for k := range m.Annotations {
				if strings.Contains(k, "drillbot.io/") {
					out = append(out, fmt.Sprintf("annotation %s on %s/%s", k, ns, m.Name))
				}
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// serve is one drillbot serve process of the figure.
type serve struct {
	cmd  *exec.Cmd
	addr string
	out  *lockedBuffer
	done chan struct{}
}

func startServe(ctx context.Context, cfg EnduranceConfig, drills, name string) (*serve, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(cfg.Dir, "endurance-"+name+".log"))
	if err != nil {
		return nil, err
	}
	s := &serve{addr: fmt.Sprintf("127.0.0.1:%d", port), out: &lockedBuffer{}, done: make(chan struct{})}
	s.cmd = exec.CommandContext(ctx, cfg.Drillbot, "serve", "--kubeconfig", cfg.Kubeconfig, "--drills", drills,
		"--listen", s.addr, "--leader-elect", "--sweep-interval", "5s")
	s.cmd.Stdout = io.MultiWriter(logf, s.out)
	s.cmd.Stderr = s.cmd.Stdout
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	go func() { _ = s.cmd.Wait(); logf.Close(); close(s.done) }()
	if err := waitReady(ctx, "http://"+s.addr+"/healthz", time.Minute); err != nil {
		s.kill()
		return nil, err
	}
	return s, nil
}

func (s *serve) waitLog(ctx context.Context, line string, timeout time.Duration) error {
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		select {
		case <-s.done:
			return false, fmt.Errorf("drillbot serve exited: %s", s.out.tail())
		default:
		}
		return s.out.contains(line), nil
	})
	if err != nil {
		return fmt.Errorf("drillbot serve: no %q within %s: %w", line, timeout, err)
	}
	return nil
}

// sample reads the daemon's /metrics.
func (s *serve) sample(ctx context.Context) (Sample, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.addr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Sample{}, err
	}
	defer resp.Body.Close()
	return parseSample(resp.Body)
}

// parseSample reads go_goroutines, process_open_fds and
// process_resident_memory_bytes from a /metrics page.
func parseSample(r io.Reader) (Sample, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return Sample{}, err
	}
	get := func(name string) (float64, error) {
		f, ok := fams[name]
		if !ok || len(f.GetMetric()) == 0 {
			return 0, fmt.Errorf("/metrics has no %s", name)
		}
		return f.GetMetric()[0].GetGauge().GetValue(), nil
	}
	var s Sample
	for name, dst := range map[string]func(float64){
		"go_goroutines":                 func(v float64) { s.Goroutines = int(v) },
		"process_open_fds":              func(v float64) { s.FDs = int(v) },
		"process_resident_memory_bytes": func(v float64) { s.RSS = int64(v) },
	} {
		v, err := get(name)
		if err != nil {
			return Sample{}, err
		}
		dst(v)
	}
	return s, nil
}

func (s *serve) kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// term stops the daemon as Kubernetes does (SIGTERM, then 2 minutes).
func (s *serve) term() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		return nil
	case <-time.After(2 * time.Minute):
		s.kill()
		return fmt.Errorf("drillbot serve did not exit within 2m of SIGTERM")
	}
}

func (s *serve) stop() {
	select {
	case <-s.done:
	default:
		_ = s.term()
	}
}

// lockedBuffer is a daemon's output, read while it writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Contains(l.b.Bytes(), []byte(s))
}

func (l *lockedBuffer) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.b.Bytes()
	return string(b[max(0, len(b)-2000):])
}

// Rows: the run count and verdicts, then per leader term the growth of
// memory, goroutines and descriptors, the takeover, the history and what
// was left behind.
func (e *Endurance) Rows() []Row {
	var verdicts []string
	for _, v := range slices.Sorted(maps.Keys(e.Verdicts)) {
		verdicts = append(verdicts, fmt.Sprintf("%s %d", v, e.Verdicts[v]))
	}
	none := "none"
	if len(e.NoVerdict) > 0 {
		none = fmt.Sprintf("%d: %s", len(e.NoVerdict), strings.Join(e.NoVerdict[:min(5, len(e.NoVerdict))], ", "))
	}
	rows := []Row{{
		Figure:   fmt.Sprintf("endurance: %d runs (%d drills at once, every %s, leader killed halfway): runs without a verdict", e.Runs, e.Drills, e.Every),
		Drillbot: fmt.Sprintf("%s (%s; %s)", none, strings.Join(verdicts, ", "), e.Wall.Round(time.Second)),
		Target:   "none", Met: Met(len(e.NoVerdict) == 0), Value: float64(len(e.NoVerdict)), Unit: "runs",
	}}
	for i, t := range e.Terms {
		rss := float64(t.Last.RSS-t.First.RSS) / (1 << 20)
		okRSS := t.Last.RSS <= t.First.RSS+t.First.RSS/10+(4<<20)
		okG := t.Last.Goroutines <= t.First.Goroutines+20
		okF := t.Last.FDs <= t.First.FDs+5
		rows = append(rows, Row{
			Figure: fmt.Sprintf("endurance: leader %d, after run %d -> after run %d: RSS, goroutines, open fds", i+1, t.First.Runs, t.Last.Runs),
			Drillbot: fmt.Sprintf("%.1f -> %.1f MiB (%+.1f), %d -> %d, %d -> %d", float64(t.First.RSS)/(1<<20), float64(t.Last.RSS)/(1<<20), rss,
				t.First.Goroutines, t.Last.Goroutines, t.First.FDs, t.Last.FDs),
			Target: "RSS <= +10% + 4 MiB, goroutines <= +20, fds <= +5", Met: Met(okRSS && okG && okF), Value: rss, Unit: "MiB",
		})
	}
	type reason struct {
		text string
		n    int
	}
	var rs []reason
	for t, n := range e.Reasons {
		rs = append(rs, reason{t, n})
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].n > rs[j].n || rs[i].n == rs[j].n && rs[i].text < rs[j].text })
	for _, r := range rs[:min(4, len(rs))] {
		rows = append(rows, Row{Figure: "endurance: a verdict other than PASS, and why (most frequent first)", Drillbot: fmt.Sprintf("%d x %s", r.n, r.text),
			Value: float64(r.n), Unit: "runs"})
	}
	left := "none"
	if len(e.Leftovers) > 0 {
		left = strings.Join(e.Leftovers, "; ")
	}
	return append(rows,
		Row{Figure: "endurance: leader killed -> first run finished by the standby", Drillbot: e.Takeover.Round(time.Second).String(),
			Value: e.Takeover.Seconds(), Unit: "s"},
		Row{Figure: "endurance: DrillRuns kept per drill at the end", Drillbot: fmt.Sprint(e.MaxKept),
			Target: fmt.Sprintf("<= %d (history limits)", e.History), Met: Met(e.MaxKept <= e.History), Value: float64(e.MaxKept), Unit: "runs"},
		Row{Figure: "endurance: left behind (target Leases, NetworkPolicies, annotations, ConfigMap copies, rules not the original)",
			Drillbot: left, Target: "none", Met: Met(len(e.Leftovers) == 0), Value: float64(len(e.Leftovers)), Unit: "objects"},
	)
}
