// Command velero builds the Velero server and CLI for drillbot's local test cluster.
package main

import (
	"os"
	"path/filepath"

	"github.com/vmware-tanzu/velero/pkg/cmd/velero"
)

func main() {
	if err := velero.NewCommand(filepath.Base(os.Args[0])).Execute(); err != nil {
		os.Exit(1)
	}
}
