package localcluster

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTakeOverNode: make demo then make test. A live real node of the
// project's own demo cluster (tmp/cluster under the checkout) is stopped
// with make cluster-down's code and the tests proceed, saying so; a live
// node of any other cluster is refused and left alone; a dead owner is
// left to the start's clean-up.
func TestTakeOverNode(t *testing.T) {
	root := t.TempDir()
	demo := filepath.Join(root, "tmp", "cluster")
	if err := os.MkdirAll(demo, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "checkout")
	if err := os.Symlink(root, link); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		owner    string
		pids     []int
		demoDir  string
		stopErr  error
		wantStop bool
		wantErr  string
		wantSaid string
	}{
		{name: "own demo cluster: stopped, tests proceed", owner: demo, pids: []int{42}, demoDir: demo,
			wantStop: true, wantSaid: "the tests take it over, stopping that cluster as make cluster-down does"},
		{name: "own demo cluster through a symlinked checkout", owner: demo, pids: []int{42}, demoDir: filepath.Join(link, "tmp", "cluster"),
			wantStop: true, wantSaid: "demo cluster in " + demo},
		{name: "own demo cluster that fails to stop", owner: demo, pids: []int{42}, demoDir: demo, stopErr: errors.New("left behind: bridge"),
			wantStop: true, wantErr: "stop the demo cluster in " + demo + " to take its real node over: left behind: bridge"},
		{name: "another directory of this checkout: refused", owner: filepath.Join(root, "tmp", "cluster-prod"), pids: []int{42}, demoDir: demo,
			wantErr: "a real node already runs for the cluster in " + filepath.Join(root, "tmp", "cluster-prod") + " (pids [42]): stop it first"},
		{name: "another checkout's demo cluster: refused", owner: "/srv/other/drillbot/tmp/cluster", pids: []int{7, 8}, demoDir: demo,
			wantErr: "a real node already runs for the cluster in /srv/other/drillbot/tmp/cluster (pids [7 8]): stop it first"},
		{name: "a test's cluster of another process: refused", owner: "/tmp/drillbot-cluster-123", pids: []int{9}, demoDir: demo,
			wantErr: "stop it first (make cluster-down CLUSTER_DIR=/tmp/drillbot-cluster-123)"},
		{name: "outside the project's checkout: refused", owner: demo, pids: []int{42}, demoDir: "",
			wantErr: "a real node already runs for the cluster in " + demo},
		{name: "dead owner: nothing stopped, the start clears it", owner: "/srv/other/tmp/cluster", demoDir: demo},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stopped []string
			var out strings.Builder
			err := takeOverNode(tc.owner, tc.pids, tc.demoDir, &out, func(dir string) error {
				stopped = append(stopped, dir)
				return tc.stopErr
			})
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
			if tc.wantStop != (len(stopped) == 1 && stopped[0] == tc.owner) || len(stopped) > 1 {
				t.Errorf("stopped %v, want stop=%v of %s", stopped, tc.wantStop, tc.owner)
			}
			if tc.wantSaid != "" && !strings.Contains(out.String(), tc.wantSaid) {
				t.Errorf("said %q, want %q", out.String(), tc.wantSaid)
			}
			if !tc.wantStop && out.Len() > 0 {
				t.Errorf("said %q without taking anything over", out.String())
			}
		})
	}
}

// TestDemoClusterDir: the demo's directory is tmp/cluster under the
// checkout's root (the go.mod of the project's module), from any package
// directory; elsewhere there is none.
func TestDemoClusterDir(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(filepath.Dir(wd)) // test/localcluster
	if got, want := DemoClusterDir(), filepath.Join(root, "tmp", "cluster"); got != want {
		t.Errorf("DemoClusterDir() = %q, want %q", got, want)
	}
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "go.mod"), []byte("module example.com/other\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(other, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Join(other, "sub"))
	if got := DemoClusterDir(); got != "" {
		t.Errorf("in another module DemoClusterDir() = %q, want none", got)
	}
}
