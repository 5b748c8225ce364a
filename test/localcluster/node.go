package localcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// The real node: a kubelet with containerd, runc and the CNI bridge plugin,
// and kube-proxy, so pods really run on this machine, the way Kubernetes'
// own hack/local-up-cluster.sh runs one. Its network is the harness's own:
// a bridge with a private pod subnet, from which nothing is forwarded
// elsewhere (DRILLBOT-NODE in the filter table's FORWARD chain), and no
// masquerade to the outside. The API server listens on the bridge's
// address, so pods reach it through the kubernetes Service (kube-proxy).
//
// A real node is a machine-wide thing (a bridge, iptables chains, cgroups),
// so there is at most one per machine; nodeState records it under /run, and
// every start clears what a crashed earlier one left.
const (
	// NodeName is the real node's name.
	NodeName = "drillbot-node"
	// NodeIP is the real node's address: the bridge's, where the API
	// server listens and pods' default gateway.
	NodeIP = "10.244.0.1"
	// OutsideIP is a second address of the bridge's, outside the pod and
	// service ranges: a service outside the cluster (a transparency log)
	// played on this machine. Pods reach it through their gateway; a
	// NetworkPolicy can cut it off alone (NodeIP carries the API server).
	OutsideIP  = "10.244.1.1"
	podCIDR    = "10.244.0.0/24"
	bridgeName = "drillbot0"
	// cgroupRoot holds every pod's cgroup, in each hierarchy.
	cgroupRoot   = "drillbot-node"
	firewallName = "DRILLBOT-NODE"
	cniNetwork   = "drillbot-pods"
)

// NoRegistryProxy is where the real node's image pulls go: a closed port
// on loopback (discard), so no registry is ever contacted.
const NoRegistryProxy = "http://127.0.0.1:9"

// ImageRef is the reference of a local image built by hack/image and
// imported into the real node's containerd (never pulled).
func ImageRef(name string) string { return "drillbot.local/" + name + ":dev" }

// SampleApp is the pod template of the real node's sample workload (the
// local sampleapp image, never pulled): Pod Security restricted, Ready
// once its HTTP server answers /healthz (probed every second), stopped
// within 5 s.
func SampleApp(labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{
			SecurityContext:               &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			TerminationGracePeriodSeconds: ptr.To[int64](5),
			Containers: []corev1.Container{{
				Name: "app", Image: ImageRef("sampleapp"), ImagePullPolicy: corev1.PullNever,
				ReadinessProbe: &corev1.Probe{PeriodSeconds: 1, ProbeHandler: corev1.ProbeHandler{
					HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}}},
				SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
			}},
		},
	}
}

// nodeTools are the system programs a real node needs (Debian packages
// containerd, runc, containernetworking-plugins, iptables, conntrack, ipset).
var nodeTools = []string{"containerd", "containerd-shim-runc-v2", "ctr", "runc", "iptables", "ip6tables", "iptables-save", "ip6tables-save", "ip", "conntrack", "ipset"}

const cniBinDir = "/usr/lib/cni"

// maxNodeDir bounds the cluster directory of a real node: the longest
// socket under it (node/kubelet/plugins_registry/..., 50 bytes or so) must
// fit in a unix socket address.
const maxNodeDir = 50

func (c *Cluster) nodePath(parts ...string) string {
	return c.path(append([]string{"node"}, parts...)...)
}

