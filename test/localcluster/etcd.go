package localcluster

import (
	"context"
	"fmt"
	"time"
)

// startEtcd starts etcd on loopback (client port, peer port) and returns
// its client URL once /health answers.
func (c *Cluster) startEtcd(ctx context.Context, port, peerPort int) (string, error) {
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	peer := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	if err := c.start("etcd", c.cfg.Bins.Etcd, nil,
		"--data-dir", c.path("etcd"), "--listen-client-urls", url, "--advertise-client-urls", url,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "default="+peer,
		"--unsafe-no-fsync", "--log-level", "warn"); err != nil {
		return "", err
	}
	return url, c.waitHTTP(ctx, "etcd", url+"/health", 60*time.Second)
}
