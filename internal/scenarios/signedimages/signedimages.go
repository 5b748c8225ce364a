// Package signedimages is the signed-images check: every image running in
// the namespaces its selector matches has a valid cosign signature for the
// configured public key. What runs is read from each container's status,
// for every kind of container (init, regular, ephemeral: kubectl debug).
// Signatures are read from the registry the way cosign stores key-based
// signatures (the image's sha256-<digest>.sig tag, simple-signing payloads
// with the signature in a layer annotation) and verified with sigstore's
// own signature package; the payload must name the image's digest. It
// writes nothing.
//
// What its PASS rests on, by the rules of EVIDENCE.md:
//   - 1: at least one image running in scope, and every one verified; no
//     namespace, or no image running in scope, is INCONCLUSIVE.
//   - 2: the pods and the registry are read during this run; nothing is
//     cached from another.
//   - 3: the runtime's image ID (status imageID) says what runs; a tag is
//     never resolved. An image ID that is no registry digest (an image
//     loaded or built on the node) FAILs, unless the spec pins a digest
//     whose content, read by digest, has that config. No image ID: a
//     pinned spec counts as its digest (the kubelet runs exactly that
//     content); a tag has not started (noted, not counted) or, started,
//     runs something unknown (INCONCLUSIVE).
//   - 5: a registry that cannot be read (but for the signature tag's 404:
//     no signature) leaves the image unverified: INCONCLUSIVE, unless
//     another image FAILs.
//   - 6: only a signature verified with this key and naming this digest
//     counts; the images globs match names as written and in full
//     (nginx is index.docker.io/library/nginx), never more widely.
//   - 8: containers that have not started, and images outside the globs,
//     are not held against the run.
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
	// (as Kyverno's imageReferences, e.g. registry.example/team/*), matched
	// against the spec's image as written and with both named in full
	// (nginx:* matches docker.io/library/nginx:1 and the other way round).
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

	images     map[string]*Image // what runs -> what was found
	notStarted []string          // containers in scope that run nothing yet
	namespaces int
}

// Image is one running image and what its signatures say.
type Image struct {
	Ref  string   // repo@sha256:... (or the spec's image, when no digest is known)
	Pods []string // namespace/pod (and the container, when the entry is its own)
	// ConfigID, when set, is the image ID the runtime reported for a
	// digest-pinned container (no registry digest): Ref counts only if its
	// content has this config.
	ConfigID string
	// Signed: a signature verified with the key and naming this digest.
	Signed bool
	// Problem says why not: no signature, none valid, no registry digest,
	// unreadable.
	Problem string
	// Unreadable: the registry could not be read, or the runtime named no
	// image (not a verdict on the image).
	Unreadable bool
}

// Preflight implements engine.Scenario.
func (c *imageCheck) Preflight(context.Context) error { return nil }

