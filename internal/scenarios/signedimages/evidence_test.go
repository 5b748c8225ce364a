package signedimages

// signed-images once passed while an unsigned image ran. The
// cases are written as the adversary would: what runs is unsigned (or
// unknown) while the pod's spec, or its tag in the registry today, looks
// signed.

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
)

// podBuilder builds a test pod container by container.
type podBuilder struct{ p *corev1.Pod }

func newPod(ns, podName string) *podBuilder {
	return &podBuilder{&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: podName, Namespace: ns}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}}
}

func running(ctr, imageID string) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: ctr, ImageID: imageID, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
}

// app adds a regular container; status, when set, is its status.
func (b *podBuilder) app(ctr, image string, status *corev1.ContainerStatus) *podBuilder {
	b.p.Spec.Containers = append(b.p.Spec.Containers, corev1.Container{Name: ctr, Image: image})
	if status != nil {
		b.p.Status.ContainerStatuses = append(b.p.Status.ContainerStatuses, *status)
	}
	return b
}

func (b *podBuilder) init(ctr, image string, status *corev1.ContainerStatus) *podBuilder {
	b.p.Spec.InitContainers = append(b.p.Spec.InitContainers, corev1.Container{Name: ctr, Image: image})
	if status != nil {
		b.p.Status.InitContainerStatuses = append(b.p.Status.InitContainerStatuses, *status)
	}
	return b
}

// ephemeral adds a container as kubectl debug does.
func (b *podBuilder) ephemeral(ctr, image string, status *corev1.ContainerStatus) *podBuilder {
	b.p.Spec.EphemeralContainers = append(b.p.Spec.EphemeralContainers, corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: ctr, Image: image}})
	if status != nil {
		b.p.Status.EphemeralContainerStatuses = append(b.p.Status.EphemeralContainerStatuses, *status)
	}
	return b
}

func ptr[T any](v T) *T { return &v }

// pushed is an image in the test registry: its digest reference and its
// config's digest (the image ID a runtime reports for it when it has no
// registry digest).
type pushed struct {
	ref    name.Digest
	config string
}

func pushImage(t *testing.T, host, repo string) pushed {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag(host+"/"+repo+":v1", name.Insecure)
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	cfg, _ := img.ConfigName()
	ref, _ := name.NewDigest(host+"/"+repo+"@"+d.String(), name.Insecure)
	return pushed{ref: ref, config: cfg.String()}
}

// localImageID is an image ID of an image loaded onto the node, in no
// registry.
const localImageID = "sha256:4b9a0c8e1d2f3a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d"

