package localcluster

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// The README's two commands work in either order: make demo leaves its
// cluster, and its real node, running for exploration, and make test's
// packages that need the real node take it over: they stop the project's
// own demo cluster as make cluster-down does, saying so. A real node of any
// other cluster (another checkout's, a cluster started elsewhere) is still
// refused.

// modulePath is the project's Go module: its checkout's root holds the
// demo's cluster directory.
const modulePath = "github.com/drillbot-io/drillbot"

// DemoClusterDir is where make demo and make cluster-up run the project's
// own cluster: tmp/cluster under the root of the checkout holding the
// working directory ("" outside one).
func DemoClusterDir() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if isProjectRoot(dir) {
			return filepath.Join(dir, "tmp", "cluster")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

func isProjectRoot(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) == 2 && fields[0] == "module" {
			return fields[1] == modulePath
		}
	}
	return false
}

// takeOverDemoNode runs before a test package starts its real node (with
// the real node's lock held): a live real node of the project's own demo
// cluster is stopped, with the code of make cluster-down (StopDetached);
// a live one of any other cluster is refused.
func takeOverDemoNode(out io.Writer) error {
	s, err := readNodeState()
	if err != nil || s == nil {
		return err
	}
	return takeOverNode(s.Dir, nodeOwners(s.Dir), DemoClusterDir(), out, StopDetached)
}

// takeOverNode decides what a test does about the real node the cluster in
// owner holds (pids: its live processes): nothing when none lives (the
// start clears what a dead owner left); stop it with stop, saying so on
// out, when owner is the project's demo cluster (demoDir); else refuse.
func takeOverNode(owner string, pids []int, demoDir string, out io.Writer, stop func(dir string) error) error {
	if len(pids) == 0 {
		return nil
	}
	if demoDir == "" || !sameDir(owner, demoDir) {
		return errNodeTaken(owner, pids)
	}
	fmt.Fprintf(out, "the real node belongs to this project's demo cluster in %s (left running by make demo or make cluster-up; pids %v): the tests take it over, stopping that cluster as make cluster-down does\n", owner, pids)
	if err := stop(owner); err != nil {
		return fmt.Errorf("stop the demo cluster in %s to take its real node over: %w", owner, err)
	}
	return nil
}

// errNodeTaken is the refusal to start a real node while another
// cluster's lives.
func errNodeTaken(dir string, pids []int) error {
	return fmt.Errorf("a real node already runs for the cluster in %s (pids %v): stop it first (make cluster-down CLUSTER_DIR=%s)", dir, pids, dir)
}

// sameDir says whether a and b name the same directory (symbolic links
// resolved when they exist).
func sameDir(a, b string) bool {
	resolve := func(p string) string {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return r
		}
		return filepath.Clean(p)
	}
	return resolve(a) == resolve(b)
}
