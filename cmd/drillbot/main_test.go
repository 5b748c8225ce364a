package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCLI(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: drillbot.io/v1alpha1\nkind: Drill\nmetadata: {name: x}\nspec:\n  scenario: namespace-restore\n  schedule: '61 * * * *'\n  objectives: {rto: 5m, rpo: 1h}\n  target: {namespace: shop}\n  params: {backup: {create: true}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name       string
		args       []string
		wantCode   int
		wantOut    string
		wantStderr string
	}{
		{"validate the shipped catalog", []string{"validate", "../../drills"}, 0, "drills valid", ""},
		{"validate names file and field", []string{"validate", bad}, exitFail, "", bad + ": spec.schedule"},
		{"serve refuses bad drills before starting", []string{"serve", "--drills", bad, "--listen", "127.0.0.1:0"}, exitError, "", "spec.schedule"},
		{"run refuses bad drills before touching a cluster", []string{"run", "-f", bad, "--kubeconfig", "/nonexistent"}, exitError, "", "spec.schedule"},
		{"run needs a file", []string{"run"}, exitUsage, "", "Usage: drillbot run"},
		{"unknown command", []string{"explode"}, exitUsage, "", `unknown command "explode"`},
		{"version", []string{"version"}, 0, "drillbot ", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := dispatch(context.Background(), tc.args, &out, &errOut)
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, out.String(), errOut.String())
			}
			if !strings.Contains(out.String(), tc.wantOut) || !strings.Contains(errOut.String(), tc.wantStderr) {
				t.Errorf("stdout %q (want %q)\nstderr %q (want %q)", out.String(), tc.wantOut, errOut.String(), tc.wantStderr)
			}
		})
	}
}
