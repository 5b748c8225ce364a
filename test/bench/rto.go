package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
)

// unmanagedNode prefixes node names no node has: kwok leaves pods bound to
// them alone, so only the benchmark sets their status. Each trial uses a new
// name: the pod garbage collector deletes pods of a missing node once the
// node has been missing for 40s.
const unmanagedNode = "drillbot-bench-unmanaged"

// Precision is the RTO precision figure: per observer, the error (observed
// minus true recovery time) over the trials.
type Precision struct {
	Trials int `json:"trials"`
	// Errors per observer: "drillbot (watch)", "poll 1s", "poll 5s".
	Errors map[string][]time.Duration `json:"errors"`
	// WriteSpan is the distribution of the status write's round trip: the
	// true moment lies inside it (its midpoint is used).
	WriteSpan Summary `json:"writeSpan"`
}

// Observer waits until the pod is Ready.
type observer struct {
	name string
	wait func(ctx context.Context) error
}

// MeasurePrecision runs trials: each creates a pod that no kubelet runs,
// starts drillbot's watch-driven recovery wait (the one the
// namespace-restore drill uses) and two fixed-interval pollers (1s, 5s: a
// `kubectl wait`-style loop and a chaos tool's probe, each starting at a
// random phase), then marks the pod Ready at a moment the benchmark records,
// and takes each observer's error.
func MeasurePrecision(ctx context.Context, c kubernetes.Interface, ns string, trials int) (*Precision, error) {
	p := &Precision{Trials: trials, Errors: map[string][]time.Duration{}}
	var spans []time.Duration
	for i := range trials {
		name := fmt.Sprintf("rto-%d", i)
		pod, err := c.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       corev1.PodSpec{NodeName: fmt.Sprintf("%s-%d", unmanagedNode, i), Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}},
		}, metav1.CreateOptions{})
		if err != nil {
			return nil, fmt.Errorf("trial %d: %w", i, err)
		}
		observers := []observer{
			{"drillbot (watch)", func(ctx context.Context) error { return namespacerestore.WaitWorkloadsReady(ctx, c, ns) }},
			{"poll 1s", poller(c, ns, name, time.Second)},
			{"poll 5s", poller(c, ns, name, 5*time.Second)},
		}
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		seen := make([]time.Time, len(observers))
		errs := make([]error, len(observers))
		var wg sync.WaitGroup
		for k, o := range observers {
			wg.Go(func() {
				errs[k] = o.wait(tctx)
				seen[k] = time.Now()
			})
		}
		// Give the watch time to sync; the pollers' phases are random.
		time.Sleep(1500 * time.Millisecond)
		pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()},
			{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()},
		}}
		t0 := time.Now()
		_, err = c.CoreV1().Pods(ns).UpdateStatus(tctx, pod, metav1.UpdateOptions{})
		t1 := time.Now()
		if err != nil {
			cancel()
			wg.Wait()
			return nil, fmt.Errorf("trial %d: mark Ready: %w", i, err)
		}
		truth := t0.Add(t1.Sub(t0) / 2)
		spans = append(spans, t1.Sub(t0))
		wg.Wait()
		cancel()
		if err := errors.Join(errs...); err != nil {
			return nil, fmt.Errorf("trial %d: %w", i, err)
		}
		for k, o := range observers {
			p.Errors[o.name] = append(p.Errors[o.name], seen[k].Sub(truth))
		}
		if err := deletePod(ctx, c, ns, name); err != nil {
			return nil, err
		}
	}
	p.WriteSpan = Summarize(spans)
	return p, nil
}

// poller checks the pod every interval, the first check at a random phase.
func poller(c kubernetes.Interface, ns, name string, every time.Duration) func(context.Context) error {
	return func(ctx context.Context) error {
		phase := time.Duration(rand.Int64N(int64(every)))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(phase):
		}
		return wait.PollUntilContextCancel(ctx, every, true, func(ctx context.Context) (bool, error) {
			p, err := c.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			for _, cond := range p.Status.Conditions {
				if cond.Type == corev1.PodReady {
					return cond.Status == corev1.ConditionTrue, nil
				}
			}
			return false, nil
		})
	}
}

func deletePod(ctx context.Context, c kubernetes.Interface, ns, name string) error {
	if err := c.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := c.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

// Rows turns the figure into table rows: drillbot against each poller.
func (p *Precision) Rows(target time.Duration) []Row {
	db := Summarize(p.Errors["drillbot (watch)"])
	var rows []Row
	for _, peer := range []string{"poll 1s", "poll 5s"} {
		ps := Summarize(p.Errors[peer])
		rows = append(rows, Row{
			Figure:   fmt.Sprintf("RTO error p95 (%d trials; median %s, max %s)", p.Trials, ms(db.Median), ms(db.Max)),
			Drillbot: ms(db.P95), PeerMethod: peer, Peer: fmt.Sprintf("%s (median %s)", ms(ps.P95), ms(ps.Median)),
			Ratio:  Ratio(float64(ps.P95), float64(db.P95)),
			Target: "p95 < " + ms(target), Met: Met(db.P95 < target),
			Value: float64(db.P95) / float64(time.Millisecond), Unit: "ms",
		})
	}
	return rows
}
