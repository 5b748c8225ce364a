package main

import (
	"archive/tar"
	"context"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestDynamicBinaryComesWithItsLibraries: a prebuilt binary linked against
// this machine's libc (the Kubernetes binaries of the kind node's control
// plane) and an extra one (Velero's plugin beside its server) are laid out
// with every library ldd names and the loader, on the image's PATH.
func TestDynamicBinaryComesWithItsLibraries(t *testing.T) {
	file := filepath.Join(t.TempDir(), "img.tar")
	s := spec{bin: "/usr/local/bin/true", user: "0:0", dynamic: true, src: "/bin/true",
		extra: map[string]string{"/plugins/false": "/bin/false"}}
	if err := build(context.Background(), s, "registry.k8s.io/true:v1", file); err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag("registry.k8s.io/true:v1")
	img, err := tarball.ImageFromPath(file, &tag)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(cf.Config.Env, "PATH=/usr/local/bin:/usr/sbin:/bin:/") || !slices.Equal(cf.Config.Entrypoint, []string{"/usr/local/bin/true"}) {
		t.Errorf("config %+v", cf.Config)
	}
	var files []string
	tr := tar.NewReader(mutate.Extract(img))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, "/"+strings.TrimSuffix(h.Name, "/"))
	}
	for _, want := range []string{"/usr/local/bin/true", "/plugins/false", "/etc/ld.so.cache"} {
		if !slices.Contains(files, want) {
			t.Errorf("no %s in %q", want, files)
		}
	}
	if !slices.ContainsFunc(files, func(f string) bool { return strings.Contains(f, "ld-linux") }) ||
		!slices.ContainsFunc(files, func(f string) bool { return strings.Contains(f, "libc.so") }) {
		t.Errorf("no loader or libc in %q", files)
	}
}
