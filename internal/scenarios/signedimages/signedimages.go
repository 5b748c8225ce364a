// Package signedimages is the signed-images check: every image running in
// the namespaces its selector matches has a valid cosign signature for the
// configured public key. Signatures are read from the registry the way
// cosign stores key-based signatures (the image's sha256-<digest>.sig
// tag, simple-signing payloads with the signature in a layer annotation)
// and verified with sigstore's own signature package; the payload must
// name the image's digest. It writes nothing.
package signedimages

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/payload"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/scenarios/check"
)

// Name is the scenario kind.
const Name = "signed-images"

// signatureAnnotation holds a simple-signing layer's signature (cosign's).
const signatureAnnotation = "dev.cosignproject.cosign/signature"

// Params are the drill's spec.params.
type Params struct {
	// Namespaces selects the namespaces checked (a label selector).
	Namespaces *metav1.LabelSelector `json:"namespaces"`
	// PublicKey is the cosign public key (PEM) signatures must verify with.
	PublicKey string `json:"publicKey"`
	// Images, when set, limits the check to images matching these globs
	// (as Kyverno's imageReferences, e.g. registry.example/team/*).
	Images []string `json:"images,omitempty"`
	// InsecureRegistries are reached over plain HTTP (tests, air gaps).
	InsecureRegistries []string `json:"insecureRegistries,omitempty"`
}

// Deps are what the check needs.
type Deps struct {
	Kube kubernetes.Interface
	// Transport reaches registries (default http.DefaultTransport).
	Transport http.RoundTripper
	Logger    *slog.Logger
}

// Kind is the signed-images kind: a check.
type Kind struct {
	check.Kind
	Deps Deps
}

var _ engine.Kind = Kind{}

// ValidateParams implements engine.Kind.
func (Kind) ValidateParams(spec v1alpha1.DrillSpec, path *field.Path) field.ErrorList {
	var p Params
	errs := drill.DecodeParams(spec.Params, &p, path)
	if len(errs) > 0 {
		return errs
	}
	errs = append(errs, check.ValidateNamespaces(p.Namespaces, path.Child("namespaces"))...)
	if p.PublicKey == "" {
		errs = append(errs, field.Required(path.Child("publicKey"), "the cosign public key (PEM) images must be signed with"))
	} else if _, err := cryptoutils.UnmarshalPEMToPublicKey([]byte(p.PublicKey)); err != nil {
		errs = append(errs, field.Invalid(path.Child("publicKey"), "(PEM)", "not a public key: "+err.Error()))
	}
	for i, g := range p.Images {
		if g == "" {
			errs = append(errs, field.Required(path.Child("images").Index(i), "an image glob, e.g. registry.example/*"))
		}
	}
	return errs
}

// New implements engine.Kind.
func (k Kind) New(def drill.Definition, runName string) (engine.Scenario, error) {
	var p Params
	if err := drill.Params(def.Spec, &p); err != nil {
		return nil, err
	}
	sel, err := check.SelectNamespaces(p.Namespaces)
	if err != nil {
		return nil, err
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey([]byte(p.PublicKey))
	if err != nil {
		return nil, fmt.Errorf("spec.params.publicKey: %w", err)
	}
	verifier, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("spec.params.publicKey: %w", err)
	}
	tr := k.Deps.Transport
	if tr == nil {
		tr = http.DefaultTransport
	}
	log := k.Deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &imageCheck{kube: k.Deps.Kube, params: p, selector: sel, verifier: verifier, transport: tr, log: log.With("scenario", Name, "run", runName)}, nil
}

type imageCheck struct {
	check.NoFault
	kube      kubernetes.Interface
	params    Params
	selector  check.Namespaces
	verifier  signature.Verifier
	transport http.RoundTripper
	log       *slog.Logger

	images     map[string]*Image // digest reference -> what was found
	namespaces int
}

