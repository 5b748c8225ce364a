// Command image builds drillbot's container image, and the images the local
// cluster's real node runs, without Docker: each is a static Go binary in a
// FROM-scratch image assembled with go-containerregistry and written as a
// tarball (docker-archive format) that `ctr images import` and `docker load`
// both accept. drillbot's image is the Dockerfile's equivalent: the binary
// at /drillbot, CA certificates, user 65532 (nonroot), nothing else.
//
// The images of the real security stack (kyverno, kyvernopre,
// external-secrets) wrap static binaries the Makefile built from the Go
// module proxy, named with -bin NAME=PATH; hack/images/rulescheck plays
// Falco's rules loading.
//
//	go run ./hack/image -out bin/images -tag dev [drillbot pause sampleapp rulescheck]
//	go run ./hack/image -out bin/images -bin kyverno=bin/kyverno-v1.19.1/kyverno kyverno
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"flag"
	"fmt"
	"io"
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

// Registry is the (never contacted) registry the local images are named in.
const Registry = "drillbot.local"

type spec struct {
	// pkg is the package to build, or "" for a prebuilt binary (-bin).
	pkg, bin string
	user     string
	ldflags  string
	caCerts  bool
	src      string // the prebuilt binary
	// hostProgs are Debian's programs the binary runs (name in the image's
	// /usr/sbin -> path on this machine), copied with their shared
	// libraries and the dynamic loader: calico-node's Felix runs
	// iptables-nft-restore, ipset and conntrack as Calico's own image does.
	hostProgs map[string]string
	// hostDirs are directories of this machine copied whole (the iptables
	// extensions the programs load at run time).
	hostDirs []string
	// dynamic: the prebuilt binary is linked against this machine's libc,
	// copied with its shared libraries as hostProgs are (the Kubernetes
	// binaries the local cluster builds with cgo).
	dynamic bool
	// extra are more prebuilt binaries in the image (its path -> the -bin
	// NAME that gives it), copied with their libraries: Velero's AWS plugin
	// beside the server that runs it.
	extra map[string]string
}

// iptablesProgs are Debian's iptables (nf_tables backend), ipset and
// conntrack, for what writes the node's rules from a pod.
var iptablesProgs = map[string]string{
	"iptables-nft": "/usr/sbin/xtables-nft-multi", "iptables-nft-save": "/usr/sbin/xtables-nft-multi", "iptables-nft-restore": "/usr/sbin/xtables-nft-multi",
	"ip6tables-nft": "/usr/sbin/xtables-nft-multi", "ip6tables-nft-save": "/usr/sbin/xtables-nft-multi", "ip6tables-nft-restore": "/usr/sbin/xtables-nft-multi",
	"iptables": "/usr/sbin/xtables-nft-multi", "iptables-save": "/usr/sbin/xtables-nft-multi", "iptables-restore": "/usr/sbin/xtables-nft-multi",
	"ipset": "/usr/sbin/ipset", "conntrack": "/usr/sbin/conntrack",
}

// xtablesDir holds the iptables extensions loaded at run time.
const xtablesDir = "/usr/lib/x86_64-linux-gnu/xtables"

