package main

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// nodeFile is a file the recipe writes into the node's root filesystem.
type nodeFile struct {
	mode int64
	data string
	// src: copied from this machine instead of data.
	src string
}

// nodeConfig is what the node's files depend on.
type nodeConfig struct {
	KubeVersion string
	// PauseRef is containerd's sandbox image (kubeadm's pause, preloaded).
	PauseRef string
	// PodSubnet is the node's pod addresses (kind's default pod subnet's
	// first /24: one node).
	PodSubnet string
	// Kubelet, Kubeadm, Kubectl, Runtime: the binaries copied in.
	Kubelet, Kubeadm, Kubectl, Runtime string
	// Images are the image archives preloaded at the kubelet's first start.
	Images []string
}

// runtimePath is hack/kindruntime in the node: runc for the node's
// containerd, without the capabilities the machine lacks (kube-proxy's pod
// is privileged).
const runtimePath = "/usr/local/sbin/kindruntime"

// imagesDir holds the preloaded image archives in the node.
const imagesDir = "/kind/images"

// files are the node's own files, by absolute path. They follow what
// kind's base image ships (its kubelet unit, kubeadm's drop-in, containerd
// on the CRI socket kind's kubeadm config names), with Debian's containerd
// and runc, no registry reachable (pulls go to a closed proxy), images
// preloaded from /kind/images before the kubelet's first start, and a
// bridge conflist for the pods (kind installs no CNI for this image).
func files(c nodeConfig) map[string]nodeFile {
	f := map[string]nodeFile{
		"/kind/version":                     {mode: 0o644, data: c.KubeVersion + "\n"},
		"/etc/containerd/config.toml":       {mode: 0o644, data: containerdConfig(c)},
		"/etc/crictl.yaml":                  {mode: 0o644, data: "runtime-endpoint: unix:///run/containerd/containerd.sock\nimage-endpoint: unix:///run/containerd/containerd.sock\n"},
		"/etc/default/kubelet":              {mode: 0o644, data: "KUBELET_EXTRA_ARGS=--runtime-cgroups=/system.slice/containerd.service\n"},
		"/etc/cni/net.d/10-bridge.conflist": {mode: 0o644, data: bridgeConflist(c.PodSubnet)},
		"/etc/systemd/system/containerd.service.d/10-drillbot.conf": {mode: 0o644, data: containerdDropIn},
		"/etc/systemd/system/kubelet.service":                       {mode: 0o644, data: kubeletUnit},
		"/etc/systemd/system/kubelet.slice":                         {mode: 0o644, data: kubeletSlice},
		"/etc/systemd/system/kubelet.service.d/10-kubeadm.conf":     {mode: 0o644, data: kubeadmDropIn},
		"/etc/systemd/system/drillbot-preload.service":              {mode: 0o644, data: preloadUnit},
		"/usr/local/bin/entrypoint":                                 {mode: 0o755, data: entrypoint},
		"/usr/bin/kubelet":                                          {mode: 0o755, src: c.Kubelet},
		"/usr/bin/kubeadm":                                          {mode: 0o755, src: c.Kubeadm},
		"/usr/bin/kubectl":                                          {mode: 0o755, src: c.Kubectl},
		runtimePath:                                                 {mode: 0o755, src: c.Runtime},
	}
	for _, img := range c.Images {
		f[path.Join(imagesDir, path.Base(img))] = nodeFile{mode: 0o644, src: img}
	}
	return f
}

func containerdConfig(c nodeConfig) string {
	return fmt.Sprintf(`# drillbot's kind node: Debian's containerd 1.6, kind's CRI settings.
version = 2

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  # This project's VMs refuse a negative oom_score_adj even to root.
  restrict_oom_score_adj = true
  tolerate_missing_hugepages_controller = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = true
        BinaryName = %q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "/etc/cni/net.d"
`, c.PauseRef, runtimePath)
}

func bridgeConflist(subnet string) string {
	return fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "drillbot-kind",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, subnet)
}

