package kindcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/drillbot-io/drillbot/test/localcluster"
)

// A Docker daemon of the harness's own, for kind on a machine with no
// Docker of its own: Debian's dockerd run as a plain process with its
// state under one directory, a socket of its own, and nothing of the
// machine's network touched (no iptables, no masquerade, no default
// bridge; image pulls through a proxy at a closed port). The network kind's
// node joins is made by Network, without masquerade and with a FORWARD
// rule of the harness's dropping whatever the node sends off its bridge,
// so nothing leaves the machine even while a real node's test has IP
// forwarding on. Stop removes every container, volume, network, mount and
// rule; StartDocker first clears what a crashed run left.

// DockerDir is the daemon's directory: a fixed path, so a run after a
// crash finds what the last one left.
const DockerDir = "/var/lib/drillbot-kind"

// ruleComment marks the harness's iptables rules.
const ruleComment = "drillbot-kind: no traffic off the kind network"

// DockerConfig is the daemon StartDocker runs.
type DockerConfig struct {
	// Dockerd is the dockerd binary (Debian's docker.io: /usr/sbin/dockerd).
	Dockerd string
	// Runtime is hack/kindruntime's binary, registered as the default
	// runtime (kind's --privileged nodes on a machine without
	// CAP_SYS_RESOURCE); empty: runc.
	Runtime string
	// Dir is the daemon's directory; empty: DockerDir.
	Dir string
	// Detach: the daemon outlives this process (make demo CLUSTER=kind;
	// make cluster-down stops it with StopDocker). Otherwise it is stopped
	// when this process dies.
	Detach bool
	Logger *slog.Logger
}

// Docker is a running daemon.
type Docker struct {
	Dir  string
	Host string // DOCKER_HOST
	cmd  *exec.Cmd
	done chan error
	log  *slog.Logger
}

// DockerHost is the socket of the daemon of dir, as DOCKER_HOST names it.
func DockerHost(dir string) string { return "unix://" + filepath.Join(dir, "docker.sock") }

// dockerdArgs are the daemon's flags for dir.
func dockerdArgs(dir, runtime string) []string {
	args := []string{
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--host", DockerHost(dir),
		"--pidfile", filepath.Join(dir, "docker.pid"),
		"--iptables=false", "--ip6tables=false", "--ip-masq=false", "--ip-forward=false",
		"--bridge=none", "--log-level=warn", "--cgroup-parent", "/" + cgroupParent,
		// The userland proxy serves published ports (kind's API server on
		// 127.0.0.1) without iptables.
		"--userland-proxy=true",
	}
	if runtime != "" {
		args = append(args, "--add-runtime", "drillbot-kind="+runtime, "--default-runtime", "drillbot-kind")
	}
	return args
}