// checkNodeHost fails, before anything is changed, when this machine cannot
// run the real node or already runs a Kubernetes node of someone else.
func checkNodeHost(bins Bins, calico bool) error {
	if os.Geteuid() != 0 {
		return errors.New("a real node needs root (containers, bridge, iptables)")
	}
	var missing []string
	for _, t := range nodeTools {
		if _, err := exec.LookPath(t); err != nil {
			missing = append(missing, t)
		}
	}
	for _, p := range []string{"bridge", "host-local", "loopback", "portmap"} {
		if _, err := os.Stat(filepath.Join(cniBinDir, p)); err != nil {
			missing = append(missing, filepath.Join(cniBinDir, p))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("a real node needs %s: apt-get install containerd runc containernetworking-plugins iptables conntrack ipset (make node-deps)", strings.Join(missing, ", "))
	}
	need := map[string]string{"DRILLBOT_KUBELET": bins.Kubelet, "DRILLBOT_KUBE_PROXY": bins.KubeProxy, "DRILLBOT_IMAGES": bins.Images, "DRILLBOT_KUBE_ROUTER": bins.KubeRouter}
	if calico {
		need["DRILLBOT_CALICO_CNI"], need["DRILLBOT_CALICO_MANIFEST"] = bins.CalicoCNI, bins.CalicoManifest
		delete(need, "DRILLBOT_KUBE_ROUTER")
	}
	for name, p := range need {
		if p == "" {
			return fmt.Errorf("a real node needs %s (make cluster-bins images)", name)
		}
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("a real node needs %s: %w (make cluster-bins images)", name, err)
		}
	}
	return nil
}

