package localcluster

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// TestExitedOnTakenPort: a component that dies because its port was taken
// between freePorts and its start is told apart, so the cluster is started
// again on other ports instead of failing the test package (seen: Velero's
// metrics port, with test packages starting clusters in parallel).
func TestExitedOnTakenPort(t *testing.T) {
	cases := []struct {
		name, output string
		taken        bool
	}{
		{"port taken", `level=fatal msg="Failed to start metric server at [127.0.0.1:41749]: listen tcp 127.0.0.1:41749: bind: address already in use"`, true},
		{"other failure", "level=fatal msg=\"no such bucket\"", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
				t.Fatal(err)
			}
			c := &Cluster{cfg: Config{Dir: dir}, log: slog.New(slog.DiscardHandler)}
			if err := c.start("component", "/bin/sh", nil, "-c", "echo '"+tc.output+"'; exit 1"); err != nil {
				t.Fatal(err)
			}
			<-c.procs[0].done
			err := c.exited()
			if err == nil || errors.Is(err, ErrPortTaken) != tc.taken {
				t.Fatalf("exited() = %v, want port taken: %t", err, tc.taken)
			}
		})
	}
}
