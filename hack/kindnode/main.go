// Command kindnode builds drillbot's kind node image without a container
// registry: a Debian root filesystem made by debootstrap (systemd,
// containerd, runc, the CNI plugins: Debian's packages), the kubelet,
// kubeadm and kubectl the Makefile built from hack/tools/kube, the control
// plane's images (hack/image: the same binaries, named as kubeadm expects)
// preloaded at the kubelet's first start, and the files kind's own base
// image ships for kubeadm (files.go). The result is a docker-archive
// tarball `docker load` takes, passed to kind as its node image
// (test/kindcluster, Config.Local).
//
//	go run ./hack/kindnode -out bin/kind-node-v1.34.4/node.tar -kube-version v1.34.4 \
//	    -kubelet K -kubeadm A -kubectl C -runtime R -image bin/images/kube-apiserver.tar ...
//
// It runs as root (debootstrap, and a root-owned tree) and reaches only the
// Debian mirror.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	var c nodeConfig
	out := flag.String("out", "", "the node image's docker-archive tarball")
	ref := flag.String("ref", "drillbot.local/kind-node:dev", "the node image's reference")
	mirror := flag.String("mirror", "http://deb.debian.org/debian", "the Debian mirror debootstrap reads")
	suite := flag.String("suite", "bookworm", "the Debian release")
	work := flag.String("work", "", "a scratch directory (default: one under $TMPDIR, removed)")
	rootfs := flag.String("rootfs", "", "a root filesystem debootstrap made before (changed in place), instead of a new one")
	flag.StringVar(&c.KubeVersion, "kube-version", "", "the Kubernetes version (/kind/version; kind writes it into kubeadm's config)")
	flag.StringVar(&c.PauseRef, "pause", "registry.k8s.io/pause:3.10.1", "containerd's sandbox image (one of -image)")
	flag.StringVar(&c.PodSubnet, "pod-subnet", "10.244.0.0/24", "the node's pod addresses (inside kind's pod subnet)")
	flag.StringVar(&c.Kubelet, "kubelet", "", "the kubelet binary")
	flag.StringVar(&c.Kubeadm, "kubeadm", "", "the kubeadm binary")
	flag.StringVar(&c.Kubectl, "kubectl", "", "the kubectl binary")
	flag.StringVar(&c.Runtime, "runtime", "", "hack/kindruntime's static binary")
	flag.Func("image", "an image archive to preload (repeatable)", func(v string) error { c.Images = append(c.Images, v); return nil })
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(context.Background(), log, c, *out, *ref, *mirror, *suite, *work, *rootfs); err != nil {
		fmt.Fprintln(os.Stderr, "kindnode:", err)
		os.Exit(1)
	}
}

// validate names every missing or unreadable input before anything runs.
func validate(c nodeConfig, out, ref string) error {
	var errs []error
	if out == "" {
		errs = append(errs, errors.New("-out: required"))
	}
	if _, err := name.NewTag(ref, name.StrictValidation); err != nil {
		errs = append(errs, fmt.Errorf("-ref %q: %w", ref, err))
	}
	if !strings.HasPrefix(c.KubeVersion, "v") || strings.Count(c.KubeVersion, ".") != 2 {
		errs = append(errs, fmt.Errorf("-kube-version %q: want vMAJOR.MINOR.PATCH", c.KubeVersion))
	}
	for flagName, p := range map[string]string{"-kubelet": c.Kubelet, "-kubeadm": c.Kubeadm, "-kubectl": c.Kubectl, "-runtime": c.Runtime} {
		if p == "" {
			errs = append(errs, fmt.Errorf("%s: required", flagName))
		} else if _, err := os.Stat(p); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", flagName, err))
		}
	}
	if len(c.Images) == 0 {
		errs = append(errs, errors.New("-image: the control plane's images are required (no registry is reachable)"))
	}
	for _, img := range c.Images {
		if _, err := os.Stat(img); err != nil {
			errs = append(errs, fmt.Errorf("-image: %w", err))
		}
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

func run(ctx context.Context, log *slog.Logger, c nodeConfig, out, ref, mirror, suite, work, rootfs string) error {
	if err := validate(c, out, ref); err != nil {
		return err
	}
	if work == "" {
		tmp, err := os.MkdirTemp("", "drillbot-kindnode-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		work = tmp
	}
	root := rootfs
	if root == "" {
		root = filepath.Join(work, "rootfs")
		log.Info("debootstrap", "suite", suite, "mirror", mirror, "root", root)
		if err := cmd(ctx, "debootstrap", "--variant=minbase", includeArg(), suite, root, mirror); err != nil {
			return err
		}
	}
	// What the image need not carry: the package cache and lists, docs;
	// and what a node container has no use for: timers (apt's daily runs),
	// file system scrubbing.
	for _, g := range []string{"var/cache/apt/*", "var/lib/apt/lists/*", "usr/share/doc/*", "usr/share/man/*", "usr/share/locale/*",
		"etc/systemd/system/timers.target.wants", "etc/systemd/system/multi-user.target.wants/e2scrub_reap.service", "etc/systemd/system/getty.target.wants"} {
		ms, _ := filepath.Glob(filepath.Join(root, g))
		for _, m := range ms {
			if err := os.RemoveAll(m); err != nil {
				return err
			}
		}
	}
	if err := writeFiles(root, files(c)); err != nil {
		return err
	}
	// Units kind masks (nothing to do in a node container).
	for _, u := range []string{"systemd-binfmt.service", "getty.target", "console-getty.service"} {
		if err := os.Symlink("/dev/null", filepath.Join(root, "etc/systemd/system", u)); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	}
	layer := filepath.Join(work, "layer.tar")
	log.Info("root filesystem to a layer", "file", layer)
	if err := cmd(ctx, "tar", "--create", "--file", layer, "--directory", root, "--numeric-owner", "--xattrs", "--xattrs-include=security.capability",
		"--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*", "--exclude=./run/*", "--exclude=./tmp/*", "."); err != nil {
		return err
	}
	return writeImage(layer, ref, out)
}

func cmd(ctx context.Context, name string, args ...string) error {
	c := exec.CommandContext(ctx, name, args...)
	c.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if b, err := c.CombinedOutput(); err != nil {
		tail := string(b)
		if len(tail) > 3000 {
			tail = "..." + tail[len(tail)-3000:]
		}
		return fmt.Errorf("%s: %w\n%s", name, err, tail)
	}
	return nil
}

// writeFiles writes the node's files under root (copies of this machine's
// files where src is set), root-owned.
func writeFiles(root string, fs map[string]nodeFile) error {
	for _, p := range slices.Sorted(maps.Keys(fs)) {
		f := fs[p]
		dst := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		data := []byte(f.data)
		if f.src != "" {
			var err error
			if data, err = os.ReadFile(f.src); err != nil {
				return err
			}
		}
		if err := os.WriteFile(dst, data, os.FileMode(f.mode)); err != nil {
			return err
		}
		if err := os.Chmod(dst, os.FileMode(f.mode)); err != nil {
			return err
		}
	}
	return nil
}

// imageConfig is the node image's configuration: systemd behind the
// entrypoint, stopped as systemd wants.
func imageConfig() v1.Config {
	return v1.Config{
		Entrypoint: []string{"/usr/local/bin/entrypoint", "/sbin/init"},
		Env:        []string{"container=docker", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		StopSignal: "SIGRTMIN+3",
	}
}

func writeImage(layerTar, ref, out string) error {
	layer, err := tarball.LayerFromFile(layerTar)
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config = imageConfig()
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp := out + ".tmp"
	if err := tarball.WriteToFile(tmp, tag, img); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}
