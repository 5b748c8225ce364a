package localcluster

// startControllerManager starts kube-controller-manager with every
// controller: without it a deleted namespace never goes away and
// Deployments make no pods.
func (c *Cluster) startControllerManager() error {
	return c.start("kube-controller-manager", c.cfg.Bins.ControllerManager, nil,
		"--kubeconfig", c.Kubeconfig, "--leader-elect=false", "--secure-port=0",
		"--service-account-private-key-file", c.path("sa.key"), "--controllers=*",
		"--use-service-account-credentials=false", "--root-ca-file", c.path("certs", "apiserver.crt"),
		"--concurrent-namespace-syncs=5")
}
