package testharness

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/drillbot-io/drillbot/internal/scenarios/corruptconfig"
)

// PlayFalco plays Falco on kwok nodes (where no container runs): it fails
// the DaemonSet's pods whenever the rules are corrupt, until
// ctx ends. onDetected runs once, just before the first failure is
// reported: an on-call's hotfix made then lands before drillbot can see the
// failure and restore (run after it, the hotfix raced drillbot's restore
// and sometimes lost with a conflict, so the case passed or failed by
// timing).
func PlayFalco(ctx context.Context, t *testing.T, kube kubernetes.Interface, ns string, onDetected func()) {
	PlayFalcoWhen(ctx, t, kube, ns, onDetected, nil)
}

// PlayFalcoWhen is PlayFalco that fails the pods only once when(ctx) also
// holds (nil: at once): e.g. a fault that lasts until an alert fired.
func PlayFalcoWhen(ctx context.Context, t *testing.T, kube kubernetes.Interface, ns string, onDetected func(), when func(context.Context) bool) {
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
