// Command localcluster starts or stops drillbot's local cluster (make
// cluster-up / make cluster-down). The processes outlive "up"; "down" stops
// them from their pid files.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/drillbot-io/drillbot/internal/localcluster"
)

func main() {
	usage := func() {
		fmt.Fprintln(os.Stderr, "usage: localcluster up [-node real|kwok] DIR | down DIR")
		os.Exit(64)
	}
	if len(os.Args) < 3 || (os.Args[1] != "up" && os.Args[1] != "down") {
		usage()
	}
	flags := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	node := flags.String("node", "real", "real: one real node (kubelet, containerd, kube-proxy; needs root); kwok: fake nodes only")
	_ = flags.Parse(os.Args[2:])
	if flags.NArg() != 1 || (*node != "real" && *node != "kwok") {
		usage()
	}
	dir := flags.Arg(0)
	if os.Args[1] == "down" {
		if err := localcluster.StopDetached(dir); err != nil {
			fmt.Fprintln(os.Stderr, "localcluster down:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	bins, err := localcluster.BinsFromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "localcluster up:", err)
		os.Exit(1)
	}
	_ = localcluster.StopDetached(dir) // a cluster left from an earlier up
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintln(os.Stderr, "localcluster up:", err)
		os.Exit(1)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	c, err := localcluster.Start(ctx, localcluster.Config{Bins: bins, Dir: dir, Detach: true, Logger: log, RealNode: *node == "real"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "localcluster up:", err)
		os.Exit(1)
	}
	fmt.Printf("local cluster up: export KUBECONFIG=%s\n", c.Kubeconfig)
}
