// Command pause is the local cluster's sandbox ("pause") image: it holds a
// pod's namespaces and waits until it is told to stop, as
// registry.k8s.io/pause does.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
}