// prepareNodeNetwork clears what an earlier real node left, then creates
// the bridge, the route of the Service range onto it (so no Service address
// is ever sent to the default gateway) and the firewall that keeps pod
// traffic on the bridge. It runs before the API server, which listens on
// the bridge's address.
func (c *Cluster) prepareNodeNetwork(ctx context.Context) error {
	if err := checkNodeHost(c.cfg.Bins, c.cfg.Calico); err != nil {
		return err
	}
	// The kubelet's sockets live under its root dir, and a unix socket's
	// path has at most 107 bytes.
	if len(c.cfg.Dir) > maxNodeDir {
		return fmt.Errorf("a real node needs a cluster directory of at most %d bytes (its sockets' paths are limited): %s", maxNodeDir, c.cfg.Dir)
	}
	if err := claimNode(ctx, c.cfg.Dir, c.cfg.Bins.KubeProxy, c.log); err != nil {
		return err
	}
	c.node = true
	for _, d := range []string{"containerd", "kubelet", "cni", "ipam", "pod-logs"} {
		if err := os.MkdirAll(c.nodePath(d), 0o755); err != nil {
			return err
		}
	}
	for _, args := range [][]string{
		{"ip", "link", "add", bridgeName, "type", "bridge"},
		{"ip", "addr", "add", NodeIP + "/24", "dev", bridgeName},
		{"ip", "addr", "add", OutsideIP + "/32", "dev", bridgeName},
		{"ip", "link", "set", bridgeName, "up"},
		{"ip", "route", "add", serviceCIDR, "dev", bridgeName, "src", NodeIP},
		{"iptables", "-N", firewallName},
		// Pods talk to each other and to this machine; nothing of theirs
		// is forwarded anywhere else, nor forwarded to them from elsewhere.
		{"iptables", "-A", firewallName, "-i", bridgeName, "!", "-o", bridgeName, "-j", "DROP"},
		{"iptables", "-A", firewallName, "-o", bridgeName, "!", "-i", bridgeName, "-j", "DROP"},
		// The same for pods on Calico's veths (Config.Calico).
		{"iptables", "-A", firewallName, "-i", "cali+", "!", "-o", "cali+", "-j", "DROP"},
		{"iptables", "-A", firewallName, "-o", "cali+", "!", "-i", "cali+", "-j", "DROP"},
		{"iptables", "-I", "FORWARD", "1", "-j", firewallName},
	} {
		if err := run(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

// startNode starts containerd (with the local images imported), the
// kubelet and kube-proxy, waits until the node is Ready and the kubernetes
// Service answers on its cluster IP, then starts the NetworkPolicy
// enforcer.
func (c *Cluster) startNode(ctx context.Context) error {
	ports, err := freePorts(4)
	if err != nil {
		return err
	}
	if err := c.startContainerd(ctx); err != nil {
		return err
	}
	c.kubeletPort = ports[0]
	if err := c.startKubelet(ports[0], ports[1]); err != nil {
		return err
	}
	if err := c.startKubeProxy(ports[2], ports[3]); err != nil {
		return err
	}
	if err := c.poll(ctx, "real node Ready", 90*time.Second, func(ctx context.Context) (bool, error) {
		n, err := c.Kube.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status != corev1.ConditionTrue {
				return false, fmt.Errorf("%s: %s", cond.Reason, cond.Message)
			}
			if cond.Type == corev1.NodeReady {
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		return err
	}
	// kube-proxy has written the kubernetes Service's rules once its
	// cluster IP leads to the API server.
	if err := c.waitTCP(ctx, "kubernetes Service through kube-proxy", net.JoinHostPort(apiServiceIP, "443"), 60*time.Second); err != nil {
		return err
	}
	// The enforcer finds its node by name: after the kubelet registered it.
	if c.cfg.Calico {
		return c.startCalico(ctx)
	}
	return c.startKubeRouter(ctx)
}

func (c *Cluster) containerdSocket() string { return c.nodePath("containerd.sock") }

func (c *Cluster) startContainerd(ctx context.Context) error {
	cni := `{"cniVersion": "0.4.0", "name": "` + cniNetwork + `", "plugins": [
  {"type": "bridge", "bridge": "` + bridgeName + `", "isGateway": true, "isDefaultGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "` + c.nodePath("ipam") + `", "ranges": [[{"subnet": "` + podCIDR + `", "gateway": "` + NodeIP + `"}]]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}
]}
`
	binDir := cniBinDir
	if c.cfg.Calico {
		var err error
		if binDir, err = c.calicoCNIBinDir(); err != nil {
			return err
		}
		cni = c.calicoCNIConfig()
	}
	if err := os.WriteFile(c.nodePath("cni", "10-drillbot.conflist"), []byte(cni), 0o644); err != nil {
		return err
	}
	cri := `plugins."io.containerd.grpc.v1.cri"`
	conf := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.opt", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = %q
[%s]
  sandbox_image = %q
  # This VM forbids negative oom_score_adj, even to root.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [%s.cni]
    bin_dir = %q
    conf_dir = %q
    max_conf_num = 1
  [%s.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [%s.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [%s.containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = %q
`, c.nodePath("containerd", "root"), c.nodePath("containerd", "state"), c.containerdSocket(),
		cri, ImageRef("pause"), cri, binDir, c.nodePath("cni"), cri, cri, cri, c.nodePath("containerd", "runc"))
	if err := os.WriteFile(c.nodePath("containerd.toml"), []byte(conf), 0o644); err != nil {
		return err
	}
	// Images come from hack/image, imported; a pull (an image that is not
	// there) goes to a closed port on loopback through this proxy, never to
	// a registry, nor to the machine's resolver.
	// Calico's CNI plugin inherits this environment and calls the API
	// server (NodeIP) for every pod: that one address is not proxied.
	noProxy := ""
	if c.cfg.Calico {
		noProxy = NodeIP
	}
	if err := c.start("containerd", "containerd", []string{"HTTPS_PROXY=" + NoRegistryProxy, "HTTP_PROXY=" + NoRegistryProxy, "NO_PROXY=" + noProxy, "no_proxy=" + noProxy},
		"--config", c.nodePath("containerd.toml"), "--log-level", "warn"); err != nil {
		return err
	}
	if err := c.poll(ctx, "containerd", 30*time.Second, func(ctx context.Context) (bool, error) {
		return run(ctx, "ctr", "--address", c.containerdSocket(), "version") == nil, nil
	}); err != nil {
		return err
	}
	for _, img := range []string{"pause", "sampleapp"} {
		if err := c.ImportImage(ctx, img); err != nil {
			return err
		}
	}
	return nil
}

// ImportImage imports a local image (hack/image's tarball NAME.tar in
// DRILLBOT_IMAGES) into the real node's containerd, where pods find it as
// ImageRef(name) without pulling.
func (c *Cluster) ImportImage(ctx context.Context, name string) error {
	if !c.node {
		return errors.New("import image: the cluster has no real node")
	}
	tarball := filepath.Join(c.cfg.Bins.Images, name+".tar")
	if err := run(ctx, "ctr", "--address", c.containerdSocket(), "-n", "k8s.io", "images", "import", "--no-unpack=false", tarball); err != nil {
		return fmt.Errorf("import image %s: %w", tarball, err)
	}
	return nil
}

// ContainerPID is the host PID of a running container of the real node,
// from its status' containerID ("containerd://ID"): tests enter its
// namespaces (nsenter) to look from inside a pod.
func (c *Cluster) ContainerPID(ctx context.Context, containerID string) (int, error) {
	if !c.node {
		return 0, errors.New("the cluster has no real node")
	}
	id := strings.TrimPrefix(containerID, "containerd://")
	out, err := exec.CommandContext(ctx, "ctr", "--address", c.containerdSocket(), "-n", "k8s.io", "tasks", "ls").Output()
	if err != nil {
		return 0, fmt.Errorf("ctr tasks ls: %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == id {
			return strconv.Atoi(f[1])
		}
	}
	return 0, fmt.Errorf("container %s has no running task", id)
}

// makeCgroupRoot creates the pods' cgroup root in every hierarchy (the
// kubelet wants it to exist); in cpuset it inherits its parent's CPUs and
// memory nodes.
func makeCgroupRoot() error {
	points, types := mountInfo()
	for i, p := range points {
		if types[i] != "cgroup" {
			continue
		}
		d := filepath.Join(p, cgroupRoot)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create cgroup %s: %w", d, err)
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if v, err := os.ReadFile(filepath.Join(p, f)); err == nil {
				if err := os.WriteFile(filepath.Join(d, f), v, 0o644); err != nil {
					return fmt.Errorf("set %s of %s: %w", f, d, err)
				}
			}
		}
	}
	return nil
}

func (c *Cluster) startKubelet(port, healthzPort int) error {
	if err := makeCgroupRoot(); err != nil {
		return err
	}
	conf := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %s
port: %d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %d
cgroupDriver: cgroupfs
cgroupRoot: /%s
failSwapOn: false
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %s}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://%s
podLogsDir: %s
# Pods get no name servers: nothing outside this machine is reachable.
resolvConf: ""
podCIDR: %s
serializeImagePulls: false
imageGCHighThresholdPercent: 100
evictionHard: {memory.available: 100Mi, nodefs.available: 1%%, imagefs.available: 1%%}
`, NodeIP, port, healthzPort, cgroupRoot, c.path(kubeletClientCert), c.containerdSocket(), c.nodePath("pod-logs"), podCIDR)
	if err := os.WriteFile(c.nodePath("kubelet.yaml"), []byte(conf), 0o644); err != nil {
		return err
	}
	return c.start("kubelet", c.cfg.Bins.Kubelet, nil,
		"--kubeconfig", c.Kubeconfig, "--config", c.nodePath("kubelet.yaml"),
		"--root-dir", c.nodePath("kubelet"), "--hostname-override", NodeName, "--node-ip", NodeIP,
		"--node-labels", "drillbot.io/node=real", "--v", "1")
}

func (c *Cluster) startKubeProxy(healthzPort, metricsPort int) error {
	conf := fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: %s}
mode: iptables
clusterCIDR: %s
hostnameOverride: %s
healthzBindAddress: 127.0.0.1:%d
metricsBindAddress: 127.0.0.1:%d
# NodePorts only on the bridge: no route_localnet, nothing on eth0.
nodePortAddresses: [%s/32]
# Leave the machine's conntrack settings alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {masqueradeAll: false}
`, c.Kubeconfig, podCIDR, NodeName, healthzPort, metricsPort, NodeIP)
	if err := os.WriteFile(c.nodePath("kube-proxy.yaml"), []byte(conf), 0o644); err != nil {
		return err
	}
	return c.start("kube-proxy", c.cfg.Bins.KubeProxy, nil, "--config", c.nodePath("kube-proxy.yaml"))
}

// KubeletGet reads path from the real node's kubelet (e.g.
// /metrics/resource), as the cluster's admin (the kubelet authenticates
// and authorizes through the API server).
func (c *Cluster) KubeletGet(ctx context.Context, path string) ([]byte, error) {
	if !c.node {
		return nil, errors.New("the cluster has no real node")
	}
	body, err := adminGet(ctx, fmt.Sprintf("https://%s%s", net.JoinHostPort(NodeIP, fmt.Sprint(c.kubeletPort)), path))
	if err != nil {
		return nil, fmt.Errorf("kubelet %s: %w", path, err)
	}
	return body, nil
}

func run(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
