package testharness

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/drillbot-io/drillbot/internal/scenarios/corruptconfig"
)

// Logger is where the players log (a *testing.T, or the benchmarks' own).
type Logger interface {
	Logf(format string, args ...any)
}

// Falco sets up Falco's stand-in on kwok nodes in ns (created, opted in):
// the rules ConfigMap falco-rules (key falco_rules.yaml) and the DaemonSet
// falco, and waits until the DaemonSet is Ready. PlayFalco plays its part.
func Falco(ctx context.Context, kube kubernetes.Interface, ns, rules string) error {
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: OptIn}},
		metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "falco-rules"},
		Data: map[string]string{"falco_rules.yaml": rules}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	l := map[string]string{"app": "falco"}
	if _, err := kube.AppsV1().DaemonSets(ns).Create(ctx, &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "falco"},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: l}, Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: l},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "falco", Image: "registry.example/falco:0.41"}}}}}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		ds, err := kube.AppsV1().DaemonSets(ns).Get(ctx, "falco", metav1.GetOptions{})
		return err == nil && ds.Status.DesiredNumberScheduled > 0 && ds.Status.NumberReady == ds.Status.DesiredNumberScheduled, nil
	}); err != nil {
		return fmt.Errorf("falco in %s not Ready: %w", ns, err)
	}
	return nil
}

// PlayFalco plays Falco on kwok nodes (where no container runs): it fails
// the DaemonSet's pods whenever the rules are corrupt, until
// ctx ends. onDetected runs once, just before the first failure is
// reported: an on-call's hotfix made then lands before drillbot can see the
// failure and restore (run after it, the hotfix raced drillbot's restore
// and sometimes lost with a conflict, so the case passed or failed by
// timing).
func PlayFalco(ctx context.Context, t Logger, kube kubernetes.Interface, ns string, onDetected func()) {
	PlayFalcoWhen(ctx, t, kube, ns, onDetected, nil)
}

// PlayFalcoWhen is PlayFalco that fails the pods only once when(ctx) also
// holds (nil: at once): e.g. a fault that lasts until an alert fired.
func PlayFalcoWhen(ctx context.Context, t Logger, kube kubernetes.Interface, ns string, onDetected func(), when func(context.Context) bool) {
	failed := map[string]bool{}
	_ = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		cm, err := kube.CoreV1().ConfigMaps(ns).Get(ctx, "falco-rules", metav1.GetOptions{})
		if err != nil || cm.Data["falco_rules.yaml"] != corruptconfig.DefaultCorruptRules || (when != nil && !when(ctx)) {
			return false, nil
		}
		pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=falco"})
		if err != nil {
			return false, nil
		}
		for i := range pods.Items {
			p := &pods.Items[i]
			if failed[p.Name] || p.DeletionTimestamp != nil {
				continue
			}
			if onDetected != nil {
				onDetected()
				onDetected = nil
			}
			for j := range p.Status.Conditions {
				if p.Status.Conditions[j].Type == corev1.PodReady {
					p.Status.Conditions[j].Status = corev1.ConditionFalse
				}
			}
			for j := range p.Status.ContainerStatuses {
				cs := &p.Status.ContainerStatuses[j]
				cs.Ready, cs.RestartCount = false, cs.RestartCount+1
			}
			if _, err := kube.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
				t.Logf("falco player: %v", err)
				continue
			}
			failed[p.Name] = true
		}
		return false, nil
	})
}