func specs(version string) map[string]spec {
	return map[string]spec{
		"drillbot": {pkg: "./cmd/drillbot", bin: "/drillbot", user: "65532:65532", caCerts: true,
			ldflags: "-s -w -X github.com/drillbot-io/drillbot/internal/version.Version=" + version},
		"pause":      {pkg: "./hack/images/pause", bin: "/pause", user: "65535:65535", ldflags: "-s -w"},
		"sampleapp":  {pkg: "./hack/images/sampleapp", bin: "/sampleapp", user: "65532:65532", ldflags: "-s -w"},
		"rulescheck": {pkg: "./hack/images/rulescheck", bin: "/rulescheck", user: "65532:65532", ldflags: "-s -w"},
		// Kyverno's admission controller and its init container, and the
		// External Secrets Operator, as their own releases' images lay
		// them out (the charts pass arguments only).
		"kyverno":          {bin: "/kyverno", user: "65534:65534", caCerts: true},
		"kyvernopre":       {bin: "/kyvernopre", user: "65534:65534", caCerts: true},
		"external-secrets": {bin: "/bin/external-secrets", user: "65534:65534", caCerts: true},
		// Velero's node-agent (and the data-mover pods it makes from its
		// DaemonSet's template) run as root, reading every pod's volumes;
		// the restore helper is the init container Velero adds to a
		// restored pod, which waits until its volumes' data is back.
		"velero":                {bin: "/velero", user: "0:0", caCerts: true},
		"velero-restore-helper": {bin: "/velero-restore-helper", user: "65532:65532"},
		// The real node's dynamic provisioner, and the helper it runs on
		// the node (as root: it makes and removes volume directories).
		"local-path-provisioner": {bin: "/local-path-provisioner", user: "65532:65532"},
		"volumehelper":           {pkg: "./hack/images/volumehelper", bin: "/volumehelper", user: "0:0", ldflags: "-s -w"},
		// Calico's node agent (Felix, policy only) runs as root on the
		// host's network and writes its rules with the host's iptables
		// (nf_tables backend), ipset and conntrack, from Debian's packages.
		"calico-node": {bin: "/bin/calico-node", user: "0:0", caCerts: true, hostProgs: iptablesProgs, hostDirs: []string{xtablesDir}},
		// The control plane of the local kind node image (hack/kindnode),
		// named as kubeadm expects them (-ref): the binaries the local
		// cluster runs, on the PATH (kubeadm's static pods name them bare),
		// as root as kubeadm runs them; kube-proxy writes the node's
		// iptables rules.
		"kube-apiserver":          {bin: "/usr/local/bin/kube-apiserver", user: "0:0", caCerts: true, dynamic: true},
		"kube-controller-manager": {bin: "/usr/local/bin/kube-controller-manager", user: "0:0", caCerts: true, dynamic: true},
		"kube-scheduler":          {bin: "/usr/local/bin/kube-scheduler", user: "0:0", dynamic: true},
		"etcd":                    {bin: "/usr/local/bin/etcd", user: "0:0", dynamic: true},
		"kube-proxy":              {bin: "/usr/local/bin/kube-proxy", user: "0:0", dynamic: true, hostProgs: iptablesProgs, hostDirs: []string{xtablesDir}},
		// kind's Velero runs in the cluster: the server with the AWS plugin
		// in its plugin directory, and the S3 store (versitygw) as a pod.
		"velero-server": {bin: "/velero", user: "65532:65532", caCerts: true,
			extra: map[string]string{"/velero-plugins/velero-plugin-for-aws": "velero-plugin-for-aws"}},
		"versitygw": {bin: "/usr/local/bin/versitygw", user: "65532:65532", dynamic: true},
	}
}

func main() {
	out := flag.String("out", "bin/images", "directory for the image tarballs")
	tag := flag.String("tag", "dev", "image tag")
	version := flag.String("version", "dev", "drillbot version stamped into its binary")
	prebuilt := map[string]string{}
	flag.Func("bin", "NAME=PATH: the prebuilt static binary of image NAME (repeatable)", func(v string) error {
		n, p, ok := strings.Cut(v, "=")
		if !ok || n == "" || p == "" {
			return fmt.Errorf("want NAME=PATH, got %q", v)
		}
		prebuilt[n] = p
		return nil
	})
	refs := map[string]string{}
	flag.Func("ref", "NAME=REF: the reference image NAME is written under, instead of "+Registry+"/NAME:TAG (repeatable)", func(v string) error {
		n, r, ok := strings.Cut(v, "=")
		if !ok || n == "" || r == "" {
			return fmt.Errorf("want NAME=REF, got %q", v)
		}
		if _, err := name.NewTag(r, name.StrictValidation); err != nil {
			return fmt.Errorf("-ref %s: %w", v, err)
		}
		refs[n] = r
		return nil
	})
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	all := specs(*version)
	names := flag.Args()
	if len(names) == 0 {
		for n, s := range all {
			if s.pkg != "" {
				names = append(names, n)
			}
		}
		slices.Sort(names)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
	for _, n := range names {
		s, ok := all[n]
		if !ok {
			fmt.Fprintf(os.Stderr, "image: unknown image %q\n", n)
			os.Exit(64)
		}
		if s.pkg == "" {
			if s.src = prebuilt[n]; s.src == "" {
				fmt.Fprintf(os.Stderr, "image: %s wraps a prebuilt binary: give -bin %s=PATH\n", n, n)
				os.Exit(64)
			}
		}
		extra := map[string]string{}
		for path, b := range s.extra {
			if extra[path] = prebuilt[b]; extra[path] == "" {
				fmt.Fprintf(os.Stderr, "image: %s holds %s at %s: give -bin %s=PATH\n", n, b, path, b)
				os.Exit(64)
			}
		}
		s.extra = extra
		ref := fmt.Sprintf("%s/%s:%s", Registry, n, *tag)
		if r, ok := refs[n]; ok {
			ref = r
		}
		file := filepath.Join(*out, n+".tar")
		if err := build(context.Background(), s, ref, file); err != nil {
			fmt.Fprintf(os.Stderr, "image %s: %v\n", n, err)
			os.Exit(1)
		}
		log.Info("image built", "ref", ref, "file", file)
	}
}

func build(ctx context.Context, s spec, ref, file string) error {
	tmp, err := os.MkdirTemp("", "drillbot-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	binPath := s.src
	if s.pkg != "" {
		binPath = filepath.Join(tmp, "bin")
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", s.ldflags, "-o", binPath, s.pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go build %s: %w", s.pkg, err)
		}
	} else if !s.dynamic {
		if err := checkStatic(binPath); err != nil {
			return err
		}
	}
	var files []entry
	progs := s.hostProgs
	if s.dynamic || len(s.extra) > 0 {
		progs = maps.Clone(progs)
		if progs == nil {
			progs = map[string]string{}
		}
		maps.Copy(progs, s.extra)
	}
	if s.dynamic {
		progs[s.bin] = binPath
	} else {
		files = append(files, entry{path: s.bin, src: binPath, mode: 0o755})
	}
	if s.caCerts {
		files = append(files, entry{path: "/etc/ssl/certs/ca-certificates.crt", src: "/etc/ssl/certs/ca-certificates.crt", mode: 0o644})
	}
	host, err := hostFiles(ctx, progs, s.hostDirs)
	if err != nil {
		return err
	}
	files = append(files, host...)
	uid := s.user[:len(s.user)/2]
	files = append(files, entry{path: "/etc/passwd", data: []byte("root:x:0:0:root:/:/sbin/nologin\nnonroot:x:" + uid + ":" + uid + ":nonroot:/:/sbin/nologin\n"), mode: 0o644})
	layer, err := layerOf(files)
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
	path := "/"
	if len(progs) > 0 {
		path = "/usr/sbin:/bin:/"
	}
	if d := filepath.Dir(s.bin); d != "/" && d != "/usr/sbin" && d != "/bin" {
		path = d + ":" + path
	}
	cf.Config = v1.Config{Entrypoint: []string{s.bin}, User: s.user, WorkingDir: "/",
		Env: []string{"PATH=" + path, "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"}}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	tagRef, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	// Written beside and renamed: a cluster importing the image meanwhile
	// reads the old file or the new one, never half of one.
	part := file + ".part"
	if err := tarball.WriteToFile(part, tagRef, img); err != nil {
		return err
	}
	return os.Rename(part, file)
}

