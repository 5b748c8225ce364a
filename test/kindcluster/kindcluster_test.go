package kindcluster

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
)

func TestClusterConfig(t *testing.T) {
	for _, tc := range []struct {
		name      string
		c         Config
		noCNI     bool
		patch     string
		wantImage string
	}{
		{name: "kind's own node image", c: Config{Name: "drillbot"}, wantImage: "kindest/node"},
		{name: "the local node image", c: Config{Name: "drillbot", NodeImage: "drillbot.local/kind-node:v1.34.4", Local: true},
			noCNI: true, patch: "addon/coredns", wantImage: "drillbot.local/kind-node:v1.34.4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ClusterConfig(tc.c)
			if len(cfg.Nodes) != 1 || cfg.Nodes[0].Role != v1alpha4.ControlPlaneRole || !strings.HasPrefix(cfg.Nodes[0].Image, tc.wantImage) {
				t.Errorf("nodes %+v, want one control plane of %s", cfg.Nodes, tc.wantImage)
			}
			if cfg.Networking.APIServerAddress != "127.0.0.1" {
				t.Errorf("API server on %q: want loopback only", cfg.Networking.APIServerAddress)
			}
			if cfg.Networking.DisableDefaultCNI != tc.noCNI {
				t.Errorf("disableDefaultCNI %v, want %v", cfg.Networking.DisableDefaultCNI, tc.noCNI)
			}
			patches := strings.Join(cfg.KubeadmConfigPatches, "\n")
			if tc.patch == "" && patches != "" || tc.patch != "" && (!strings.Contains(patches, tc.patch) || !strings.Contains(patches, "- preflight")) {
				t.Errorf("kubeadm patches %q, want %q (and preflight still skipped)", patches, tc.patch)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	ok := Config{Name: "drillbot", Kubeconfig: "/tmp/k", Logger: log}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mutate func(*Config)
		want   string
	}{
		{func(c *Config) { c.Name = "Drill_bot" }, "name"},
		{func(c *Config) { c.Kubeconfig = "" }, "kubeconfig"},
		{func(c *Config) { c.Local = true }, "node image"},
		{func(c *Config) { c.Logger = nil }, "logger"},
	} {
		c := ok
		tc.mutate(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error on %s", c, err, tc.want)
		}
	}
}

func TestLogger(t *testing.T) {
	var buf bytes.Buffer
	l := Logger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	l.V(0).Info("Creating cluster")
	l.V(3).Info("kubeadm output")
	l.Warnf("%d warnings", 2)
	if l.V(1).Enabled() || !l.V(0).Enabled() {
		t.Errorf("V(1) enabled %v, V(0) %v at Info", l.V(1).Enabled(), l.V(0).Enabled())
	}
	out := buf.String()
	if !strings.Contains(out, "kind: Creating cluster") || strings.Contains(out, "kubeadm output") || !strings.Contains(out, "level=WARN msg=\"kind: 2 warnings\"") {
		t.Errorf("log:\n%s", out)
	}
}

// TestDockerdTouchesNothingOfTheMachine: the daemon's flags keep it off
// the machine's iptables, masquerade, forwarding and default bridge, its
// containers under a cgroup of the harness's, and every pull at a closed
// proxy.
func TestDockerdTouchesNothingOfTheMachine(t *testing.T) {
	args := strings.Join(dockerdArgs("/var/lib/drillbot-kind", "/bin/kindruntime"), " ")
	for _, want := range []string{"--iptables=false", "--ip6tables=false", "--ip-masq=false", "--ip-forward=false", "--bridge=none",
		"--data-root /var/lib/drillbot-kind/data", "--host unix:///var/lib/drillbot-kind/docker.sock", "--cgroup-parent /drillbot-kind",
		"--add-runtime drillbot-kind=/bin/kindruntime", "--default-runtime drillbot-kind"} {
		if !strings.Contains(args, want) {
			t.Errorf("dockerd %s: no %s", args, want)
		}
	}
	t.Setenv("HTTPS_PROXY", "http://proxy.example:3128")
	t.Setenv("DOCKER_HOST", "tcp://elsewhere:2375")
	env := dockerdEnv()
	if !slices.Contains(env, "HTTPS_PROXY=http://127.0.0.1:9") || !slices.Contains(env, "HTTP_PROXY=http://127.0.0.1:9") ||
		slices.Contains(env, "HTTPS_PROXY=http://proxy.example:3128") || slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "DOCKER_HOST=") }) {
		t.Errorf("dockerd env %q", env)
	}
}