// Image is one running image and what its signatures say.
type Image struct {
	Ref  string   // repo@sha256:...
	Pods []string // namespace/pod
	// Signed: a signature verified with the key and naming this digest.
	Signed bool
	// Problem says why not: no signature, none valid, unreadable.
	Problem string
	// Unreadable: the registry could not be read (not a verdict on the image).
	Unreadable bool
}

// Preflight implements engine.Scenario.
func (c *imageCheck) Preflight(context.Context) error { return nil }

// Recover implements engine.Scenario: the running images, then their
// signatures.
func (c *imageCheck) Recover(ctx context.Context, m engine.Milestones) error {
	nss, err := c.selector.List(ctx, c.kube)
	if err != nil {
		return err
	}
	c.namespaces = len(nss)
	c.images = map[string]*Image{}
	for _, ns := range nss {
		pods, err := c.kube.CoreV1().Pods(ns.Name).List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("list pods in %s: %w", ns.Name, err)
		}
		for i := range pods.Items {
			p := &pods.Items[i]
			if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
				continue
			}
			for _, ref := range c.running(ctx, p) {
				img := c.images[ref.ref]
				if img == nil {
					img = &Image{Ref: ref.ref, Problem: ref.problem, Unreadable: ref.problem != ""}
					c.images[ref.ref] = img
				}
				img.Pods = append(img.Pods, p.Namespace+"/"+p.Name)
			}
		}
	}
	m.Mark("images-listed")
	for _, img := range c.images {
		if img.Problem == "" {
			c.verify(ctx, img)
		}
	}
	m.Mark("signatures-verified")
	return nil
}

type runningRef struct{ ref, problem string }

// running is the digest reference of each container image of p in scope:
// the kubelet's imageID when it has one (what runs), else the spec's
// digest, else the tag resolved now (named as such).
func (c *imageCheck) running(ctx context.Context, p *corev1.Pod) []runningRef {
	ids := map[string]string{}
	for _, s := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		ids[s.Name] = strings.TrimPrefix(s.ImageID, "docker-pullable://")
	}
	var out []runningRef
	for _, ctr := range append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
		if !c.inScope(ctr.Image) {
			continue
		}
		ref, err := name.ParseReference(ctr.Image, c.nameOpts(ctr.Image)...)
		if err != nil {
			out = append(out, runningRef{ref: ctr.Image, problem: "not an image reference: " + err.Error()})
			continue
		}
		if id := ids[ctr.Name]; strings.Contains(id, "@sha256:") {
			if d, err := name.NewDigest(id, c.nameOpts(id)...); err == nil {
				out = append(out, runningRef{ref: ref.Context().Digest(d.DigestStr()).String()})
				continue
			}
		}
		if d, ok := ref.(name.Digest); ok {
			out = append(out, runningRef{ref: d.String()})
			continue
		}
		desc, err := remote.Head(ref, c.remoteOpts(ctx)...)
		if err != nil {
			out = append(out, runningRef{ref: ctr.Image, problem: "tag not resolved: " + err.Error()})
			continue
		}
		out = append(out, runningRef{ref: ref.Context().Digest(desc.Digest.String()).String()})
	}
	return out
}

func (c *imageCheck) inScope(image string) bool {
	if len(c.params.Images) == 0 {
		return true
	}
	return slices.ContainsFunc(c.params.Images, func(g string) bool { return globMatch(g, image) })
}

// globMatch matches as Kyverno's imageReferences do: * is any run of
// characters, "/" included; ? is one.
func globMatch(pattern, s string) bool {
	re := "^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(pattern)) + "$"
	ok, _ := regexp.MatchString(re, s)
	return ok
}

func (c *imageCheck) nameOpts(ref string) []name.Option {
	for _, r := range c.params.InsecureRegistries {
		if strings.HasPrefix(ref, r+"/") {
			return []name.Option{name.Insecure}
		}
	}
	return nil
}

func (c *imageCheck) remoteOpts(ctx context.Context) []remote.Option {
	return []remote.Option{remote.WithContext(ctx), remote.WithTransport(c.transport)}
}