// checkStatic refuses a dynamically linked binary: a FROM-scratch image has
// no loader or libc to run it.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked: build it with CGO_ENABLED=0", path)
		}
	}
	return nil
}

// hostFiles lays out this machine's programs (a bare name under /usr/sbin,
// or at the absolute path given), with every shared library ldd resolves
// for them (and for the files of dirs, loaded at run time) at its own
// path, the loader and its cache.
func hostFiles(ctx context.Context, progs map[string]string, dirs []string) ([]entry, error) {
	if len(progs) == 0 {
		return nil, nil
	}
	var files []entry
	objects := map[string]bool{}
	for _, n := range slices.Sorted(maps.Keys(progs)) {
		p := n
		if !strings.HasPrefix(p, "/") {
			p = "/usr/sbin/" + n
		}
		files = append(files, entry{path: p, src: progs[n], mode: 0o755})
		objects[progs[n]] = true
	}
	for _, d := range dirs {
		ents, err := os.ReadDir(d)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			p := filepath.Join(d, e.Name())
			if e.Type().IsRegular() || e.Type()&os.ModeSymlink != 0 {
				files = append(files, entry{path: p, src: p, mode: 0o644})
				objects[p] = true
			}
		}
	}
	libs := map[string]bool{}
	for _, o := range slices.Sorted(maps.Keys(objects)) {
		out, err := exec.CommandContext(ctx, "ldd", o).Output()
		if err != nil {
			return nil, fmt.Errorf("ldd %s: %w", o, err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
				libs[f[2]] = true
			case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
				libs[f[0]] = true // the loader
			}
		}
	}
	for _, l := range slices.Sorted(maps.Keys(libs)) {
		files = append(files, entry{path: l, src: l, mode: 0o755})
	}
	return append(files, entry{path: "/etc/ld.so.cache", src: "/etc/ld.so.cache", mode: 0o644}), nil
}

type entry struct {
	path string
	src  string
	data []byte
	mode int64
}

// layerOf writes one reproducible layer (zero timestamps, root-owned) of
// files, creating their parent directories.
func layerOf(files []entry) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, f := range files {
		var parents []string
		for d := filepath.Dir(f.path); d != "/" && !dirs[d]; d = filepath.Dir(d) {
			parents = append([]string{d}, parents...)
			dirs[d] = true
		}
		for _, d := range parents {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d[1:] + "/", Mode: 0o755, Format: tar.FormatPAX}); err != nil {
				return nil, err
			}
		}
		data := f.data
		if f.src != "" {
			var err error
			if data, err = os.ReadFile(f.src); err != nil {
				return nil, err
			}
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.path[1:], Mode: f.mode, Size: int64(len(data)), Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
}