func TestNetworkStaysOnTheMachine(t *testing.T) {
	args := strings.Join(networkArgs("drillbot-kind", "drillbot-kind0", "172.30.250.0/24"), " ")
	for _, want := range []string{"enable_ip_masquerade=false", "bridge.name=drillbot-kind0", "--subnet 172.30.250.0/24"} {
		if !strings.Contains(args, want) {
			t.Errorf("network %s: no %s", args, want)
		}
	}
	rules := forwardRules("drillbot-kind0")
	if len(rules) != 2 {
		t.Fatalf("rules %q", rules)
	}
	for i, dir := range [][2]string{{"-i", "-o"}, {"-o", "-i"}} {
		r := strings.Join(rules[i], " ")
		if !strings.Contains(r, dir[0]+" drillbot-kind0 ! "+dir[1]+" drillbot-kind0") || !strings.HasSuffix(r, "-j DROP") || !strings.Contains(r, ruleComment) {
			t.Errorf("rule %d: %s", i, r)
		}
	}
}

// TestSplitRule: a rule as iptables -S prints it splits back into the
// arguments -D needs (the quoted comment one argument).
func TestSplitRule(t *testing.T) {
	got, err := splitRule(`FORWARD -i drillbot-kind0 ! -o drillbot-kind0 -m comment --comment "` + ruleComment + `" -j DROP`)
	want := append([]string{"FORWARD"}, forwardRules("drillbot-kind0")[0][1:]...)
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("splitRule = %q, %v; want %q", got, err, want)
	}
	if _, err := splitRule(`FORWARD --comment "open`); err == nil {
		t.Error("an unbalanced quote split")
	}
}

func TestOwnCgroup(t *testing.T) {
	for cg, want := range map[string]bool{
		"12:pids:/drillbot-kind/0123abcd\n11:memory:/drillbot-kind/0123abcd\n": true,
		"0::/drillbot-kind/0123abcd/init.scope\n":                              true,  // cgroup v2
		"12:pids:/docker/0123abcd\n":                                           false, // another Docker's
		"12:pids:/drillbot-node/pod1/c1\n":                                     false, // the real node's pods
		"12:pids:/\n":                                                          false,
	} {
		if got := ownCgroup(cg); got != want {
			t.Errorf("ownCgroup(%q) = %v, want %v", cg, got, want)
		}
	}
}

// TestVeleroServerPod: Velero's server in its FROM-scratch image needs a
// writable /tmp (its plugins talk over sockets there: without it the
// storage location never becomes Available), finds the AWS plugin where
// the image holds it, and reads the store's credentials.
func TestVeleroServerPod(t *testing.T) {
	var dep *appsv1.Deployment
	for _, o := range veleroObjects() {
		if d, ok := o.(*appsv1.Deployment); ok {
			dep = d
		}
	}
	if dep == nil {
		t.Fatal("no velero Deployment")
	}
	ctr := dep.Spec.Template.Spec.Containers[0]
	mounts := map[string]string{}
	for _, m := range ctr.VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	args := strings.Join(ctr.Args, " ")
	env := map[string]string{}
	for _, e := range ctr.Env {
		env[e.Name] = e.Value
	}
	if mounts["/tmp"] == "" || mounts["/credentials"] == "" || !strings.Contains(args, "--plugin-dir /velero-plugins") ||
		env["AWS_SHARED_CREDENTIALS_FILE"] != "/credentials/cloud" || dep.Name != "velero" {
		t.Errorf("velero pod: mounts %v, args %q, env %v", mounts, args, env)
	}
}

// TestStartDockerLeavesALiveDaemonAlone: a running daemon of the directory
// (the detached one make demo CLUSTER=kind leaves) is refused and named,
// not killed as a crash's leftover.
func TestStartDockerLeavesALiveDaemonAlone(t *testing.T) {
	dir := t.TempDir()
	live := exec.Command("sleep", "300")
	live.Args = []string{filepath.Join(dir, "dockerd"), "300"}
	live.Path = "/bin/sleep"
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = live.Wait(); close(exited) }()
	t.Cleanup(func() { _ = live.Process.Kill(); <-exited })
	_, err := StartDocker(context.Background(), DockerConfig{Dockerd: "/bin/false", Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprint(live.Process.Pid)) {
		t.Errorf("StartDocker with a live daemon: %v, want a refusal naming pid %d", err, live.Process.Pid)
	}
	select {
	case <-exited:
		t.Fatal("StartDocker killed a live daemon of its directory")
	case <-time.After(500 * time.Millisecond):
	}
}

// TestNetworkBridgeIsTheHarnesss: a bridge not named as the harness's would
// outlive Stop (CleanDocker removes the harness's by name), so Network
// refuses it before any rule or network is made.
func TestNetworkBridgeIsTheHarnesss(t *testing.T) {
	d := &Docker{Dir: t.TempDir(), Host: DockerHost(t.TempDir()), log: slog.New(slog.DiscardHandler)}
	err := d.Network(context.Background(), "kind", "br-kind", "172.30.250.0/24")
	if err == nil || !strings.Contains(err.Error(), `must start with "drillbot-kind"`) {
		t.Errorf("a bridge of another name: %v", err)
	}
}
