// Command kindruntime is the OCI runtime kind's nodes run under on a
// machine whose bounding capability set lacks CAP_SYS_RESOURCE (this
// project's VMs): kind starts every node --privileged, which asks for every
// capability, and runc then fails ("unable to apply caps: operation not
// permitted"). It removes the capabilities the machine does not have from
// the container's spec (the bundle's config.json on create and run, the
// --process file on exec) and runs runc with the same arguments.
//
// dockerd registers it with --add-runtime, and the local kind node image's
// containerd names it as runc's binary, for the node's privileged pods
// (kube-proxy) that meet the same limit one level down.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// runcPaths are where Debian's runc package (and others) put runc.
var runcPaths = []string{"/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc"}

func main() {
	missing, err := missingCaps("/proc/self/status")
	if err != nil {
		fail(err)
	}
	for _, f := range specFiles(os.Args[1:]) {
		if err := dropFromFile(f, missing); err != nil {
			fail(err)
		}
	}
	for _, p := range runcPaths {
		if _, err := os.Stat(p); err == nil {
			fail(syscall.Exec(p, append([]string{"runc"}, os.Args[1:]...), os.Environ()))
		}
	}
	fail(fmt.Errorf("no runc in %s", strings.Join(runcPaths, ", ")))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kindruntime:", err)
	os.Exit(1)
}

// specFiles are the spec files runc's arguments name: the bundle's
// config.json (create, run) and the process file (exec).
func specFiles(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(a, "=")
		switch name {
		case "--bundle", "-b", "--process", "-p":
		default:
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				continue
			}
			i++
			val = args[i]
		}
		if name == "--bundle" || name == "-b" {
			val = filepath.Join(val, "config.json")
		}
		out = append(out, val)
	}
	return out
}

// capNames are the capabilities by number (linux/capability.h).
var capNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
	"CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
	"CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

// missingCaps are the known capabilities outside this process's bounding
// set (CapBnd in /proc/self/status).
func missingCaps(status string) (map[string]bool, error) {
	data, err := os.ReadFile(status)
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		v, ok := strings.CutPrefix(line, "CapBnd:")
		if !ok {
			continue
		}
		bnd, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: CapBnd %q: %w", status, v, err)
		}
		missing := map[string]bool{}
		for i, n := range capNames {
			if bnd&(1<<uint(i)) == 0 {
				missing[n] = true
			}
		}
		return missing, nil
	}
	return nil, fmt.Errorf("%s: no CapBnd line", status)
}

// dropFromFile removes the missing capabilities from the spec (a bundle's
// config.json, or a process) in file, keeping every other field.
func dropFromFile(file string, missing map[string]bool) error {
	if len(missing) == 0 {
		return nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	out, changed, err := dropCaps(data, missing)
	if err != nil || !changed {
		return err
	}
	fi, err := os.Stat(file)
	if err != nil {
		return err
	}
	return os.WriteFile(file, out, fi.Mode().Perm())
}

func dropCaps(data []byte, missing map[string]bool) ([]byte, bool, error) {
	// Numbers kept as written: an rlimit of 2^64-1 must not come back as a
	// float.
	var spec map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&spec); err != nil {
		return nil, false, err
	}
	proc := spec
	if p, ok := spec["process"].(map[string]any); ok {
		proc = p
	}
	caps, ok := proc["capabilities"].(map[string]any)
	if !ok {
		return data, false, nil
	}
	changed := false
	for set, v := range caps {
		list, ok := v.([]any)
		if !ok {
			continue
		}
		kept := slices.DeleteFunc(slices.Clone(list), func(c any) bool { s, _ := c.(string); return missing[s] })
		if len(kept) != len(list) {
			caps[set], changed = kept, true
		}
	}
	if !changed {
		return data, false, nil
	}
	out, err := json.Marshal(spec)
	return out, true, err
}
