// Package kube holds small Kubernetes helpers the scenarios share: waiting on
// watches (never polling) and building clients.
package kube

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// WaitNamespaceGone returns once the namespace no longer exists. It watches;
// it never strips finalizers.
func WaitNamespaceGone(ctx context.Context, c kubernetes.Interface, name string) error {
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return c.CoreV1().Namespaces().List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return c.CoreV1().Namespaces().Watch(ctx, o)
		},
	}
	_, err := watchtools.UntilWithSync(ctx, lw, nil, func(s cache.Store) (bool, error) {
		return len(s.List()) == 0, nil
	}, func(ev watch.Event) (bool, error) {
		return ev.Type == watch.Deleted, nil
	})
	if err != nil {
		return fmt.Errorf("wait for namespace %s to be gone: %w", name, err)
	}
	return nil
}

// WaitObject watches one named object through the dynamic client until cond
// is true for it. cond sees nil when the object does not exist.
func WaitObject(ctx context.Context, c dynamic.Interface, gvr schema.GroupVersionResource, namespace, name string, cond func(*unstructured.Unstructured) (bool, error)) (*unstructured.Unstructured, error) {
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	res := c.Resource(gvr).Namespace(namespace)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return res.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return res.Watch(ctx, o)
		},
	}
	var last *unstructured.Unstructured
	check := func(obj any) (bool, error) {
		u, _ := obj.(*unstructured.Unstructured)
		last = u
		return cond(u)
	}
	_, err := watchtools.UntilWithSync(ctx, lw, &unstructured.Unstructured{}, func(s cache.Store) (bool, error) {
		items := s.List()
		if len(items) == 0 {
			return check(nil)
		}
		return check(items[0])
	}, func(ev watch.Event) (bool, error) {
		if ev.Type == watch.Deleted {
			return check(nil)
		}
		return check(ev.Object)
	})
	if err != nil {
		return last, fmt.Errorf("wait for %s %s/%s: %w", gvr.Resource, namespace, name, err)
	}
	return last, nil
}