func TestWhatRuns(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	k, pub := key(t)
	signed, unsigned := pushImage(t, host, "app/signed"), pushImage(t, host, "app/unsigned")
	sign(t, k, signed.ref, signed.ref)
	tagged := host + "/app/signed:v1" // the tag resolves, today, to the signed image
	ok := running("app", signed.ref.String())

	cases := []struct {
		name string
		pods []runtime.Object
		// failures each appear in the verdict's failures; none: no failures.
		failures []string
		// inconclusive is in the reason; "": not inconclusive.
		inconclusive string
		// findings each appear in the findings.
		findings []string
	}{
		{name: "kubectl debug runs an unsigned image in an ephemeral container",
			pods: []runtime.Object{newPod("shop", "web").app("app", tagged, &ok).
				ephemeral("debugger", unsigned.ref.String(), ptr(running("debugger", unsigned.ref.String()))).p},
			failures: []string{unsigned.ref.String() + " (shop/web): no cosign signature"},
			findings: []string{"signed images: 1 of 2"}},
		{name: "an ephemeral container by tag, the tag signed today, runs an image loaded onto the node",
			pods: []runtime.Object{newPod("shop", "web").app("app", tagged, &ok).
				ephemeral("debugger", tagged, ptr(running("debugger", localImageID))).p},
			failures: []string{tagged, `ephemeral container "debugger"`, "shop/web", localImageID, "no registry digest"}},
		{name: "containerd reports the config ID of an image loaded onto the node; the tag is signed today",
			pods:     []runtime.Object{newPod("shop", "web").app("app", tagged, ptr(running("app", localImageID))).p},
			failures: []string{tagged, `container "app"`, "shop/web", localImageID, "no registry digest"},
			findings: []string{"signed images: 0 of 1"}},
		{name: "docker reports an image ID without a repo digest; the tag is signed today",
			pods:     []runtime.Object{newPod("shop", "web").app("app", tagged, ptr(running("app", "docker://"+localImageID))).p},
			failures: []string{tagged, "shop/web", "docker://" + localImageID, "no registry digest"}},
		{name: "an init container ran an image loaded onto the node",
			pods: []runtime.Object{newPod("shop", "web").app("app", tagged, &ok).
				init("setup", tagged, &corev1.ContainerStatus{Name: "setup", ImageID: localImageID, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}}).p},
			failures: []string{`init container "setup"`, localImageID, "no registry digest"}},
		{name: "a digest-pinned spec, the runtime reports another image's config ID",
			pods:     []runtime.Object{newPod("shop", "web").app("app", signed.ref.String(), ptr(running("app", unsigned.config))).p},
			failures: []string{signed.ref.String(), "shop/web", unsigned.config, "not the content of"}},
		{name: "a digest-pinned spec, the runtime reports a config ID of no image in the registry",
			pods:     []runtime.Object{newPod("shop", "web").app("app", signed.ref.String(), ptr(running("app", localImageID))).p},
			failures: []string{localImageID, "not the content of"}},
		{name: "a running container with no image ID, by tag: what runs is unknown",
			pods:         []runtime.Object{newPod("shop", "web").app("app", tagged, ptr(running("app", ""))).p},
			inconclusive: "could not be verified"},
		{name: "a container by tag that has not started runs nothing: not checked, and nothing else ran",
			pods:         []runtime.Object{newPod("shop", "web").app("app", tagged, nil).p},
			inconclusive: "no container image running",
			findings:     []string{`shop/web container "app" (` + tagged + `)`, "not started"}},
		{name: "no pods: nothing checked is not a PASS", inconclusive: "no container image running"},

		// Not better than the truth, and not worse either (rule 8).
		{name: "a digest-pinned spec, the runtime reports that digest's config ID",
			pods:     []runtime.Object{newPod("shop", "web").app("app", signed.ref.String(), ptr(running("app", signed.config))).p},
			findings: []string{"signed images: 1 of 1"}},
		{name: "a tag, the runtime reports the signed digest from a docker-pullable ID",
			pods:     []runtime.Object{newPod("shop", "web").app("app", tagged, ptr(running("app", "docker-pullable://"+signed.ref.String()))).p},
			findings: []string{"signed images: 1 of 1"}},
		{name: "a container by tag not started yet beside a signed one that runs",
			pods:     []runtime.Object{newPod("shop", "web").app("app", tagged, &ok).app("sidecar", host+"/app/unsigned:v1", nil).p},
			findings: []string{"signed images: 1 of 1", `shop/web container "sidecar"`}},
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"env": "production"}}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := runCheck(t, fake.NewClientset(append([]runtime.Object{ns}, tc.pods...)...), host, pub, nil)
			fails, finds := strings.Join(v.Failures, "\n"), strings.Join(v.Findings, "\n")
			if len(tc.failures) == 0 && fails != "" {
				t.Errorf("failures %q", fails)
			}
			for _, w := range tc.failures {
				if !strings.Contains(fails, w) {
					t.Errorf("failures %q, want %q", fails, w)
				}
			}
			switch {
			case tc.inconclusive == "" && v.Inconclusive != "":
				t.Errorf("inconclusive: %s", v.Inconclusive)
			case !strings.Contains(v.Inconclusive, tc.inconclusive):
				t.Errorf("inconclusive %q, want %q", v.Inconclusive, tc.inconclusive)
			}
			if len(tc.failures) == 0 && tc.inconclusive == "" && v.Posture.Total == 0 {
				t.Errorf("a PASS with no image checked (findings %q)", finds)
			}
			for _, w := range tc.findings {
				if !strings.Contains(finds, w) {
					t.Errorf("findings %q, want %q", finds, w)
				}
			}
		})
	}
}