// Recover implements engine.Scenario: what each container runs, then its
// signatures.
func (c *imageCheck) Recover(ctx context.Context, m engine.Milestones) error {
	nss, err := c.selector.List(ctx, c.kube)
	if err != nil {
		return err
	}
	c.namespaces = len(nss)
	c.images = map[string]*Image{}
	c.notStarted = nil
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
			for _, ctr := range podContainers(p) {
				if c.inScope(ctr.image) {
					c.add(p.Namespace+"/"+p.Name, ctr)
				}
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

// container is one container of a pod, of any kind, and its status.
type container struct {
	kind, name, image string
	status            *corev1.ContainerStatus // nil: none reported
}

func (c container) String() string { return fmt.Sprintf("%s %q", c.kind, c.name) }

// podContainers are p's init, regular and ephemeral (kubectl debug)
// containers, each with its status.
func podContainers(p *corev1.Pod) []container {
	byName := func(ss []corev1.ContainerStatus) map[string]*corev1.ContainerStatus {
		m := make(map[string]*corev1.ContainerStatus, len(ss))
		for i := range ss {
			m[ss[i].Name] = &ss[i]
		}
		return m
	}
	inits, apps, ephs := byName(p.Status.InitContainerStatuses), byName(p.Status.ContainerStatuses), byName(p.Status.EphemeralContainerStatuses)
	var out []container
	for _, c := range p.Spec.InitContainers {
		out = append(out, container{"init container", c.Name, c.Image, inits[c.Name]})
	}
	for _, c := range p.Spec.Containers {
		out = append(out, container{"container", c.Name, c.Image, apps[c.Name]})
	}
	for _, c := range p.Spec.EphemeralContainers {
		out = append(out, container{"ephemeral container", c.Name, c.Image, ephs[c.Name]})
	}
	return out
}

// add records what ctr of pod runs. What runs is the runtime's image ID
// (status.*ContainerStatuses[].imageID), never what the spec's tag
// resolves to in the registry now:
//   - a registry digest (repo@sha256:..., docker-pullable://...): that digest;
//   - no image ID (not started, or not reported): a digest-pinned spec's
//     digest (the kubelet pulls exactly that content, and the runtime
//     checks it against the digest); a tag runs nothing yet, or nothing
//     known: not started, noted and not counted; started, unreadable;
//   - another ID (sha256:<config>, docker://sha256:..., an image loaded or
//     built on the node): a digest-pinned spec's digest if the registry's
//     content of that digest has this config (checked in verify);
//     otherwise not verified, a failure.
func (c *imageCheck) add(pod string, ctr container) {
	key, img := c.whatRuns(ctr)
	if img == nil {
		c.notStarted = append(c.notStarted, fmt.Sprintf("%s %s (%s)", pod, ctr, ctr.image))
		return
	}
	label := pod
	if key != img.Ref { // an entry of what the runtime reported: name the container
		label = pod + " " + ctr.String()
	}
	if have := c.images[key]; have != nil {
		img = have
	} else {
		c.images[key] = img
	}
	if n := len(img.Pods); n == 0 || img.Pods[n-1] != label { // a pod's containers come together
		img.Pods = append(img.Pods, label)
	}
}

// whatRuns is the key and image of what ctr runs; nil: nothing yet.
func (c *imageCheck) whatRuns(ctr container) (string, *Image) {
	ref, err := name.ParseReference(ctr.image, c.nameOpts(ctr.image)...)
	if err != nil {
		return ctr.image, &Image{Ref: ctr.image, Problem: "not an image reference: " + err.Error(), Unreadable: true}
	}
	pinned, isPinned := ref.(name.Digest)
	var id string
	if ctr.status != nil {
		id = ctr.status.ImageID
	}
	digest, config := parseImageID(id)
	switch {
	case digest != "":
		r := ref.Context().Digest(digest).String()
		return r, &Image{Ref: r}
	case isPinned && id == "":
		return pinned.String(), &Image{Ref: pinned.String()}
	case isPinned && config != "":
		key := fmt.Sprintf("%s [image ID %s]", pinned, id)
		return key, &Image{Ref: pinned.String(), ConfigID: config}
	case id == "" && !started(ctr.status):
		return "", nil
	case id == "":
		key := ctr.image + " [no image ID]"
		return key, &Image{Ref: ctr.image, Unreadable: true,
			Problem: "the runtime reports no image ID for a container that ran: what runs is unknown (what the tag points to in the registry today is not evidence of it)"}
	default:
		key := fmt.Sprintf("%s [image ID %s]", ctr.image, id)
		return key, &Image{Ref: ctr.image,
			Problem: "no registry digest (an image loaded or built on the node): what runs cannot be tied to a signature, and what the tag points to in the registry today is not evidence of it"}
	}
}

// started says whether a container has run (so its status should name its
// image).
func started(s *corev1.ContainerStatus) bool {
	return s != nil && (s.State.Running != nil || s.State.Terminated != nil || s.LastTerminationState.Terminated != nil)
}

// configID is a local image ID: the image's config digest, as containerd,
// CRI-O (without the algorithm) and docker (docker://) report an image
// that has no repo digest.
var configID = regexp.MustCompile(`^(?:sha256:)?([0-9a-f]{64})$`)

// parseImageID reads a runtime's image ID: a registry digest (sha256:...)
// or a local config ID (sha256:...), or neither.
func parseImageID(id string) (digest, config string) {
	id = strings.TrimPrefix(strings.TrimPrefix(id, "docker-pullable://"), "docker://")
	if strings.Contains(id, "@") {
		if d, err := name.NewDigest(id); err == nil {
			return d.DigestStr(), ""
		}
		return "", ""
	}
	if m := configID.FindStringSubmatch(id); m != nil {
		return "", "sha256:" + m[1]
	}
	return "", ""
}

func (c *imageCheck) inScope(image string) bool {
	if len(c.params.Images) == 0 {
		return true
	}
	return slices.ContainsFunc(c.params.Images, func(g string) bool { return imageMatches(g, image) })
}

// imageMatches says whether glob names image: as written, or both with
// their repository named in full by go-containerregistry's parser
// (nginx:1 is index.docker.io/library/nginx:1, docker.io/x is
// index.docker.io/x), the tag or digest as written. A wildcard where the
// registry, or a Docker Hub namespace, would be is matched as written:
// which registry it means cannot be told.
func imageMatches(glob, image string) bool {
	if globMatch(glob, image) {
		return true
	}
	full, ok := fullName(image)
	return ok && globMatch(fullGlob(glob), full)
}

// fullName is ref with its repository in full and its tag or digest as
// written.
func fullName(ref string) (string, bool) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", false
	}
	last := ref[strings.LastIndex(ref, "/")+1:]
	var ident string
	if i := strings.IndexAny(last, ":@"); i >= 0 {
		ident = last[i:]
	}
	return r.Context().Name() + ident, true
}

