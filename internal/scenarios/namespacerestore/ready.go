package namespacerestore

import (
	"context"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// NotReady lists the workloads and pods that are not ready, as
// "kind/name (why)". An empty list means everything is ready.
func NotReady(deps []*appsv1.Deployment, stss []*appsv1.StatefulSet, dss []*appsv1.DaemonSet, pods []*corev1.Pod) []string {
	var out []string
	for _, d := range deps {
		want := replicas(d.Spec.Replicas)
		s := d.Status
		if s.ObservedGeneration < d.Generation || s.UpdatedReplicas < want || s.AvailableReplicas < want || s.ReadyReplicas < want {
			out = append(out, fmt.Sprintf("deployment/%s (%d/%d available)", d.Name, s.AvailableReplicas, want))
		}
	}
	for _, st := range stss {
		want := replicas(st.Spec.Replicas)
		s := st.Status
		if s.ObservedGeneration < st.Generation || s.ReadyReplicas < want || s.AvailableReplicas < want {
			out = append(out, fmt.Sprintf("statefulset/%s (%d/%d ready)", st.Name, s.ReadyReplicas, want))
		}
	}
	for _, ds := range dss {
		s := ds.Status
		if s.ObservedGeneration < ds.Generation || s.NumberReady < s.DesiredNumberScheduled || s.NumberAvailable < s.DesiredNumberScheduled {
			out = append(out, fmt.Sprintf("daemonset/%s (%d/%d ready)", ds.Name, s.NumberReady, s.DesiredNumberScheduled))
		}
	}
	for _, p := range pods {
		if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		if !podReady(p) {
			out = append(out, fmt.Sprintf("pod/%s (%s)", p.Name, p.Status.Phase))
		}
	}
	return out
}

func replicas(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// WorkloadsReady checks once that every workload and pod in ns is ready.
func WorkloadsReady(ctx context.Context, c kubernetes.Interface, ns string) error {
	deps, err := c.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list deployments: %w", err)
	}
	stss, err := c.AppsV1().StatefulSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list statefulsets: %w", err)
	}
	dss, err := c.AppsV1().DaemonSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list daemonsets: %w", err)
	}
	pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	if bad := NotReady(ptrs(deps.Items), ptrs(stss.Items), ptrs(dss.Items), ptrs(pods.Items)); len(bad) > 0 {
		return fmt.Errorf("not ready: %s", strings.Join(bad, ", "))
	}
	return nil
}

func ptrs[T any](items []T) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}

// WaitWorkloadsReady returns once every workload and pod in ns is ready. It
// is driven by informer events, not polling, so recovery is seen as soon as
// the API server reports it.
func WaitWorkloadsReady(ctx context.Context, c kubernetes.Interface, ns string) error {
	// Often everything is Ready already (kwok, fast restores): one check by
	// list answers at once, before informers that take ~100ms to sync.
	if err := WorkloadsReady(ctx, c, ns); err == nil || ctx.Err() != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	f := informers.NewSharedInformerFactoryWithOptions(c, 0, informers.WithNamespace(ns))
	changed := make(chan struct{}, 1)
	notify := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { signal(changed) },
		UpdateFunc: func(any, any) { signal(changed) },
		DeleteFunc: func(any) { signal(changed) },
	}
	deps, stss, dss, pods := f.Apps().V1().Deployments(), f.Apps().V1().StatefulSets(), f.Apps().V1().DaemonSets(), f.Core().V1().Pods()
	for _, inf := range []cache.SharedIndexInformer{deps.Informer(), stss.Informer(), dss.Informer(), pods.Informer()} {
		if _, err := inf.AddEventHandler(notify); err != nil {
			cancel()
			return fmt.Errorf("watch workloads: %w", err)
		}
	}
	f.Start(ctx.Done())
	// Stop the informers before waiting for them: Shutdown blocks until they
	// have stopped, which they do only once ctx is cancelled.
	defer func() { cancel(); f.Shutdown() }()
	for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("watch %v in %s: cache not synced: %w", typ, ns, context.Cause(ctx))
		}
	}
	var bad []string
	for {
		// A deadline that passes together with a change must not be read as
		// recovery.
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("workloads in %s not ready (%s): %w", ns, strings.Join(bad, ", "), context.Cause(ctx))
		}
		d, _ := deps.Lister().List(labels.Everything())
		s, _ := stss.Lister().List(labels.Everything())
		ds, _ := dss.Lister().List(labels.Everything())
		p, _ := pods.Lister().List(labels.Everything())
		if bad = NotReady(d, s, ds, p); len(bad) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("workloads in %s not ready (%s): %w", ns, strings.Join(bad, ", "), context.Cause(ctx))
		case <-changed:
		}
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
