package bench

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
)

// RealPodKill is the pod-kill figure on the local cluster's real node: the
// RTO drillbot measured (kill -> every replacement Ready, seen by its watch)
// and, per trial, the kubelet's own account: the replacements' Ready
// transition times, which the API server stores to the second.
type RealPodKill struct {
	Trials int             `json:"trials"`
	RTO    []time.Duration `json:"rto"`
	// Kubelet is, per trial, the latest Ready transition of a replacement
	// minus the kill (1 s resolution).
	Kubelet []time.Duration `json:"kubelet"`
}

// RunPodKill runs one pod-kill drill and returns its finished DrillRun.
type RunPodKill func(ctx context.Context) (*v1alpha1.DrillRun, error)

// SampleDeployment runs a Deployment "web" of n replicas of tmpl (labelled
// app=web) in ns (opted in) and waits until it is Ready.
func SampleDeployment(ctx context.Context, c kubernetes.Interface, ns string, tmpl corev1.PodTemplateSpec, n int32) error {
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
		Labels: map[string]string{v1alpha1.LabelAllowDisaster: "true"}}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := c.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(n), Selector: &metav1.LabelSelector{MatchLabels: tmpl.Labels}, Template: tmpl}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	return waitDeploymentReady(ctx, c, ns, n)
}

func waitDeploymentReady(ctx context.Context, c kubernetes.Interface, ns string, n int32) error {
	return wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		d, err := c.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil || d.Status.ReadyReplicas != n || d.Status.UpdatedReplicas != n || d.Status.Replicas != n {
			return false, nil
		}
		// The killed pods of the trial before are gone too (the kubelet
		// stops them within their grace period).
		pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		return err == nil && len(pods.Items) == int(n), nil
	})
}

// MeasureRealPodKill runs trials pod-kill drills against the Deployment
// SampleDeployment made, waiting between trials until it is whole again.
func MeasureRealPodKill(ctx context.Context, c kubernetes.Interface, ns string, n int32, trials int, run RunPodKill) (*RealPodKill, error) {
	r := &RealPodKill{Trials: trials}
	for i := range trials {
		if err := waitDeploymentReady(ctx, c, ns, n); err != nil {
			return nil, fmt.Errorf("trial %d: sample app not Ready: %w", i, err)
		}
		dr, err := run(ctx)
		if err != nil {
			return nil, fmt.Errorf("trial %d: %w", i, err)
		}
		if dr.Status.Verdict != v1alpha1.VerdictPass || dr.Status.DisasterAt == nil {
			return nil, fmt.Errorf("trial %d: %s %s", i, dr.Status.Verdict, dr.Status.Reason)
		}
		rto, err := time.ParseDuration(dr.Status.RTO)
		if err != nil {
			return nil, fmt.Errorf("trial %d: RTO %q: %w", i, dr.Status.RTO, err)
		}
		pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return nil, err
		}
		disaster := dr.Status.DisasterAt.Time
		var kubelet time.Duration
		for _, p := range pods.Items {
			if p.CreationTimestamp.Time.Before(disaster.Truncate(time.Second)) {
				continue
			}
			for _, cond := range p.Status.Conditions {
				if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue && cond.LastTransitionTime.Sub(disaster) > kubelet {
					kubelet = cond.LastTransitionTime.Sub(disaster)
				}
			}
		}
		r.RTO, r.Kubelet = append(r.RTO, rto), append(r.Kubelet, kubelet)
	}
	return r, nil
}

// Rows are the figure's table rows.
func (r *RealPodKill) Rows() []Row {
	rto := Summarize(r.RTO)
	var diff []time.Duration
	for i := range r.RTO {
		diff = append(diff, r.RTO[i]-r.Kubelet[i])
	}
	d := Summarize(diff)
	return []Row{
		{Figure: fmt.Sprintf("pod-kill RTO on the real node (kill -> replacements Ready, %d trials)", r.Trials),
			Drillbot: fmt.Sprintf("median %s, p95 %s", ms(rto.Median), ms(rto.P95)), Value: float64(rto.Median) / float64(time.Millisecond), Unit: "ms"},
		{Figure: "pod-kill RTO minus the kubelet's Ready transition (its timestamps have 1 s resolution)",
			Drillbot: fmt.Sprintf("median %s, p95 %s, min %s", ms(d.Median), ms(d.P95), ms(d.Min)),
			Target:   ">= -1 s (never shorter than the kubelet's own account)", Met: Met(d.Min >= -time.Second),
			Value: float64(d.Median) / float64(time.Millisecond), Unit: "ms"},
	}
}
