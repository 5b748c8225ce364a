// Command velero builds the Velero server and CLI for drillbot's local test cluster.
package main

import (
	"os"
	"path/filepath"

	"github.com/vmware-tanzu/velero/pkg/cmd/velero"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

func main() {
	// Velero's controller manager would bind its metrics to :8080 with no flag
	// to move it; several local clusters (a demo and a test run) must coexist.
	metricsserver.DefaultBindAddress = "0"
	if addr := os.Getenv("VELERO_CONTROLLER_METRICS_ADDRESS"); addr != "" {
		metricsserver.DefaultBindAddress = addr
	}
	if err := velero.NewCommand(filepath.Base(os.Args[0])).Execute(); err != nil {
		os.Exit(1)
	}
}
