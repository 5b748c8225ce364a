package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
)

// PhaseOverhead is drillbot's latency for one recovery milestone: from the
// last event that completed it, as an independent watch in the benchmark
// saw it, to the milestone drillbot recorded.
type PhaseOverhead struct {
	Milestone string        `json:"milestone"`
	Event     string        `json:"event"`
	Latency   time.Duration `json:"latency"`
}

// Overhead is the drill-overhead figure.
type Overhead struct {
	// Label names the drill in the figures (default: the namespace-restore
	// overhead figure's names).
	Label  string          `json:"label,omitempty"`
	Run    string          `json:"run"`
	RTO    time.Duration   `json:"rto"`
	Phases []PhaseOverhead `json:"phases"`
	Total  time.Duration   `json:"total"`
	// Breakdown is the run's RTO breakdown (restore, readiness).
	Breakdown []BreakdownPart `json:"breakdown,omitempty"`
}

// BreakdownPart is one share of a run's RTO.
type BreakdownPart struct {
	Name     string        `json:"name"`
	Duration time.Duration `json:"duration"`
}

// parts is the run's RTO breakdown as the engine recorded it.
func parts(run *v1alpha1.DrillRun) []BreakdownPart {
	var out []BreakdownPart
	for _, p := range run.Status.Breakdown {
		if d, err := time.ParseDuration(p.Duration); err == nil {
			out = append(out, BreakdownPart{Name: p.Name, Duration: d})
		}
	}
	return out
}

// Witness watches, independently of drillbot, the events that complete
// a restore drill's milestones: for namespace-restore the namespace gone,
// the Velero Restore Completed, and the last workload Ready after the
// namespace came back; for failover-restore (a fresh copy) the copy
// created, the Restore Completed and the last workload Ready in the copy.
type Witness struct {
	mu                    sync.Mutex
	fresh                 bool // the namespace is a fresh copy
	gone, restored, ready time.Time
	stop                  context.CancelFunc
	done                  sync.WaitGroup
}

// Watch starts the witness for namespace ns (deleted and restored).
func Watch(ctx context.Context, c kubernetes.Interface, dyn dynamic.Interface, ns, veleroNS string) (*Witness, error) {
	return watch(ctx, c, dyn, ns, veleroNS, false)
}

// WatchCopy starts the witness for copy, a namespace a restore creates.
func WatchCopy(ctx context.Context, c kubernetes.Interface, dyn dynamic.Interface, copyNS, veleroNS string) (*Witness, error) {
	return watch(ctx, c, dyn, copyNS, veleroNS, true)
}

func watch(ctx context.Context, c kubernetes.Interface, dyn dynamic.Interface, ns, veleroNS string, fresh bool) (*Witness, error) {
	ctx, cancel := context.WithCancel(ctx)
	w := &Witness{stop: cancel, fresh: fresh}
	// The namespace.
	nsInf := informers.NewSharedInformerFactoryWithOptions(c, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", ns).String()
	}))
	// gone doubles as "armed": a copy is armed when it is created.
	if _, err := nsInf.Core().V1().Namespaces().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) {
			if fresh {
				w.set(&w.gone)
			}
		},
		DeleteFunc: func(any) {
			if !fresh {
				w.set(&w.gone)
			}
		},
	}); err != nil {
		cancel()
		return nil, err
	}
	// The workloads: all Ready again once the namespace is back.
	wl := informers.NewSharedInformerFactoryWithOptions(c, 0, informers.WithNamespace(ns))
	deps, stss, dss, pods := wl.Apps().V1().Deployments(), wl.Apps().V1().StatefulSets(), wl.Apps().V1().DaemonSets(), wl.Core().V1().Pods()
	check := func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.gone.IsZero() {
			return
		}
		d, _ := deps.Lister().List(labels.Everything())
		s, _ := stss.Lister().List(labels.Everything())
		ds, _ := dss.Lister().List(labels.Everything())
		p, _ := pods.Lister().List(labels.Everything())
		if len(d)+len(s)+len(ds) == 0 {
			return
		}
		if len(namespacerestore.NotReady(d, s, ds, p)) == 0 {
			if w.ready.IsZero() {
				w.ready = time.Now()
			}
		} else {
			w.ready = time.Time{}
		}
	}
	h := cache.ResourceEventHandlerFuncs{AddFunc: func(any) { check() }, UpdateFunc: func(any, any) { check() }, DeleteFunc: func(any) { check() }}
	for _, inf := range []cache.SharedIndexInformer{deps.Informer(), stss.Informer(), dss.Informer(), pods.Informer()} {
		if _, err := inf.AddEventHandler(h); err != nil {
			cancel()
			return nil, err
		}
	}
	// Velero Restores: the moment one reaches Completed.
	restores, err := dyn.Resource(namespacerestore.RestoresGVR).Namespace(veleroNS).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		cancel()
		return nil, err
	}
	nsInf.Start(ctx.Done())
	wl.Start(ctx.Done())
	nsInf.WaitForCacheSync(ctx.Done())
	wl.WaitForCacheSync(ctx.Done())
	w.done.Go(func() {
		defer restores.Stop()
		for ev := range restores.ResultChan() {
			u, ok := ev.Object.(*unstructured.Unstructured)
			if !ok {
				continue
			}
			if phase, _, _ := unstructured.NestedString(u.Object, "status", "phase"); phase == "Completed" {
				w.set(&w.restored)
			}
		}
	})
	w.done.Go(func() {
		<-ctx.Done()
		nsInf.Shutdown()
		wl.Shutdown()
	})
	return w, nil
}

