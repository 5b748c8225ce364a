// Command volumehelper is the local cluster's local-path-provisioner
// helper: the provisioner runs it in a pod on the node (its setupCommand
// and teardownCommand) to make or remove a volume's directory under the
// node's volume root, mounted into the pod. It replaces the shell scripts
// of the provisioner's own config, so the helper image is one static
// binary, FROM scratch like the others.
//
//	volumehelper -p DIR -s SIZE -m Filesystem -a create|delete
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	path := flag.String("p", "", "the volume's directory (absolute, inside the mounted volume root)")
	_ = flag.String("s", "", "the volume's size in bytes (not enforced: a directory has none)")
	mode := flag.String("m", "Filesystem", "the volume mode")
	action := flag.String("a", "", "create or delete")
	flag.Parse()
	if err := run(*path, *mode, *action); err != nil {
		fmt.Fprintln(os.Stderr, "volumehelper:", err)
		os.Exit(1)
	}
}

func run(path, mode, action string) error {
	clean := filepath.Clean(path)
	if !filepath.IsAbs(clean) || filepath.Dir(clean) == clean || filepath.Dir(filepath.Dir(clean)) == filepath.Dir(clean) {
		return fmt.Errorf("refusing path %q: a volume's directory is at least two levels deep", path)
	}
	if mode != "Filesystem" {
		return fmt.Errorf("volume mode %q: only Filesystem volumes are directories", mode)
	}
	switch action {
	case "create":
		if err := os.MkdirAll(clean, 0o777); err != nil {
			return err
		}
		// Any pod's user may write it, as the provisioner's own setup
		// script makes it (mkdir -m 0777).
		return os.Chmod(clean, 0o777)
	case "delete":
		return os.RemoveAll(clean)
	}
	return errors.New("-a: want create or delete, got " + action)
}
