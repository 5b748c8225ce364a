// Package realstorage_test runs the restore drills against real volume
// data: Velero's node-agent on the real node backs up a pod's local volume
// with kopia into the S3 store and restores it into another volume.
package realstorage_test

import (
	"os"
	"testing"

	"github.com/drillbot-io/drillbot/test/localcluster"
)

var cluster *localcluster.Cluster

func TestMain(m *testing.M) { os.Exit(localcluster.RunNodeAgentTests(m, &cluster)) }