// dockerdEnv: no registry is reachable (the proxy is a closed port), and
// the daemon's containerd and docker-proxy are found on PATH.
func dockerdEnv() []string {
	env := slices.DeleteFunc(os.Environ(), func(e string) bool {
		k, _, _ := strings.Cut(e, "=")
		switch strings.ToUpper(k) {
		case "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "DOCKER_HOST":
			return true
		}
		return false
	})
	return append(env, "HTTP_PROXY=http://127.0.0.1:9", "HTTPS_PROXY=http://127.0.0.1:9", "NO_PROXY=",
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/bin")
}

// StartDocker clears what an earlier run left in the daemon's directory,
// starts dockerd and waits for its socket.
func StartDocker(ctx context.Context, cfg DockerConfig) (*Docker, error) {
	if cfg.Dir == "" {
		cfg.Dir = DockerDir
	}
	if cfg.Logger == nil {
		return nil, errors.New("docker: logger required")
	}
	if pid := LiveDaemon(cfg.Dir); pid > 0 {
		return nil, fmt.Errorf("a Docker of the harness runs in %s (pid %d; make demo CLUSTER=kind leaves one): make cluster-down stops it", cfg.Dir, pid)
	}
	if err := CleanDocker(ctx, cfg.Dir, cfg.Logger); err != nil {
		return nil, fmt.Errorf("clear an earlier docker in %s: %w", cfg.Dir, err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(cfg.Dir, "dockerd.log"))
	if err != nil {
		return nil, err
	}
	d := &Docker{Dir: cfg.Dir, Host: DockerHost(cfg.Dir), log: cfg.Logger, done: make(chan error, 1)}
	d.cmd = exec.Command(cfg.Dockerd, dockerdArgs(cfg.Dir, cfg.Runtime)...)
	d.cmd.Env = dockerdEnv()
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if cfg.Detach {
		d.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	}
	if err := d.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start dockerd: %w", err)
	}
	go func() { d.done <- d.cmd.Wait(); logf.Close() }()
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := d.Run(ctx, "version", "--format", "{{.Server.Version}}"); err == nil {
			break
		} else if time.Now().After(deadline) {
			_ = d.Stop(ctx)
			return nil, fmt.Errorf("dockerd did not answer in a minute (log %s): %w", filepath.Join(cfg.Dir, "dockerd.log"), err)
		}
		select {
		case err := <-d.done:
			return nil, fmt.Errorf("dockerd exited (log %s): %v", filepath.Join(cfg.Dir, "dockerd.log"), err)
		case <-ctx.Done():
			_ = d.Stop(context.Background())
			return nil, ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
	cfg.Logger.Info("docker: daemon up", "dir", cfg.Dir)
	return d, nil
}

// Run runs the docker command against the daemon and returns its output.
func (d *Docker) Run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", append([]string{"--host", d.Host}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// networkArgs: a bridge network without masquerade, on a bridge of the
// harness's name (so its rules and Stop can name it).
func networkArgs(name, bridge, subnet string) []string {
	return []string{"network", "create", "--driver", "bridge",
		"--opt", "com.docker.network.bridge.enable_ip_masquerade=false",
		"--opt", "com.docker.network.bridge.name=" + bridge,
		"--subnet", subnet, name}
}

// forwardRules are the FORWARD rules that keep the network's traffic on
// its bridge: anything in from it going elsewhere, or in to it from
// elsewhere, is dropped.
func forwardRules(bridge string) [][]string {
	c := []string{"-m", "comment", "--comment", ruleComment, "-j", "DROP"}
	return [][]string{
		append([]string{"FORWARD", "-i", bridge, "!", "-o", bridge}, c...),
		append([]string{"FORWARD", "-o", bridge, "!", "-i", bridge}, c...),
	}
}

// Network makes the Docker network kind's node joins (pass its name as
// Config.Network) and the rules that keep its traffic on the machine.
func (d *Docker) Network(ctx context.Context, name, bridge, subnet string) error {
	if _, _, err := net.ParseCIDR(subnet); err != nil {
		return fmt.Errorf("network %s: subnet: %w", name, err)
	}
	if !strings.HasPrefix(bridge, bridgePrefix) {
		return fmt.Errorf("network %s: bridge %q: its name must start with %q (what Stop and CleanDocker remove)", name, bridge, bridgePrefix)
	}
	for _, r := range forwardRules(bridge) {
		if err := iptables(ctx, append([]string{"-I"}, r...)...); err != nil {
			return err
		}
	}
	if _, err := d.Run(ctx, networkArgs(name, bridge, subnet)...); err != nil {
		return err
	}
	return nil
}

// LoadImage loads an image archive (docker-archive tarball) into the daemon.
func (d *Docker) LoadImage(ctx context.Context, archive string) error {
	_, err := d.Run(ctx, "load", "--input", archive)
	return err
}

// Stop removes every container (with its volumes) and network, stops the
// daemon and clears its directory, mounts, bridges and rules.
func (d *Docker) Stop(ctx context.Context) error {
	errs := d.removeAll(ctx)
	if d.cmd != nil && d.cmd.Process != nil {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
			<-d.done
		}
	}
	if err := CleanDocker(ctx, d.Dir, d.log); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// removeAll removes every container (with its volumes), network and
// volume of the daemon.
func (d *Docker) removeAll(ctx context.Context) []error {
	var errs []error
	if ids, err := d.Run(ctx, "ps", "--all", "--quiet"); err == nil && strings.TrimSpace(ids) != "" {
		if _, err := d.Run(ctx, append([]string{"rm", "--force", "--volumes"}, strings.Fields(ids)...)...); err != nil {
			errs = append(errs, err)
		}
	}
	for _, what := range []string{"network", "volume"} {
		if _, err := d.Run(ctx, what, "prune", "--force"); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// StopDocker stops a detached daemon of dir (its pid file): its
// containers with their volumes first, then the daemon (SIGTERM, then
// SIGKILL after 30 s), then whatever CleanDocker clears.
func StopDocker(ctx context.Context, dir string, log *slog.Logger) error {
	if dir == "" {
		dir = DockerDir
	}
	var errs []error
	d := &Docker{Dir: dir, Host: DockerHost(dir), log: log}
	if _, err := os.Stat(filepath.Join(dir, "docker.sock")); err == nil {
		errs = d.removeAll(ctx)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "docker.pid")); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGTERM)
			for i := 0; i < 300 && syscall.Kill(pid, 0) == nil; i++ {
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	if err := CleanDocker(ctx, dir, log); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// CleanDocker clears a daemon of dir that is gone or was killed: its
// processes (dockerd, its containerd and shims, docker-proxy, every
// container's), the mounts under dir, the containers' cgroups, the
// bridges whose name starts with "drillbot-kind" (Network allows no
// other), the harness's iptables rules, and dir.
func CleanDocker(ctx context.Context, dir string, log *slog.Logger) error {
	var errs []error
	for _, pid := range processesOf(dir) {
		log.Warn("docker: killing a process left behind", "pid", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	for range 50 {
		if len(processesOf(dir)) == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, m := range localcluster.MountsUnder(dir) {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
		}
	}
	errs = append(errs, localcluster.RemoveCgroups(cgroupParent)...)
	for _, b := range ourBridges() {
		if _, err := net.InterfaceByName(b); err == nil {
			if out, err := exec.CommandContext(ctx, "ip", "link", "del", b).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("ip link del %s: %w: %s", b, err, out))
			}
		}
	}
	if err := removeRules(ctx); err != nil {
		errs = append(errs, err)
	}
	if len(localcluster.MountsUnder(dir)) == 0 {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// DockerLeftovers names what a daemon of dir left on the machine: none
// after Stop.
func DockerLeftovers(dir string) []string {
	var out []string
	for _, p := range processesOf(dir) {
		out = append(out, "process "+strconv.Itoa(p))
	}
	for _, m := range localcluster.MountsUnder(dir) {
		out = append(out, "mount "+m)
	}
	for _, c := range localcluster.CgroupDirs(cgroupParent) {
		out = append(out, "cgroup "+c)
	}
	for _, b := range ourBridges() {
		out = append(out, "bridge "+b)
	}
	for _, r := range ourRules() {
		out = append(out, "iptables "+r)
	}
	if _, err := os.Stat(dir); err == nil {
		out = append(out, "directory "+dir)
	}
	return out
}

// processesOf are the processes whose command line or root names dir
// (dockerd, its containerd, the shims, docker-proxy) or whose cgroup is
// under the daemon's cgroup parent (the containers' own).
func processesOf(dir string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		cgroup, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cgroup"))
		if bytes.Contains(cmdline, []byte(dir+"/")) || bytes.Contains(cmdline, []byte(dir+"\x00")) || ownCgroup(string(cgroup)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// LiveDaemon is the pid of a running dockerd naming dir (a detached one make
// demo CLUSTER=kind left), or 0: what a crash leaves (shims, containers,
// mounts without their daemon) is not a live daemon.
func LiveDaemon(dir string) int {
	for _, pid := range processesOf(dir) {
		cmdline, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		args := strings.Split(string(cmdline), "\x00")
		if filepath.Base(args[0]) == "dockerd" {
			return pid
		}
	}
	return 0
}

// cgroupParent is the cgroup the daemon puts its containers under (in
// every hierarchy), so the harness knows its own containers' processes
// from any other Docker's.
const cgroupParent = "drillbot-kind"

// ownCgroup: a process in a container of the harness's daemon.
func ownCgroup(cgroup string) bool {
	for _, line := range strings.Split(cgroup, "\n") {
		if f := strings.SplitN(line, ":", 3); len(f) == 3 && strings.HasPrefix(f[2], "/"+cgroupParent+"/") {
			return true
		}
	}
	return false
}

// bridgePrefix names every bridge the harness's networks use.
const bridgePrefix = "drillbot-kind"

func ourBridges() []string {
	ifs, _ := net.Interfaces()
	var out []string
	for _, i := range ifs {
		if strings.HasPrefix(i.Name, bridgePrefix) {
			out = append(out, i.Name)
		}
	}
	return out
}

func iptables(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "iptables", append([]string{"-w"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// ourRules are the harness's FORWARD rules, as iptables -S prints them.
func ourRules() []string {
	out, err := exec.Command("iptables", "-w", "-S", "FORWARD").Output()
	if err != nil {
		return nil
	}
	var rules []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, ruleComment) {
			rules = append(rules, l)
		}
	}
	return rules
}

// removeRules deletes every rule ourRules lists.
func removeRules(ctx context.Context) error {
	var errs []error
	for _, r := range ourRules() {
		args, err := splitRule(strings.TrimPrefix(r, "-A "))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := iptables(ctx, append([]string{"-D"}, args...)...); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// splitRule splits an iptables -S line into arguments (the comment is
// quoted).
func splitRule(s string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inQuote, has := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote, has = !inQuote, true
		case r == ' ' && !inQuote:
			if has {
				args = append(args, cur.String())
				cur.Reset()
				has = false
			}
		default:
			cur.WriteRune(r)
			has = true
		}
	}
	if inQuote {
		return nil, fmt.Errorf("unbalanced quote in rule %q", s)
	}
	if has {
		args = append(args, cur.String())
	}
	return args, nil
}
