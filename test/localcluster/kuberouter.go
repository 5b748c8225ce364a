package localcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// The real node's NetworkPolicy enforcer: kube-router's network policy
// controller alone (the one k3s embeds), run on the node as kube-proxy is.
// It writes iptables chains (KUBE-ROUTER-*, KUBE-POD-FW-*, KUBE-NWPLCY-*),
// removed with the node's other KUBE- chains, and ipsets (KUBE-SRC-*,
// KUBE-DST-*), removed by removeIPSets once no rule refers to them.

// kubeRouterChain is the chain kube-router hooks into FORWARD once its
// controller has synced.
const kubeRouterChain = "KUBE-ROUTER-FORWARD"

func (c *Cluster) startKubeRouter(ctx context.Context) error {
	// The kubeconfig goes under the node's directory, so the process is
	// found (and killed) with the node's own after a crash.
	kc, err := os.ReadFile(c.Kubeconfig)
	if err != nil {
		return err
	}
	if err := os.WriteFile(c.nodePath("kube-router.kubeconfig"), kc, 0o600); err != nil {
		return err
	}
	if err := c.start("kube-router", c.cfg.Bins.KubeRouter, nil,
		"--kubeconfig", c.nodePath("kube-router.kubeconfig"), "--hostname-override", NodeName,
		"--run-firewall=true", "--run-router=false", "--run-service-proxy=false", "--run-loadbalancer=false",
		"--enable-ipv4=true", "--enable-ipv6=false", "--service-cluster-ip-range", serviceCIDR,
		"--health-port=0", "--metrics-port=0", "--iptables-sync-period", "1m", "--v", "1"); err != nil {
		return err
	}
	return c.poll(ctx, "kube-router's network policy chains", 60*time.Second, func(ctx context.Context) (bool, error) {
		return hasForwardJump(ctx, kubeRouterChain), nil
	})
}

// hasForwardJump tells whether the filter table's FORWARD chain jumps to
// chain: the NetworkPolicy enforcer has synced.
func hasForwardJump(ctx context.Context, chain string) bool {
	out, err := exec.CommandContext(ctx, "iptables", "-w", "5", "-S", "FORWARD").Output()
	return err == nil && strings.Contains(string(out), "-j "+chain)
}

// isOurIPSet tells kube-router's and Felix's sets (for either family) apart
// from the machine's others.
func isOurIPSet(name string) bool {
	n := strings.TrimPrefix(name, "inet6:")
	return strings.HasPrefix(n, "KUBE-") || strings.HasPrefix(n, "cali40") || strings.HasPrefix(n, "cali60")
}

// ourIPSets lists the node's ipsets.
func ourIPSets() []string {
	out, err := exec.Command("ipset", "list", "-n").Output()
	if err != nil {
		return nil
	}
	var sets []string
	for _, n := range strings.Fields(string(out)) {
		if isOurIPSet(n) {
			sets = append(sets, n)
		}
	}
	return sets
}

// removeIPSets destroys the node's ipsets; run after its iptables chains
// are gone (a set in use cannot be destroyed).
func removeIPSets(ctx context.Context) error {
	if _, err := exec.LookPath("ipset"); err != nil {
		return nil
	}
	var errs []error
	for _, s := range ourIPSets() {
		if err := run(ctx, "ipset", "destroy", s); err != nil {
			errs = append(errs, fmt.Errorf("remove ipset: %w", err))
		}
	}
	return errors.Join(errs...)
}