// verify reads the image's cosign signatures and checks them.
func (c *imageCheck) verify(ctx context.Context, img *Image) {
	d, err := name.NewDigest(img.Ref, c.nameOpts(img.Ref)...)
	if err != nil {
		img.Problem, img.Unreadable = err.Error(), true
		return
	}
	tag := d.Context().Tag(strings.Replace(d.DigestStr(), ":", "-", 1) + ".sig")
	sigs, err := remote.Image(tag, c.remoteOpts(ctx)...)
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		img.Problem = "no cosign signature (" + tag.TagStr() + " not found)"
		return
	}
	if err != nil {
		img.Problem, img.Unreadable = "signatures not read: "+err.Error(), true
		return
	}
	m, err := sigs.Manifest()
	if err != nil {
		img.Problem, img.Unreadable = "signature manifest: "+err.Error(), true
		return
	}
	var why []string
	for _, l := range m.Layers {
		sig, err := base64.StdEncoding.DecodeString(l.Annotations[signatureAnnotation])
		if err != nil || len(sig) == 0 {
			continue
		}
		layer, err := sigs.LayerByDigest(l.Digest)
		if err != nil {
			why = append(why, err.Error())
			continue
		}
		rc, err := layer.Compressed() // simple-signing payloads are stored as they are
		if err != nil {
			why = append(why, err.Error())
			continue
		}
		body, err := io.ReadAll(io.LimitReader(rc, 1<<20))
		rc.Close()
		if err != nil {
			why = append(why, err.Error())
			continue
		}
		if err := c.verifier.VerifySignature(bytes.NewReader(sig), bytes.NewReader(body)); err != nil {
			why = append(why, "signature does not verify with the key")
			continue
		}
		var p payload.SimpleContainerImage
		if err := json.Unmarshal(body, &p); err != nil {
			why = append(why, "payload: "+err.Error())
			continue
		}
		if p.Critical.Image.DockerManifestDigest != d.DigestStr() {
			why = append(why, "a valid signature names another digest, "+p.Critical.Image.DockerManifestDigest)
			continue
		}
		img.Signed = true
		return
	}
	if len(why) == 0 {
		why = []string{"no signature layers"}
	}
	slices.Sort(why)
	img.Problem = "not signed with the key: " + strings.Join(slices.Compact(why), "; ")
}

// Verify implements engine.Scenario.
func (c *imageCheck) Verify(context.Context) (engine.Verification, error) {
	return Judge(c.images, c.namespaces, c.selector.String()), nil
}

// Judge names every image not signed with the key, and the share signed.
func Judge(images map[string]*Image, namespaces int, selector string) engine.Verification {
	var v engine.Verification
	if namespaces == 0 {
		v.Inconclusive = fmt.Sprintf("no namespace matches %s: nothing to check", selector)
		return v
	}
	refs := make([]string, 0, len(images))
	for r := range images {
		refs = append(refs, r)
	}
	sort.Strings(refs)
	signed := 0
	var unreadable []string
	for _, r := range refs {
		img := images[r]
		pods := img.Pods
		if len(pods) > 3 {
			pods = append(pods[:3:3], fmt.Sprintf("and %d more", len(img.Pods)-3))
		}
		switch {
		case img.Signed:
			signed++
		case img.Unreadable:
			unreadable = append(unreadable, fmt.Sprintf("%s (%s): %s", r, strings.Join(pods, ", "), img.Problem))
		default:
			v.Failures = append(v.Failures, fmt.Sprintf("%s (%s): %s", r, strings.Join(pods, ", "), img.Problem))
		}
	}
	v.Findings = append(v.Findings, fmt.Sprintf("signed images: %d of %d running in %d namespaces", signed, len(images), namespaces))
	v.Posture = &v1alpha1.PostureMeasure{Compliant: int32(signed), Total: int32(len(images)), Of: "images"}
	v.Findings = append(v.Findings, unreadable...)
	if len(v.Failures) == 0 && len(unreadable) > 0 {
		v.Inconclusive = fmt.Sprintf("%d images could not be verified (registry unreadable)", len(unreadable))
	}
	return v
}