// runCheck runs the check on kube's pods with images as its scope.
func runCheck(t *testing.T, kube *fake.Clientset, host, pub string, images []string) engine.Verification {
	t.Helper()
	params := `{"namespaces":{"matchLabels":{"env":"production"}},"insecureRegistries":["` + host + `"],"publicKey":` + quote(pub)
	for i, g := range images {
		if i == 0 {
			params += `,"images":[`
		} else {
			params += ","
		}
		params += quote(g)
		if i == len(images)-1 {
			params += "]"
		}
	}
	def := drill.Definition{Name: "signed", Spec: v1alpha1.DrillSpec{Scenario: Name, Objectives: v1alpha1.Objectives{RTO: "1m"}, Params: []byte(params + "}")}}
	if errs := (Kind{}).ValidateParams(def.Spec, nil); len(errs) > 0 {
		t.Fatal(errs)
	}
	sc, err := Kind{Deps: Deps{Kube: kube}}.New(def, "run-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Recover(context.Background(), marks{}); err != nil {
		t.Fatal(err)
	}
	v, err := sc.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestScopeNormalised(t *testing.T) {
	for _, tc := range []struct {
		glob, image string
		want        bool
	}{
		// A glob written for the canonical name matches the short name, and
		// the other way round.
		{"docker.io/library/nginx:*", "nginx:1.25", true},
		{"index.docker.io/library/nginx:*", "nginx:1.25", true},
		{"docker.io/nginx:*", "nginx:1.25", true},
		{"nginx:*", "docker.io/library/nginx:1.25", true},
		{"nginx:*", "index.docker.io/library/nginx@sha256:4b9a0c8e1d2f3a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d", false}, // a digest is not a tag
		{"nginx@*", "index.docker.io/library/nginx@sha256:4b9a0c8e1d2f3a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d", true},
		{"docker.io/*", "nginx:1.25", true},
		{"docker.io/*", "team/app:v1", true},
		{"team/*", "docker.io/team/app:v1", true},
		{"docker.io/team/app:v1", "team/app:v1", true},
		{"nginx", "docker.io/library/nginx", true},
		{"registry.example/team/*", "registry.example/team/app:v1", true},
		{"*", "anything/at:all", true},
		// Normalisation does not widen a match.
		{"nginx:*", "registry.example/nginx:1.25", false},
		{"nginx:*", "docker.io/someone/nginx:1.25", false},
		{"nginx:*", "nginx-evil.example/nginx:1.25", false},
		{"docker.io/library/nginx:*", "registry.example/library/nginx:1.25", false},
		{"docker.io/library/nginx:*", "docker.io.evil.example/library/nginx:1.25", false},
		{"docker.io/*", "registry.example/app:v1", false},
		{"docker.io/*", "registry.example/docker.io/app:v1", false},
		{"team/*", "registry.example/team/app:v1", false},
		{"localhost/*", "docker.io/localhost/app:v1", false},
		{"registry.example/*", "evil.example/registry.example/app", false},
		{"nginx", "docker.io/library/nginx:1.25", false}, // the tag is matched as written, as before
		{"registry.example/app", "registry.example/app:v1", false},
		// A wildcard in the registry's place is matched as written.
		{"*.example/team/*", "registry.example/team/app:v1", true},
		{"ngin*", "nginx:1.25", true},
	} {
		if got := imageMatches(tc.glob, tc.image); got != tc.want {
			t.Errorf("imageMatches(%q, %q) = %v", tc.glob, tc.image, got)
		}
	}
}
