package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drillbot-io/drillbot/test/testharness"
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
		{"no command", nil, exitUsage, "", "Usage: drillbot COMMAND [flags]"},
		{"help with examples", []string{"run", "--help"}, 0, "drillbot run -f drills/namespace-restore.yaml --wait", ""},
		{"an unknown flag", []string{"run", "-f", bad, "--bogus"}, exitUsage, "", "unknown flag: --bogus"},
		{"an unknown output", []string{"report", "-o", "yaml"}, exitUsage, "", `unknown --output "yaml"`},
		{"plan needs a file", []string{"plan"}, exitUsage, "", "Usage: drillbot plan"},
		{"plan refuses bad drills before touching a cluster", []string{"plan", "-f", bad, "--kubeconfig", "/nonexistent"}, exitError, "", "spec.schedule"},
		{"plan with a malformed --as", []string{"plan", "-f", bad, "--as", "a:b:c"}, exitUsage, "", "want a service account"},
		{"completion for bash", []string{"completion", "bash"}, 0, "bash completion V2 for drillbot", ""},
		{"completion for zsh", []string{"completion", "zsh"}, 0, "#compdef drillbot", ""},
		{"completion for fish", []string{"completion", "fish"}, 0, "complete -c drillbot", ""},
		{"completion of --output values", []string{"__complete", "plan", "-o", ""}, 0, "markdown", ""},
		{"validate takes -n like the other commands", []string{"validate", "-n", "shop", "../../drills"}, 0, "drills valid", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := dispatch(context.Background(), "drillbot", tc.args, &out, &errOut)
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, out.String(), errOut.String())
			}
			if !strings.Contains(out.String(), tc.wantOut) || !strings.Contains(errOut.String(), tc.wantStderr) {
				t.Errorf("stdout %q (want %q)\nstderr %q (want %q)", out.String(), tc.wantOut, errOut.String(), tc.wantStderr)
			}
		})
	}
}

// TestKubectlPlugin: named kubectl-drillbot, the binary calls itself
// "kubectl drillbot"; with the local cluster's kubectl on hand, kubectl
// finds it on the PATH and runs it as a plugin.
func TestKubectlPlugin(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := dispatch(context.Background(), "kubectl-drillbot", []string{"plan", "--help"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "Usage: kubectl drillbot plan -f FILE") {
		t.Errorf("plugin help does not call itself kubectl drillbot:\n%s", out.String())
	}
	kubectl := filepath.Join(filepath.Dir(os.Getenv("DRILLBOT_KUBE_APISERVER")), "kubectl")
	if _, err := os.Stat(kubectl); err != nil {
		if os.Getenv("DRILLBOT_REQUIRE_CLUSTER") != "" {
			t.Fatalf("kubectl not found beside the API server: %v", err)
		}
		t.Skip("no kubectl (make cluster-bins)")
	}
	dir := t.TempDir()
	if err := os.Symlink(testharness.Binary(t), filepath.Join(dir, "kubectl-drillbot")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(kubectl, "drillbot", "version")
	cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
	got, err := cmd.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(got), "drillbot ") {
		t.Fatalf("kubectl drillbot version: %v: %s", err, got)
	}
	cmd = exec.Command(kubectl, "plugin", "list")
	cmd.Env = append(os.Environ(), "PATH="+dir)
	if got, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(got), "kubectl-drillbot") {
		t.Errorf("kubectl plugin list: %v: %s", err, got)
	}
}
