package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func testConfig(t *testing.T) nodeConfig {
	dir := t.TempDir()
	c := nodeConfig{KubeVersion: "v1.34.4", PauseRef: "registry.k8s.io/pause:3.10.1", PodSubnet: "10.244.0.0/24"}
	for _, p := range []*string{&c.Kubelet, &c.Kubeadm, &c.Kubectl, &c.Runtime} {
		*p = filepath.Join(dir, "bin"+string(rune('a'+len(c.Images))))
		c.Images = append(c.Images, *p+".tar")
		for _, f := range []string{*p, *p + ".tar"} {
			if err := os.WriteFile(f, []byte("x"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	return c
}

// TestNodeFilesAreWhatKindReads: kind reads /kind/version (one semver
// line) and asks containerd's config for its snapshotter (version 2, CRI
// plugin); the kubelet's sandbox image is one preloaded, runc is
// hack/kindruntime, and the node reaches no registry.
func TestNodeFilesAreWhatKindReads(t *testing.T) {
	c := testConfig(t)
	fs := files(c)
	if v := fs["/kind/version"].data; v != "v1.34.4\n" {
		t.Errorf("/kind/version %q", v)
	}
	var cfg struct {
		Version int `toml:"version"`
		Plugins map[string]struct {
			SandboxImage        string `toml:"sandbox_image"`
			RestrictOOMScoreAdj bool   `toml:"restrict_oom_score_adj"`
			Containerd          struct {
				Snapshotter string `toml:"snapshotter"`
				Runtimes    map[string]struct {
					Options struct {
						SystemdCgroup bool
						BinaryName    string
					} `toml:"options"`
				} `toml:"runtimes"`
			} `toml:"containerd"`
			CNI struct {
				BinDir string `toml:"bin_dir"`
			} `toml:"cni"`
		} `toml:"plugins"`
	}
	if _, err := toml.Decode(fs["/etc/containerd/config.toml"].data, &cfg); err != nil {
		t.Fatal(err)
	}
	cri := cfg.Plugins["io.containerd.grpc.v1.cri"]
	runc := cri.Containerd.Runtimes["runc"].Options
	if cfg.Version != 2 || cri.Containerd.Snapshotter != "overlayfs" || cri.SandboxImage != c.PauseRef || !cri.RestrictOOMScoreAdj ||
		!runc.SystemdCgroup || runc.BinaryName != runtimePath || cri.CNI.BinDir != "/usr/lib/cni" {
		t.Errorf("containerd config %+v", cfg)
	}
	if d := fs["/etc/systemd/system/containerd.service.d/10-drillbot.conf"].data; !strings.Contains(d, "HTTPS_PROXY=http://127.0.0.1:9") {
		t.Errorf("containerd reaches registries: %q", d)
	}
	for _, img := range c.Images {
		if f, ok := fs[filepath.Join(imagesDir, filepath.Base(img))]; !ok || f.src != img {
			t.Errorf("image %s not preloaded", img)
		}
	}
	for _, p := range []string{"/usr/bin/kubelet", "/usr/bin/kubeadm", "/usr/bin/kubectl", runtimePath} {
		if f := fs[p]; f.src == "" || f.mode != 0o755 {
			t.Errorf("%s: %+v", p, f)
		}
	}
	k := fs["/etc/systemd/system/kubelet.service"].data
	if !strings.Contains(k, "Requires=drillbot-preload.service") || !strings.Contains(k, "After=containerd.service drillbot-preload.service") {
		t.Errorf("the kubelet may start before the images are in:\n%s", k)
	}
}

func TestEntrypointParses(t *testing.T) {
	f := filepath.Join(t.TempDir(), "entrypoint")
	if err := os.WriteFile(f, []byte(entrypoint), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("bash", "-n", f).CombinedOutput(); err != nil {
		t.Errorf("bash -n: %v: %s", err, out)
	}
}

func TestValidate(t *testing.T) {
	c := testConfig(t)
	if err := validate(c, "/tmp/node.tar", "drillbot.local/kind-node:v1.34.4"); err != nil {
		t.Fatal(err)
	}
	bad := c
	bad.Kubeadm, bad.KubeVersion, bad.Images = "/nonexistent/kubeadm", "1.34", nil
	err := validate(bad, "", "Not A Ref")
	for _, want := range []string{"-out", "-ref", "-kube-version", "-kubeadm", "-image"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v: nothing on %s", err, want)
		}
	}
}

func TestWriteFiles(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(t.TempDir(), "kubelet")
	if err := os.WriteFile(src, []byte("ELF"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeFiles(root, map[string]nodeFile{"/usr/bin/kubelet": {mode: 0o755, src: src}, "/kind/version": {mode: 0o644, data: "v1\n"}}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(root, "usr/bin/kubelet"))
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("kubelet: %v %v", fi, err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "kind/version")); string(b) != "v1\n" {
		t.Errorf("version %q", b)
	}
}
