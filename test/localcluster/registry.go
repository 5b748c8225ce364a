package localcluster

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Registry is an OCI registry (go-containerregistry's, in memory) served
// by the test process over plain HTTP on the real node's address, where
// pods reach it (Kyverno fetches signatures from it), or on loopback. Nothing outside this
// machine is involved: image references name Host.
type Registry struct {
	// Host is host:port, the registry part of image references.
	Host string
	srv  *http.Server
}

// ServeRegistry starts a registry on the real node's address, or on
// loopback for a kwok-only cluster (where no pod pulls: drillbot and the
// test reach it).
func (c *Cluster) ServeRegistry() (*Registry, error) {
	host := "127.0.0.1"
	if c.node {
		host = NodeIP
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	r := &Registry{Host: ln.Addr().String(), srv: &http.Server{
		Handler:           registry.New(registry.Logger(log.New(discard{}, "", 0)), registry.WithReferrersSupport(true)),
		ReadHeaderTimeout: 10 * time.Second,
	}}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// Close stops serving.
func (r *Registry) Close() { _ = r.srv.Close() }

// Push pushes the local image name (a tarball hack/image wrote) as
// Host/repo:tag, with an annotation that makes its digest its own (two
// repos pushed from one image get two digests). It returns the pushed
// image's reference by digest.
func (r *Registry) Push(ctx context.Context, images, image, repo, tag string) (string, error) {
	img, err := tarball.ImageFromPath(filepath.Join(images, image+".tar"), nil)
	if err != nil {
		return "", fmt.Errorf("read image %s: %w", image, err)
	}
	img = mutate.Annotations(img, map[string]string{"io.drillbot.test/repo": repo}).(v1.Image)
	ref, err := name.NewTag(r.Host+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		return "", err
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	return ref.Context().Digest(d.String()).String(), nil
}

// CosignKeyPair generates a cosign key pair (no password) in dir with the
// cosign CLI and returns the paths of the private and public keys.
func CosignKeyPair(ctx context.Context, cosign, dir string) (key, pub string, err error) {
	cmd := exec.CommandContext(ctx, cosign, "generate-key-pair")
	cmd.Dir, cmd.Env = dir, append(os.Environ(), "COSIGN_PASSWORD=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("cosign generate-key-pair: %w: %s", err, out)
	}
	return filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub"), nil
}

// Sign signs ref (by digest) with the cosign CLI and key, storing the
// signature in the registry beside the image. No transparency log, no
// signing config from the network: the key is all there is.
func (r *Registry) Sign(ctx context.Context, cosign, key, ref string) error {
	if !strings.HasPrefix(ref, r.Host+"/") {
		return fmt.Errorf("%s is not in this registry (%s)", ref, r.Host)
	}
	cmd := exec.CommandContext(ctx, cosign, "sign", "--key", key, "--yes",
		"--tlog-upload=false", "--use-signing-config=false", "--new-bundle-format=false",
		"--allow-insecure-registry", "--allow-http-registry", ref)
	// Never a network lookup: a cosign that tried would hang on the proxy.
	cmd.Env = append(os.Environ(), "COSIGN_PASSWORD=", "HTTPS_PROXY="+NoRegistryProxy, "HTTP_PROXY="+NoRegistryProxy, "NO_PROXY="+NodeIP)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("cosign sign %s: %w: %s", ref, err, out)
	}
	return nil
}
