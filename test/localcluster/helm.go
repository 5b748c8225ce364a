package localcluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// HelmUpgrade installs chart as release in ns (created), or upgrades the
// release, with values (YAML), and waits up to timeout for its workloads.
// Helm's caches and configuration live in a directory of its own, removed
// after, never under $HOME.
func HelmUpgrade(ctx context.Context, helm, kubeconfig, release, ns, chart, values string, timeout time.Duration) error {
	dir, err := os.MkdirTemp("", "drillbot-helm-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	vf := filepath.Join(dir, "values.yaml")
	if err := os.WriteFile(vf, []byte(values), 0o600); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, helm, "upgrade", "--install", release, chart, "--kubeconfig", kubeconfig,
		"--namespace", ns, "--create-namespace", "--values", vf, "--wait", "--timeout", timeout.String())
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+dir+"/cache", "HELM_CONFIG_HOME="+dir+"/config", "HELM_DATA_HOME="+dir+"/data")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("helm upgrade --install %s: %w: %s", release, err, out)
	}
	return nil
}
