// Package halt is drillbot's halt switch: a ConfigMap in drillbot's
// namespace. While it exists no run starts and no fault is injected (the
// engine checks it before each), and a running daemon cancels its runs, which
// revert their faults. `drillbot halt` creates it, `drillbot resume` deletes it.
//
// Beside it lives the cluster's drill policy (policy.go): stop conditions,
// freeze windows and the Alertmanager that every drillbot process obeys,
// the daemon and `drillbot run` or `plan` from a laptop alike.
package halt

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Name is the halt ConfigMap's name.
const Name = "drillbot-halt"

// Switch is the halt switch in Namespace. It implements engine.Gate.
type Switch struct {
	Kube      kubernetes.Interface
	Namespace string
}

// Halted implements engine.Gate: it reads the switch from the API server,
// never from a cache, so a halt is seen by the very next fault.
func (s Switch) Halted(ctx context.Context) (string, bool, error) {
	cm, err := s.Kube.CoreV1().ConfigMaps(s.Namespace).Get(ctx, Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read halt switch %s/%s: %w", s.Namespace, Name, err)
	}
	return describe(cm), true, nil
}

func describe(cm *corev1.ConfigMap) string {
	return fmt.Sprintf("%s (by %s at %s)", cm.Data["reason"], cm.Data["by"], cm.Data["at"])
}

// Halt turns the switch on.
func (s Switch) Halt(ctx context.Context, reason, by string, now time.Time) error {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: Name, Namespace: s.Namespace, Labels: map[string]string{"app.kubernetes.io/managed-by": "drillbot"}},
		Data:       map[string]string{"reason": reason, "by": by, "at": now.UTC().Format(time.RFC3339)},
	}
	_, err := s.Kube.CoreV1().ConfigMaps(s.Namespace).Create(ctx, cm, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		_, err = s.Kube.CoreV1().ConfigMaps(s.Namespace).Update(ctx, cm, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("halt: %w", err)
	}
	return nil
}

// Resume turns the switch off.
func (s Switch) Resume(ctx context.Context) error {
	err := s.Kube.CoreV1().ConfigMaps(s.Namespace).Delete(ctx, Name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("resume: %w", err)
	}
	return nil
}

// Watch calls onHalt each time the switch is turned on (or changed while
// on), until ctx ends. It watches only the switch itself.
func (s Switch) Watch(ctx context.Context, onHalt func(reason string)) error {
	f := informers.NewSharedInformerFactoryWithOptions(s.Kube, 0, informers.WithNamespace(s.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", Name).String()
		}))
	on := func(obj any) {
		if cm, ok := obj.(*corev1.ConfigMap); ok {
			onHalt(describe(cm))
		}
	}
	if _, err := f.Core().V1().ConfigMaps().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: on, UpdateFunc: func(_, obj any) { on(obj) },
	}); err != nil {
		return err
	}
	f.Start(ctx.Done())
	<-ctx.Done()
	f.Shutdown()
	return nil
}
