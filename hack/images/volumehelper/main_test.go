package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRun(t *testing.T) {
	root := t.TempDir()
	vol := filepath.Join(root, "pvc-1_shop_data")
	if err := run(vol, "Filesystem", "create"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(vol); err != nil || fi.Mode().Perm() != 0o777 {
		t.Fatalf("created %v (%v), want a directory anyone may write", fi, err)
	}
	if err := os.WriteFile(filepath.Join(vol, "orders"), []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(vol, "Filesystem", "delete"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(vol); !os.IsNotExist(err) {
		t.Fatalf("not deleted: %v", err)
	}
	for _, bad := range []struct{ path, mode, action string }{
		{"/", "Filesystem", "delete"}, {"/data", "Filesystem", "delete"}, {"relative/x", "Filesystem", "create"},
		{vol, "Block", "create"}, {vol, "Filesystem", "resize"},
	} {
		if err := run(bad.path, bad.mode, bad.action); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
	if _, err := os.Stat(root); err != nil {
		t.Fatal("the volume root went with a refused delete")
	}
}