// containerdDropIn: no registry is reachable from the node (as on the
// real node: a proxy at a closed port), whatever an image names.
const containerdDropIn = `[Service]
Environment="HTTP_PROXY=http://127.0.0.1:9" "HTTPS_PROXY=http://127.0.0.1:9" "NO_PROXY="
`

// kubeletUnit is kind's: started by kubeadm (not at boot), once the
// preloaded images are in.
const kubeletUnit = `[Unit]
Description=kubelet: The Kubernetes Node Agent
ConditionPathExists=/var/lib/kubelet/config.yaml
Requires=drillbot-preload.service
After=containerd.service drillbot-preload.service

[Service]
ExecStart=/usr/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=1s
CPUAccounting=true
MemoryAccounting=true
Slice=kubelet.slice
KillMode=process
`

const kubeletSlice = `[Unit]
Description=slice used to run Kubernetes / Kubelet
Before=slices.target

[Slice]
MemoryAccounting=true
CPUAccounting=true
`

// kubeadmDropIn is kubeadm's standard drop-in; the kubelet cgroup on
// cgroup v1 is made by the entrypoint.
const kubeadmDropIn = `[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
EnvironmentFile=-/etc/default/kubelet
ExecStartPre=/bin/sh -euc "if [ ! -f /sys/fs/cgroup/cgroup.controllers ] && [ ! -d /sys/fs/cgroup/systemd/kubelet ]; then mkdir -p /sys/fs/cgroup/systemd/kubelet; fi"
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
`

// preloadUnit imports the image archives into containerd's k8s.io
// namespace (pinned, as kind's build does) once, before the kubelet.
const preloadUnit = `[Unit]
Description=drillbot: preload the control plane's images
Requires=containerd.service
After=containerd.service
ConditionPathExists=!/var/lib/drillbot-preloaded

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -euc 'for f in /kind/images/*.tar; do ctr --namespace k8s.io images import "$f"; done; touch /var/lib/drillbot-preloaded'
`

// entrypoint prepares the container for systemd as kind's does, for the
// cases this project meets (Docker on cgroup v1 with a private cgroup
// namespace, or cgroup v2), then runs init: shared mounts for the
// kubelet's volumes, a machine id of the node's own, and the kubelet's
// cgroup root (/kubelet, /kubelet.slice) in every hierarchy, bind-mounted
// so systemd leaves it.
const entrypoint = `#!/bin/bash
# drillbot's kind node entrypoint (written after kind's images/base entrypoint).
set -o errexit -o nounset -o pipefail
log() { echo "drillbot-kind-node: $*" >&2; }

mount --make-rshared /

if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  log "cgroup v2"
else
  current=$(grep -E '^[^:]*:([^:]*,)?cpu(,[^,:]*)?:' /proc/self/cgroup | cut -d: -f3)
  if [ "$current" != "/" ]; then
    log "cgroup v1 without a private cgroup namespace ($current): not supported"
    exit 1
  fi
  log "cgroup v1, private cgroup namespace"
  mount --make-rprivate /sys/fs/cgroup
  for sub in $(findmnt -lun -o target -t cgroup); do
    for root in /kubelet /kubelet.slice; do
      mkdir -p "$sub$root"
      if [ "$sub" = /sys/fs/cgroup/cpuset ]; then
        cat "$sub/cpuset.cpus" > "$sub$root/cpuset.cpus"
        cat "$sub/cpuset.mems" > "$sub$root/cpuset.mems"
      fi
      mount --bind "$sub$root" "$sub$root"
    done
  done
fi

rm -f /etc/machine-id
systemd-machine-id-setup >/dev/null

exec "$@"
`

// packages are Debian's packages the node's root filesystem is made of.
var packages = []string{
	"systemd", "systemd-sysv", "dbus", "containerd", "runc", "containernetworking-plugins",
	"iptables", "conntrack", "ipset", "iproute2", "kmod", "procps", "util-linux", "mount",
	"bash", "ca-certificates", "ethtool", "socat", "ebtables",
}

// includeArg is debootstrap's --include.
func includeArg() string {
	p := slices.Clone(packages)
	slices.Sort(p)
	return "--include=" + strings.Join(p, ",")
}