// fullGlob is glob with its literal registry and repository in full, as
// fullName writes them.
func fullGlob(glob string) string {
	const wild = "*?"
	if !strings.ContainsAny(glob, wild) {
		if full, ok := fullName(glob); ok {
			return full
		}
		return glob
	}
	registry, path, named := name.DefaultRegistry, glob, false
	if first, rest, ok := strings.Cut(glob, "/"); ok && (first == "localhost" || strings.ContainsAny(first, ".:")) {
		if strings.ContainsAny(first, wild) {
			return glob
		}
		reg, err := name.NewRegistry(first)
		if err != nil {
			return glob
		}
		registry, path, named = reg.Name(), rest, true
	}
	repo := path // without the tag or digest
	last := strings.LastIndex(path, "/") + 1
	if j := strings.IndexAny(path[last:], ":@"); j >= 0 {
		repo = path[:last+j]
	}
	ns, _, nested := strings.Cut(repo, "/")
	switch {
	case registry != name.DefaultRegistry:
	case strings.ContainsAny(ns, wild):
		if !named {
			return glob // a wildcard where a registry may be
		}
	case !nested:
		path = "library/" + path // Docker Hub's official images
	}
	return registry + "/" + path
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
	if img.ConfigID != "" {
		configs, err := c.configs(ctx, d)
		if err != nil {
			img.Problem, img.Unreadable = fmt.Sprintf("the runtime reports image ID %s; the content of %s not read: %v", img.ConfigID, img.Ref, err), true
			return
		}
		if !slices.Contains(configs, img.ConfigID) {
			img.Problem = fmt.Sprintf("the runtime reports image ID %s, not the content of %s (config %s): what runs is not what the kubelet was told to run",
				img.ConfigID, img.Ref, strings.Join(configs, ", "))
			return
		}
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
	unread := false // a signature layer's payload could not be read
	for _, l := range m.Layers {
		sig, err := base64.StdEncoding.DecodeString(l.Annotations[signatureAnnotation])
		if err != nil || len(sig) == 0 {
			continue
		}
		layer, err := sigs.LayerByDigest(l.Digest)
		if err != nil {
			why, unread = append(why, err.Error()), true
			continue
		}
		rc, err := layer.Compressed() // simple-signing payloads are stored as they are
		if err != nil {
			why, unread = append(why, err.Error()), true
			continue
		}
		body, err := io.ReadAll(io.LimitReader(rc, 1<<20))
		rc.Close()
		if err != nil {
			why, unread = append(why, err.Error()), true
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
	if unread {
		// The unread payload may be the valid signature: an error is not
		// evidence either way (EVIDENCE rule 5).
		img.Problem, img.Unreadable = "signatures not read: "+strings.Join(slices.Compact(why), "; "), true
		return
	}
	img.Problem = "not signed with the key: " + strings.Join(slices.Compact(why), "; ")
}

// configs are the config digests (image IDs) of d's content in the
// registry: its image's, or each image's of its index. Read by digest, so
// the registry cannot answer with other content.
func (c *imageCheck) configs(ctx context.Context, d name.Digest) ([]string, error) {
	desc, err := remote.Get(d, c.remoteOpts(ctx)...)
	if err != nil {
		return nil, err
	}
	if !desc.MediaType.IsIndex() {
		img, err := desc.Image()
		if err != nil {
			return nil, err
		}
		cfg, err := img.ConfigName()
		if err != nil {
			return nil, err
		}
		return []string{cfg.String()}, nil
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range im.Manifests {
		if !m.MediaType.IsImage() {
			continue
		}
		img, err := idx.Image(m.Digest)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.Digest, err)
		}
		cfg, err := img.ConfigName()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.Digest, err)
		}
		out = append(out, cfg.String())
	}
	return out, nil
}

// Verify implements engine.Scenario.
func (c *imageCheck) Verify(context.Context) (engine.Verification, error) {
	v := Judge(c.images, c.namespaces, c.selector.String())
	if n := len(c.notStarted); n > 0 {
		shown := c.notStarted
		if n > 10 {
			shown = append(shown[:10:10], fmt.Sprintf("and %d more", n-10))
		}
		v.Findings = append(v.Findings, fmt.Sprintf("%d containers in scope not started, not checked (no image ID; a tag is not evidence of what will run): %s", n, strings.Join(shown, "; ")))
	}
	return v, nil
}

// Judge names every image not signed with the key, and the share signed;
// no image running in scope is INCONCLUSIVE (nothing was checked).
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
	switch {
	case len(images) == 0:
		v.Inconclusive = fmt.Sprintf("no container image running in scope in the %d namespaces %s matches: nothing was checked", namespaces, selector)
	case len(v.Failures) == 0 && len(unreadable) > 0:
		v.Inconclusive = fmt.Sprintf("%d images could not be verified (registry unreadable, or the runtime named no image)", len(unreadable))
	}
	return v
}
