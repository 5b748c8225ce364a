// Command kindcluster is make demo CLUSTER=kind and make cluster-down's kind
// part: drillbot's end-to-end on a kind cluster through kind's Go library
// (test/kindcluster), left running for you to look at, and its removal.
//
//	kindcluster demo [-node-image local|kind|REF] DIR
//	kindcluster down DIR
//
// -node-image local (the default here): the harness's own Docker (Debian's
// dockerd, no iptables, no masquerade, a network that keeps its traffic on
// this machine) and the node image hack/kindnode built; needs root.
// kind: the machine's Docker and kind's own node image (pulled from its
// registry: a Linux laptop or CI runner with Docker). REF: an image of the
// machine's Docker.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"sigs.k8s.io/kind/pkg/cluster"

	"github.com/drillbot-io/drillbot/test/kindcluster"
)

// clusterName is the demo's kind cluster.
const clusterName = "drillbot-demo"

// localDocker marks, in DIR, that the harness's Docker serves the cluster.
const localDocker = "local-docker"

func main() {
	usage := func() {
		fmt.Fprintln(os.Stderr, "usage: kindcluster demo [-node-image local|kind|REF] DIR | down DIR")
		os.Exit(64)
	}
	if len(os.Args) < 3 || (os.Args[1] != "demo" && os.Args[1] != "down") {
		usage()
	}
	flags := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	nodeImage := flags.String("node-image", "local", "local: the harness's Docker and hack/kindnode's image; kind: the machine's Docker and kind's own image; or an image reference in the machine's Docker")
	_ = flags.Parse(os.Args[2:])
	if flags.NArg() != 1 {
		usage()
	}
	dir, err := filepath.Abs(flags.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "kindcluster:", err)
		os.Exit(1)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if os.Args[1] == "down" {
		err = down(ctx, dir, log)
	} else {
		err = demo(ctx, dir, *nodeImage, log)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kindcluster %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func demo(ctx context.Context, dir, nodeImage string, log *slog.Logger) error {
	if err := down(ctx, dir, log); err != nil { // a demo left from before
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cfg := kindcluster.Config{Name: clusterName, Kubeconfig: filepath.Join(dir, "kubeconfig"), Logger: log}
	switch nodeImage {
	case "local":
		node, ref, rt := os.Getenv("DRILLBOT_KIND_NODE"), os.Getenv("DRILLBOT_KIND_NODE_REF"), os.Getenv("DRILLBOT_KIND_RUNTIME")
		if node == "" || ref == "" || rt == "" {
			return errors.New("DRILLBOT_KIND_NODE, DRILLBOT_KIND_NODE_REF and DRILLBOT_KIND_RUNTIME are set by make demo CLUSTER=kind")
		}
		if err := os.WriteFile(filepath.Join(dir, localDocker), nil, 0o644); err != nil {
			return err
		}
		d, err := kindcluster.StartDocker(ctx, kindcluster.DockerConfig{Dockerd: "dockerd", Runtime: rt, Detach: true, Logger: log})
		if err != nil {
			return err
		}
		if err := d.LoadImage(ctx, node); err != nil {
			return err
		}
		if err := d.Network(ctx, "drillbot-kind", "drillbot-kind0", "172.30.250.0/24"); err != nil {
			return err
		}
		cfg.NodeImage, cfg.Local, cfg.DockerHost, cfg.Network = ref, true, d.Host, "drillbot-kind"
	case "kind":
	default:
		cfg.NodeImage = nodeImage
	}
	c, err := kindcluster.Create(ctx, cfg)
	if err != nil {
		return err
	}
	run, err := c.RunE2E(ctx, kindcluster.E2E{Images: os.Getenv("DRILLBOT_IMAGES"), KindImages: os.Getenv("DRILLBOT_KIND_IMAGES"),
		Helm: os.Getenv("DRILLBOT_HELM"), Velero: os.Getenv("DRILLBOT_VELERO"), Chart: "deploy/helm/drillbot"})
	if err != nil {
		return err
	}
	fmt.Printf("\nThe daemon's run %s: %s (RTO %s, RPO %s)\n  %s\n\n", run.Name, run.Status.Verdict, run.Status.RTO, run.Status.RPO, run.Status.Reason)
	if bin := os.Getenv("DRILLBOT"); bin != "" {
		cmd := exec.CommandContext(ctx, bin, "report", "--kubeconfig", cfg.Kubeconfig, "--output", "markdown")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("drillbot report: %w", err)
		}
	}
	fmt.Printf("\nThe kind cluster %s is left running: KUBECONFIG=%s; make cluster-down removes it", clusterName, cfg.Kubeconfig)
	if cfg.Local {
		fmt.Printf(" and the harness's Docker (%s)", kindcluster.DockerDir)
	}
	fmt.Println(".")
	if run.Status.Verdict != "PASS" {
		return fmt.Errorf("the run's verdict is %s, not PASS", run.Status.Verdict)
	}
	return nil
}

// down deletes the demo's kind cluster and, if the harness's Docker served
// it, stops that Docker and clears everything it made.
func down(ctx context.Context, dir string, log *slog.Logger) error {
	local := true
	if _, err := os.Stat(filepath.Join(dir, localDocker)); errors.Is(err, os.ErrNotExist) {
		local = false
	}
	var errs []error
	if local {
		if err := os.Setenv("DOCKER_HOST", kindcluster.DockerHost(kindcluster.DockerDir)); err != nil {
			return err
		}
	}
	engine := cluster.ProviderWithDocker()
	if !local {
		// The machine's own engine, as Create chose it; none: nothing to delete.
		var err error
		if engine, err = cluster.DetectNodeProvider(); err != nil || engine == nil {
			engine = nil
		}
	}
	if engine != nil {
		p := cluster.NewProvider(cluster.ProviderWithLogger(kindcluster.Logger(log)), engine)
		if names, err := p.List(); err == nil {
			for _, n := range names {
				if n == clusterName {
					if err := p.Delete(n, filepath.Join(dir, "kubeconfig")); err != nil {
						errs = append(errs, err)
					}
				}
			}
		}
	}
	// The harness's Docker is stopped whatever DIR says: what a crashed
	// demo left is cleared too.
	if err := kindcluster.StopDocker(ctx, "", log); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
