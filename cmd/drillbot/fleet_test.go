package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/drillbot-io/drillbot/internal/report"
	"github.com/drillbot-io/drillbot/test/localcluster"
	"github.com/drillbot-io/drillbot/test/testharness"
)

// TestFleetReport: two real local clusters, each with a drill run in it,
// and a third that cannot be reached: the fleet report has both clusters'
// newest runs, names the third as not read, and exits 1.
func TestFleetReport(t *testing.T) {
	localcluster.Require(t, cluster)
	second := localcluster.Another(t)
	bin := testharness.Binary(t)
	ns := "fleet-" + localcluster.RandomSuffix()
	file := drillFile(t, fmt.Sprintf(`apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata: {name: fleet-probe}
spec:
  scenario: admission-probe
  objectives: {rto: 1m}
  target: {namespace: %s}
  params:
    attempt: {image: registry.example/x:1, privileged: true}
    reasonContains: "violates PodSecurity"
`, ns))
	for _, c := range []*localcluster.Cluster{cluster, second} {
		restrictedNamespace(t, c, ns)
		if out, err := exec.Command(bin, "run", "-f", file, "--kubeconfig", c.Kubeconfig, "-n", "fleet-system").CombinedOutput(); err != nil {
			t.Fatalf("run in %s: %v\n%s", c.Kubeconfig, err, out)
		}
	}
	// The third: the first cluster's kubeconfig pointing at a closed port.
	kc, err := clientcmd.LoadFromFile(cluster.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range kc.Clusters {
		c.Server = "https://127.0.0.1:1"
	}
	gone := filepath.Join(t.TempDir(), "gone.kubeconfig")
	if err := clientcmd.WriteToFile(*kc, gone); err != nil {
		t.Fatal(err)
	}
	// Its own drillbot namespace: only this test's runs.
	cmd := exec.Command(bin, "report", "-o", "json", "-n", "fleet-system", "--cluster-timeout", "10s", "--drills", file,
		"--cluster-kubeconfig", "main="+cluster.Kubeconfig, "--cluster-kubeconfig", "second="+second.Kubeconfig, "--cluster-kubeconfig", "gone="+gone)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitFail {
		t.Errorf("exit %v, want %d (a cluster not read)", err, exitFail)
	}
	var f report.Fleet
	if err := json.Unmarshal(out, &f); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var rows []string
	for _, r := range f.Rows {
		rows = append(rows, fmt.Sprintf("%s/%s %s %v", r.Cluster, r.Drill, r.Verdict, r.Compliant))
	}
	if got := strings.Join(rows, "; "); !strings.HasPrefix(got, "gone/ ") || !strings.Contains(got, "main/fleet-probe PASS true; second/fleet-probe PASS true") {
		t.Errorf("rows %s", got)
	}
	if f.TotalDrills != 2 || f.CompliantDrills != 2 || strings.Join(f.Unreachable, ",") != "gone" {
		t.Errorf("fleet %d of %d, unreachable %v", f.CompliantDrills, f.TotalDrills, f.Unreachable)
	}
}
