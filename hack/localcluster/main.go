// Command localcluster starts or stops drillbot's local cluster (make
// cluster-up / make cluster-down). The processes outlive "up"; "down" stops
// them from their pid files.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/drillbot-io/drillbot/internal/localcluster"
)

func main() {
	if len(os.Args) != 3 || (os.Args[1] != "up" && os.Args[1] != "down") {
		fmt.Fprintln(os.Stderr, "usage: localcluster up|down DIR")
		os.Exit(64)
	}
	dir := os.Args[2]
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
	c, err := localcluster.Start(ctx, localcluster.Config{Bins: bins, Dir: dir, Detach: true, Logger: log})
	if err != nil {
		fmt.Fprintln(os.Stderr, "localcluster up:", err)
		os.Exit(1)
	}
	fmt.Printf("local cluster up: export KUBECONFIG=%s\n", c.Kubeconfig)
}
