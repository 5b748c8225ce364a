// Package realcalico_test runs the network drills with Calico enforcing
// NetworkPolicy on the real node (calico-node v3.31.0 as a DaemonSet in
// calico-system, Felix's iptables dataplane on nf_tables, Calico's CNI):
// kill-calico-node against the real calico-node, and what a calico-node
// outage does to running pods' rules and to a policy changed meanwhile.
package realcalico_test

import (
	"os"
	"testing"

	"github.com/drillbot-io/drillbot/test/localcluster"
)

var cluster *localcluster.Cluster

func TestMain(m *testing.M) { os.Exit(localcluster.RunCalicoTests(m, &cluster)) }
