package localcluster

import (
	"context"
	"fmt"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// kwokConfig keeps kwok's default stages: nodes and pods Ready at once.
const kwokConfig = "apiVersion: config.kwok.x-k8s.io/v1alpha1\nkind: KwokConfiguration\noptions:\n  enableCRDs: []\n"

// startKwok creates the fake nodes, starts kwok to play their kubelets and
// waits until they are Ready.
func (c *Cluster) startKwok(ctx context.Context) error {
	if err := os.WriteFile(c.path("kwok", "kwok.yaml"), []byte(kwokConfig), 0o600); err != nil {
		return err
	}
	if err := c.createNodes(ctx); err != nil {
		return err
	}
	if err := c.start("kwok", c.cfg.Bins.Kwok, nil,
		"--kubeconfig", c.Kubeconfig, "--node-ip=127.0.0.1",
		// Only the fake nodes: a real node's kubelet plays its own.
		"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
		// Node leases keep the node healthy: kwok's status heartbeat alone
		// (about a minute) is slower than the controller-manager's grace
		// period, which would mark every pod NotReady.
		"--node-lease-duration-seconds=40",
		"--config", c.path("kwok", "kwok.yaml")); err != nil {
		return err
	}
	return c.waitNodesReady(ctx)
}

func (c *Cluster) createNodes(ctx context.Context) error {
	res := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods: resource.MustParse("250"),
	}
	for i := range c.cfg.Nodes {
		name := fmt.Sprintf("kwok-node-%d", i)
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name,
				Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
				Labels:      map[string]string{"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "type": "kwok"},
			},
			Status: corev1.NodeStatus{Allocatable: res, Capacity: res},
		}
		if _, err := c.Kube.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create node %s: %w", name, err)
		}
	}
	return nil
}

func (c *Cluster) waitNodesReady(ctx context.Context) error {
	return c.poll(ctx, "kwok nodes Ready", 60*time.Second, func(ctx context.Context) (bool, error) {
		nodes, err := c.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		ready := 0
		for _, n := range nodes.Items {
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		return ready >= c.cfg.Nodes, nil
	})
}
