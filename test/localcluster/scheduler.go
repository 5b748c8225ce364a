package localcluster

// startScheduler starts kube-scheduler: without it pods stay Pending.
func (c *Cluster) startScheduler() error {
	return c.start("kube-scheduler", c.cfg.Bins.Scheduler, nil,
		"--kubeconfig", c.Kubeconfig, "--leader-elect=false", "--secure-port=0")
}