func (w *Witness) set(t *time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if t.IsZero() {
		*t = time.Now()
	}
}

// Stop ends the watches.
func (w *Witness) Stop() {
	w.stop()
	w.done.Wait()
}

// Compare computes each milestone's latency from the witness's times.
func (w *Witness) Compare(run *v1alpha1.DrillRun) (*Overhead, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	rto, err := time.ParseDuration(string(run.Status.RTO))
	if err != nil {
		return nil, fmt.Errorf("run %s has no RTO (%s %s)", run.Name, run.Status.Verdict, run.Status.Reason)
	}
	// Workloads are recovered when they are Ready and the restore is done,
	// whichever came last.
	lastReady := w.ready
	if w.restored.After(lastReady) {
		lastReady = w.restored
	}
	type event struct {
		event string
		at    time.Time
	}
	truth := map[string]event{
		"namespace-terminated": {"namespace delete event", w.gone},
		"restore-completed":    {"Restore phase Completed event", w.restored},
		"workloads-ready":      {"last workload Ready event (or restore completed)", lastReady},
	}
	if w.fresh {
		truth = map[string]event{
			"restore-finished": {"Restore phase Completed event", w.restored},
			"workloads-ready":  {"last workload Ready event in the copy (or restore completed)", lastReady},
		}
	}
	o := &Overhead{Run: run.Name, RTO: rto, Breakdown: parts(run)}
	for _, m := range run.Status.Milestones {
		t, ok := truth[m.Name]
		if !ok {
			continue
		}
		if t.at.IsZero() {
			return nil, fmt.Errorf("the witness saw no %s", t.event)
		}
		lat := m.At.Sub(t.at)
		o.Phases = append(o.Phases, PhaseOverhead{Milestone: m.Name, Event: t.event, Latency: lat})
		o.Total += max(lat, 0)
	}
	if len(o.Phases) != len(truth) {
		return nil, fmt.Errorf("run %s recorded %d of %d milestones", run.Name, len(o.Phases), len(truth))
	}
	return o, nil
}

// Rows are the overhead's table rows: one per phase and the share of RTO.
func (o *Overhead) Rows() []Row {
	var rows []Row
	var parts []string
	prefix := "drill overhead: "
	if o.Label != "" {
		prefix = o.Label + " overhead: "
		rows = append(rows, Row{Figure: o.Label + " RTO (" + strings.Join(o.breakdown(), ", ") + ")",
			Drillbot: ms(o.RTO), Value: float64(o.RTO) / float64(time.Millisecond), Unit: "ms"})
	}
	for _, p := range o.Phases {
		rows = append(rows, Row{Figure: prefix + p.Milestone + " (" + p.Event + " -> recorded)",
			Drillbot: ms(p.Latency), Value: float64(p.Latency) / float64(time.Millisecond), Unit: "ms"})
		parts = append(parts, p.Milestone)
	}
	share := 100 * float64(o.Total) / float64(o.RTO)
	rows = append(rows, Row{Figure: fmt.Sprintf("%sshare of measured RTO (%s)", prefix, o.RTO.Round(time.Millisecond)),
		Drillbot: fmt.Sprintf("%.2f%% (%s of %s)", share, ms(o.Total), strings.Join(parts, "+")), Value: share, Unit: "%"})
	return rows
}

// breakdown is the RTO's shares, as the run recorded them.
func (o *Overhead) breakdown() []string {
	var out []string
	for _, p := range o.Breakdown {
		out = append(out, p.Name+" "+ms(p.Duration))
	}
	return out
}

// DemoApp creates the workload the overhead drill restores: a Deployment
// of 2 and a ConfigMap, in an opted-in namespace.
func DemoApp(ctx context.Context, c kubernetes.Interface, ns string) error {
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
		Labels: map[string]string{v1alpha1.LabelAllowDisaster: "true"}}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	l := map[string]string{"app": "shop"}
	if _, err := c.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "shop"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2), Selector: &metav1.LabelSelector{MatchLabels: l},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: l},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "shop", Image: "registry.example/shop:1"}}}}}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	_, err := c.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "shop-config"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{})
	return err
}
