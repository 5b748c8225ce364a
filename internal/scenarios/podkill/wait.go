package podkill

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// waitReplaced watches the selector's pods until as many as were killed are
// Ready and not terminating. A killed pod still terminating does not count;
// one that was never deleted (the run died between its journal entry and
// the kill) counts as it is: the undo of a fault that never happened is
// already done.
func waitReplaced(ctx context.Context, c kubernetes.Interface, ns, selector string, killed []string) error {
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = selector
			return c.CoreV1().Pods(ns).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = selector
			return c.CoreV1().Pods(ns).Watch(ctx, o)
		},
	}
	var status string
	replaced := func(s cache.Store) (bool, error) {
		ready, terminating := 0, 0
		for _, obj := range s.List() {
			p := obj.(*corev1.Pod)
			switch {
			case p.DeletionTimestamp != nil:
				if slices.Contains(killed, p.Name) {
					terminating++
				}
			case podReady(p):
				ready++
			}
		}
		status = fmt.Sprintf("%d of %d replacement pods Ready, %d killed pods terminating", ready, len(killed), terminating)
		return ready >= len(killed), nil
	}
	// The informer updates its store before it delivers the event, so the
	// store the precondition saw is current in every condition call.
	var store cache.Store
	_, err := watchtools.UntilWithSync(ctx, lw, &corev1.Pod{}, func(s cache.Store) (bool, error) {
		store = s
		return replaced(store)
	}, func(watch.Event) (bool, error) {
		return replaced(store)
	})
	if err != nil {
		return fmt.Errorf("pods %s in %s not replaced (%s): %w", selector, ns, status, err)
	}
	return nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// allGone reports whether none of the named pods exists any more.
func allGone(ctx context.Context, c kubernetes.Interface, ns string, names []string) (bool, error) {
	for _, n := range names {
		_, err := c.CoreV1().Pods(ns).Get(ctx, n, metav1.GetOptions{})
		if err == nil {
			return false, nil
		}
		if !isNotFound(err) {
			return false, err
		}
	}
	return true, nil
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }
