package localcluster

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// What a real node changes outside its cluster directory, and how it is
// put back: the node's state file under /run records the cluster that owns
// the machine's real node and the values it found, so a start after a crash
// (or make cluster-down) can clear everything, and NodeLeftovers can prove
// nothing is left.

const nodeStateDir = "/run/drillbot-localcluster"

var nodeStateFile = filepath.Join(nodeStateDir, "node.json")

// tunedSysctls are the settings the kubelet (kernel tunables), the CNI
// bridge plugin (forwarding) and kube-proxy may change; they are restored.
var tunedSysctls = []string{
	"net/ipv4/ip_forward", "net/ipv4/conf/all/route_localnet",
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
}

// Machine paths the node's runtime writes to whatever its configuration:
// the containerd shims' sockets and libcni's result cache.
const (
	shimSocketDir = "/run/containerd"
	cniCacheDir   = "/var/lib/cni"
)

type nodeState struct {
	Dir       string            `json:"dir"`
	KubeProxy string            `json:"kubeProxy"`
	Sysctls   map[string]string `json:"sysctls"`
	// Created lists machine paths that did not exist before the node.
	Created []string `json:"created,omitempty"`
}

func readNodeState() (*nodeState, error) {
	data, err := os.ReadFile(nodeStateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s nodeState
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", nodeStateFile, err)
	}
	return &s, nil
}

// claimNode makes this cluster the owner of the machine's real node: it
// refuses when another live cluster owns it or when the machine has
// Kubernetes iptables chains the harness did not make, and clears what a
// dead owner left.
func claimNode(ctx context.Context, dir, kubeProxy string, log *slog.Logger) error {
	prev, err := readNodeState()
	if err != nil {
		return err
	}
	if prev != nil {
		if pids := nodeOwners(prev.Dir); len(pids) > 0 && prev.Dir != dir {
			return errNodeTaken(prev.Dir, pids)
		}
		log.Warn("clearing a real node left behind", "dir", prev.Dir)
		if err := cleanupNode(ctx, prev, log); err != nil {
			return fmt.Errorf("clear the real node left by %s: %w", prev.Dir, err)
		}
	} else if chains := ourChains(); len(chains) > 0 {
		return fmt.Errorf("this machine has Kubernetes/CNI iptables chains the harness did not create (%s): it looks like a Kubernetes node; refusing to run a real node here", strings.Join(chains, ", "))
	} else if _, err := net.InterfaceByName(bridgeName); err == nil {
		_ = run(ctx, "ip", "link", "del", bridgeName)
	}
	s := &nodeState{Dir: dir, KubeProxy: kubeProxy, Sysctls: map[string]string{}}
	for _, k := range tunedSysctls {
		if v, err := os.ReadFile(filepath.Join("/proc/sys", k)); err == nil {
			s.Sysctls[k] = strings.TrimSpace(string(v))
		}
	}
	for _, p := range []string{shimSocketDir, cniCacheDir} {
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			s.Created = append(s.Created, p)
		}
	}
	if err := os.MkdirAll(nodeStateDir, 0o700); err != nil {
		return err
	}
	data, _ := json.MarshalIndent(s, "", "  ")
	return os.WriteFile(nodeStateFile, data, 0o600)
}

// StopNode clears the machine's real node if it belongs to the cluster in
// dir, or to a cluster that is gone (a test run killed mid-way left its
// shims and mounts): make cluster-down; Stop does it for its own cluster.
// A live cluster's node is left alone.
func StopNode(ctx context.Context, dir string, log *slog.Logger) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	s, err := readNodeState()
	if err != nil || s == nil {
		return err
	}
	if s.Dir != dir && len(nodeOwners(s.Dir)) > 0 {
		return nil
	}
	if s.Dir != dir {
		log.Warn("clearing a real node left behind", "dir", s.Dir)
	}
	return cleanupNode(ctx, s, log)
}

// cleanupNode kills every process of the node (the kubelet, kube-proxy,
// containerd, its shims and every container), unmounts what is mounted
// under the cluster directory (container root filesystems, network
// namespaces, volumes), removes the pods' cgroups, the bridge and every
// iptables chain and ipset of the node, and restores the sysctls it found.
func cleanupNode(ctx context.Context, s *nodeState, log *slog.Logger) error {
	var errs []error
	all := func() []int { named, inPods := nodeProcesses(s.Dir); return append(named, inPods...) }
	for attempt := 0; attempt < 50; attempt++ {
		pids := all()
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if pids := all(); len(pids) > 0 {
		errs = append(errs, fmt.Errorf("processes of the real node survive SIGKILL: %v", pids))
	}
	for _, m := range MountsUnder(s.Dir) {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
		}
	}
	errs = append(errs, RemoveCgroups(cgroupRoot)...)
	if s.KubeProxy != "" {
		if _, err := os.Stat(s.KubeProxy); err == nil {
			// kube-proxy's own clean-up of its rules; what it misses (and
			// the kubelet's and CNI's chains) goes below.
			out, err := exec.CommandContext(ctx, s.KubeProxy, "--cleanup").CombinedOutput()
			if err != nil {
				log.Debug("kube-proxy --cleanup", "err", err, "output", string(out))
			}
		}
	}
	for _, family := range []string{"iptables", "ip6tables"} {
		if err := removeChains(ctx, family); err != nil {
			errs = append(errs, err)
		}
	}
	if err := removeIPSets(ctx); err != nil {
		errs = append(errs, err)
	}
	if _, err := net.InterfaceByName(bridgeName); err == nil {
		if err := run(ctx, "ip", "link", "del", bridgeName); err != nil {
			errs = append(errs, err)
		}
	}
	for k, v := range s.Sysctls {
		p := filepath.Join("/proc/sys", k)
		if cur, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(cur)) != v {
			if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
				errs = append(errs, fmt.Errorf("restore sysctl %s=%s: %w", k, v, err))
			}
		}
	}
	errs = append(errs, removeRuntimeLeftovers(s)...)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := os.Remove(nodeStateFile); err != nil {
		return err
	}
	_ = os.Remove(nodeStateDir) // only when empty
	return nil
}

// nodeProcesses lists the processes of the real node of the cluster in dir:
// named, those whose command line names the node's directory (kubelet,
// kube-proxy, containerd and its shims), and inPods, the others in the
// pods' cgroups (containers, of any cluster's node).
func nodeProcesses(dir string) (named, inPods []int) {
	entries, _ := os.ReadDir("/proc")
	marker := filepath.Join(dir, "node") + "/"
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if strings.Contains(string(cmd), marker) {
			named = append(named, pid)
			continue
		}
		if cg, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cgroup")); strings.Contains(string(cg), "/"+cgroupRoot+"/") {
			inPods = append(inPods, pid)
		}
	}
	return named, inPods
}

// nodeOwners lists the node's kubelet, kube-proxy and containerd: the
// processes that make a node alive. Shims and containers alone are what a
// crashed node left.
func nodeOwners(dir string) []int {
	var owners []int
	named, _ := nodeProcesses(dir)
	for _, pid := range named {
		exe, _ := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "exe"))
		switch strings.TrimSuffix(filepath.Base(exe), " (deleted)") {
		case "kubelet", "kube-proxy", "containerd":
			owners = append(owners, pid)
		}
	}
	return owners
}

// mountInfo returns the mount points and file system types of this
// process's mount namespace.
func mountInfo() (points, types []string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := slices.Index(fields, "-")
		if len(fields) < 5 || sep < 0 || sep+1 >= len(fields) {
			continue
		}
		points = append(points, unescapeMount(fields[4]))
		types = append(types, fields[sep+1])
	}
	return points, types
}

func unescapeMount(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}

// MountsUnder lists the mount points at or under dir, deepest first.
func MountsUnder(dir string) []string {
	points, _ := mountInfo()
	var out []string
	for _, p := range points {
		if p == dir || strings.HasPrefix(p, dir+"/") {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// CgroupDirs lists the directories of the cgroup root (a name under each
// hierarchy's mount point: the node's pods, or a Docker's containers) in
// every hierarchy, deepest first.
func CgroupDirs(root string) []string {
	points, types := mountInfo()
	var dirs []string
	for i, p := range points {
		if types[i] != "cgroup" && types[i] != "cgroup2" {
			continue
		}
		_ = filepath.WalkDir(filepath.Join(p, root), func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
	}
	slices.SortFunc(dirs, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	return dirs
}

// RemoveCgroups removes the directories of the cgroup root, once the
// processes in them are gone.
func RemoveCgroups(root string) []error {
	var errs []error
	for _, d := range CgroupDirs(root) {
		var err error
		for range 20 {
			if err = syscall.Rmdir(d); err == nil || errors.Is(err, syscall.ENOENT) {
				err = nil
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
		}
	}
	return errs
}

var chainRef = regexp.MustCompile(`(^|\s)-[jg]\s+(KUBE-|CNI-|cali-|` + firewallName + `)`)

// isOurChain: the kubelet's, kube-proxy's, kube-router's and CNI's chains,
// Felix's (cali-*) and the node's firewall.
func isOurChain(name string) bool {
	return strings.HasPrefix(name, "KUBE-") || strings.HasPrefix(name, "CNI-") || strings.HasPrefix(name, "cali-") || name == firewallName
}

var iptablesTables = []string{"filter", "nat", "mangle", "raw"}

// felixRule matches a rule Felix wrote into a built-in chain without a
// jump to a chain of its own (it tags every rule with a cali: comment).
var felixRule = regexp.MustCompile(`--comment "?cali:`)

// isOurRule tells whether an iptables-save rule line belongs to the node:
// in one of its chains, jumping to one, or written by Felix.
func isOurRule(line string) bool {
	f := strings.Fields(line)
	return len(f) > 1 && f[0] == "-A" && (isOurChain(f[1]) || chainRef.MatchString(line) || felixRule.MatchString(line))
}

// ourChains lists the node's chains (KUBE-*, CNI-*, DRILLBOT-NODE) present
// in any table of either family, as family/table/chain.
func ourChains() []string {
	var out []string
	for _, family := range []string{"iptables", "ip6tables"} {
		for _, table := range iptablesTables {
			dump, err := exec.Command(family+"-save", "-t", table).Output()
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(dump), "\n") {
				if strings.HasPrefix(line, ":") {
					if name := strings.Fields(line[1:])[0]; isOurChain(name) {
						out = append(out, family+"/"+table+"/"+name)
					}
				} else if isOurRule(line) && felixRule.MatchString(line) {
					out = append(out, family+"/"+table+"/"+line)
				}
			}
		}
	}
	return out
}

// removeChains rewrites each table that holds a chain of the node without
// those chains and the rules that jump to them, in one iptables-restore
// per table (atomic: the machine's other rules are kept as they were).
func removeChains(ctx context.Context, family string) error {
	var errs []error
	for _, table := range iptablesTables {
		dump, err := exec.CommandContext(ctx, family+"-save", "-t", table).Output()
		if err != nil {
			continue // table or family not available
		}
		var kept []string
		changed := false
		for _, line := range strings.Split(string(dump), "\n") {
			f := strings.Fields(line)
			switch {
			case strings.HasPrefix(line, ":") && len(f) > 0 && isOurChain(f[0][1:]),
				strings.HasPrefix(line, "-A ") && len(f) > 1 && isOurChain(f[1]),
				isOurRule(line):
				changed = true
			default:
				kept = append(kept, line)
			}
		}
		if !changed {
			continue
		}
		cmd := exec.CommandContext(ctx, family+"-restore", "-w", "5")
		cmd.Stdin = strings.NewReader(strings.Join(kept, "\n"))
		if out, err := cmd.CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("%s-restore of table %s: %w: %s", family, table, err, out))
		}
	}
	return errors.Join(errs...)
}

// removeRuntimeLeftovers removes what containerd's shims and libcni leave
// in machine paths: the dead shims' sockets and the pod network's cached
// results, and those paths themselves when the node created them.
func removeRuntimeLeftovers(s *nodeState) []error {
	var errs []error
	results, _ := filepath.Glob(filepath.Join(cniCacheDir, "results", cniNetwork+"-*"))
	// containerd's own loopback network caches one result per sandbox.
	sandboxes, _ := os.ReadDir(filepath.Join(s.Dir, "node", "containerd", "state", "io.containerd.grpc.v1.cri", "sandboxes"))
	for _, sb := range sandboxes {
		lo, _ := filepath.Glob(filepath.Join(cniCacheDir, "results", "cni-loopback-"+sb.Name()+"-*"))
		results = append(results, lo...)
	}
	for _, r := range results {
		if err := os.Remove(r); err != nil {
			errs = append(errs, err)
		}
	}
	sockets, _ := filepath.Glob(filepath.Join(shimSocketDir, "s", "*"))
	for _, sock := range sockets {
		if conn, err := net.DialTimeout("unix", sock, 200*time.Millisecond); err == nil {
			conn.Close() // a live shim, of another containerd
			continue
		}
		if err := os.Remove(sock); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range s.Created {
		if err := removeEmptyTree(p); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// removeEmptyTree removes p if it holds nothing but empty directories.
func removeEmptyTree(p string) error {
	var dirs []string
	err := filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return fmt.Errorf("%s is not empty (%s)", p, path)
		}
		dirs = append(dirs, path)
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Remove(dirs[i]); err != nil {
			return err
		}
	}
	return nil
}

// NodeLeftovers lists what a real node of the cluster in dir left on this
// machine: its processes and mounts, and, unless the machine's real node
// now belongs to another cluster, the machine-wide things a node makes:
// pod cgroups, the bridge, iptables chains, the state file, network
// namespaces, CNI results. Empty after a clean stop.
func NodeLeftovers(dir string) []string {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	var out []string
	own, inPods := nodeProcesses(dir)
	if len(own) > 0 {
		out = append(out, fmt.Sprintf("processes %v", own))
	}
	out = appendSome(out, "mounts", MountsUnder(dir))
	if s, err := readNodeState(); err == nil && s != nil && s.Dir != dir {
		return out // another cluster's node: its leftovers are its own
	}
	if len(inPods) > 0 {
		out = append(out, fmt.Sprintf("%d processes in the pods' cgroups", len(inPods)))
	}
	out = appendSome(out, "cgroups", CgroupDirs(cgroupRoot))
	if _, err := net.InterfaceByName(bridgeName); err == nil {
		out = append(out, "interface "+bridgeName)
	}
	out = appendSome(out, "iptables chains", ourChains())
	out = appendSome(out, "ipsets", ourIPSets())
	if _, err := os.Stat(nodeStateFile); err == nil {
		out = append(out, "state file "+nodeStateFile)
	}
	ns, _ := filepath.Glob("/run/netns/cni-*")
	out = appendSome(out, "network namespaces", ns)
	rs, _ := filepath.Glob(filepath.Join(cniCacheDir, "results", cniNetwork+"-*"))
	return appendSome(out, "CNI results", rs)
}

// appendSome appends "N what (first, ...)" when items is not empty.
func appendSome(out []string, what string, items []string) []string {
	switch {
	case len(items) == 0:
		return out
	case len(items) <= 3:
		return append(out, fmt.Sprintf("%d %s (%s)", len(items), what, strings.Join(items, ", ")))
	default:
		return append(out, fmt.Sprintf("%d %s (%s, ...)", len(items), what, strings.Join(items[:3], ", ")))
	}
}
