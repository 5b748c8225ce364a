package localcluster

import (
	"context"
	"fmt"
	"os"
	"time"
)

// alertmanagerConfig routes every alert to a receiver that sends nothing:
// the tests read alerts through the API v2, as drillbot does.
const alertmanagerConfig = `route:
  receiver: "null"
  group_wait: 0s
  group_interval: 1s
receivers:
  - name: "null"
`

// startAlertmanager starts Alertmanager on loopback at port, without
// clustering (no gossip port), and returns its URL once ready.
func (c *Cluster) startAlertmanager(ctx context.Context, port int) (string, error) {
	if c.cfg.Bins.Alertmanager == "" {
		return "", fmt.Errorf("alertmanager binary not set (DRILLBOT_ALERTMANAGER; make monitoring)")
	}
	dir := c.path("alertmanager")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	cfg := c.path("alertmanager", "alertmanager.yml")
	if err := os.WriteFile(cfg, []byte(alertmanagerConfig), 0o644); err != nil {
		return "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := c.start("alertmanager", c.cfg.Bins.Alertmanager, nil, "--config.file="+cfg, "--storage.path="+dir,
		"--web.listen-address="+addr, "--cluster.listen-address=", "--log.level=warn"); err != nil {
		return "", err
	}
	url := "http://" + addr
	return url, c.waitHTTP(ctx, "alertmanager", url+"/-/ready", 30*time.Second)
}
