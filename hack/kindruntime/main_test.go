package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSpecFiles(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--root", "/r", "--log", "l.json", "create", "--bundle", "/b", "--pid-file", "p", "id"}, []string{"/b/config.json"}},
		{[]string{"create", "--bundle=/b", "id"}, []string{"/b/config.json"}},
		{[]string{"--root", "/r", "exec", "--process", "/tmp/p.json", "--detach", "id"}, []string{"/tmp/p.json"}},
		{[]string{"exec", "-p", "/tmp/p.json", "id"}, []string{"/tmp/p.json"}},
		{[]string{"--root", "/r", "start", "id"}, nil},
		{[]string{"kill", "id", "9"}, nil},
	} {
		if got := specFiles(tc.args); !slices.Equal(got, tc.want) {
			t.Errorf("specFiles(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}

func TestMissingCaps(t *testing.T) {
	f := filepath.Join(t.TempDir(), "status")
	// This project's VMs: every capability but CAP_SYS_RESOURCE (24).
	if err := os.WriteFile(f, []byte("Name:\tx\nCapBnd:\t000001fffeffffff\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := missingCaps(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 || !m["CAP_SYS_RESOURCE"] {
		t.Errorf("missing = %v, want CAP_SYS_RESOURCE only", m)
	}
}

func TestDropCaps(t *testing.T) {
	missing := map[string]bool{"CAP_SYS_RESOURCE": true}
	bundle := `{"ociVersion":"1.0.2","process":{"args":["/sbin/init"],"capabilities":{"bounding":["CAP_CHOWN","CAP_SYS_RESOURCE"],"effective":["CAP_SYS_RESOURCE","CAP_KILL"],"permitted":["CAP_CHOWN"]}},"root":{"path":"rootfs"}}`
	out, changed, err := dropCaps([]byte(bundle), missing)
	if err != nil || !changed {
		t.Fatalf("changed %v, err %v", changed, err)
	}
	s := string(out)
	if strings.Contains(s, "CAP_SYS_RESOURCE") || !strings.Contains(s, `"bounding":["CAP_CHOWN"]`) || !strings.Contains(s, `"effective":["CAP_KILL"]`) ||
		!strings.Contains(s, `"ociVersion":"1.0.2"`) || !strings.Contains(s, `"root":{"path":"rootfs"}`) {
		t.Errorf("bundle spec after: %s", s)
	}
	// Every other value is kept as written, the largest rlimit included.
	out, _, err = dropCaps([]byte(`{"process":{"rlimits":[{"type":"RLIMIT_NOFILE","hard":18446744073709551615,"soft":1048576}],"capabilities":{"bounding":["CAP_SYS_RESOURCE"]}}}`), missing)
	if err != nil || !strings.Contains(string(out), `"hard":18446744073709551615`) {
		t.Errorf("rlimit rewritten: %s (%v)", out, err)
	}
	// An exec's process file is the process itself.
	out, changed, err = dropCaps([]byte(`{"args":["sh"],"capabilities":{"bounding":["CAP_SYS_RESOURCE"]}}`), missing)
	if err != nil || !changed || strings.Contains(string(out), "CAP_SYS_RESOURCE") || !strings.Contains(string(out), `"args":["sh"]`) {
		t.Errorf("process file after: %s (changed %v, err %v)", out, changed, err)
	}
	// Nothing to drop: the file is left as it was.
	in := `{"process":{"capabilities":{"bounding":["CAP_CHOWN"]}}}`
	if out, changed, err = dropCaps([]byte(in), missing); err != nil || changed || string(out) != in {
		t.Errorf("unchanged spec: %s, %v, %v", out, changed, err)
	}
}
