package signedimages

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/payload"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
)

func key(t *testing.T) (*ecdsa.PrivateKey, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := cryptoutils.MarshalPublicKeyToPEM(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return k, string(pem)
}

// push writes a random image to host/repo and returns its digest reference.
func push(t *testing.T, host, repo string) name.Digest {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.NewTag(host+"/"+repo+":v1", name.Insecure)
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	dig, _ := name.NewDigest(host+"/"+repo+"@"+d.String(), name.Insecure)
	return dig
}

// sign stores a cosign simple-signing signature of subject (naming
// claimed) made with k, as cosign sign --new-bundle-format=false does.
func sign(t *testing.T, k *ecdsa.PrivateKey, subject, claimed name.Digest) {
	t.Helper()
	body, err := payload.Cosign{Image: claimed}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := signature.LoadSigner(k, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := signer.SignMessage(strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: static.NewLayer(body, "application/vnd.dev.cosign.simplesigning.v1+json"),
		Annotations: map[string]string{signatureAnnotation: base64.StdEncoding.EncodeToString(sig)}})
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	tag := subject.Context().Tag(strings.Replace(subject.DigestStr(), ":", "-", 1) + ".sig")
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	var _ v1.Image = img
}

func pod(ns, podName, image, imageID string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: podName, Namespace: ns},
		Spec:   corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	if imageID != "" {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", ImageID: imageID}}
	}
	return p
}

func TestSignedImages(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	k, pub := key(t)
	other, _ := key(t)
	signed, unsigned, wrongKey, wrongDigest := push(t, host, "app/signed"), push(t, host, "app/unsigned"), push(t, host, "app/wrong-key"), push(t, host, "app/wrong-digest")
	sign(t, k, signed, signed)
	sign(t, other, wrongKey, wrongKey)
	sign(t, k, wrongDigest, signed) // a valid signature copied from another image
	tagged := host + "/app/signed:v1"
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"env": "production"}}}
	cases := []struct {
		name     string
		pods     []runtime.Object
		failures []string
		share    string
		// inconclusive is in the reason; "": not inconclusive.
		inconclusive string
	}{
		{name: "signed by digest, by tag and by the kubelet's image ID", pods: []runtime.Object{
			pod("shop", "a", signed.String(), ""), pod("shop", "b", tagged, ""), pod("shop", "c", tagged, "docker-pullable://"+signed.String())},
			share: "signed images: 1 of 1 running in 1 namespaces"},
		{name: "unsigned", pods: []runtime.Object{pod("shop", "web", unsigned.String(), "")},
			failures: []string{unsigned.String() + " (shop/web): no cosign signature"}, share: "0 of 1"},
		{name: "another key", pods: []runtime.Object{pod("shop", "web", wrongKey.String(), "")},
			failures: []string{"not signed with the key: signature does not verify with the key"}},
		{name: "a signature for another digest", pods: []runtime.Object{pod("shop", "web", wrongDigest.String(), "")},
			failures: []string{"a valid signature names another digest, " + signed.DigestStr()}},
		{name: "a finished pod is not running", pods: []runtime.Object{func() runtime.Object {
			p := pod("shop", "job", unsigned.String(), "")
			p.Status.Phase = corev1.PodSucceeded
			return p
		}()}, share: "0 of 0", inconclusive: "nothing was checked"}, // EVIDENCE rule 1
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kube := fake.NewClientset(append([]runtime.Object{ns}, tc.pods...)...)
			def := drill.Definition{Name: "signed", Spec: v1alpha1.DrillSpec{Scenario: Name, Objectives: v1alpha1.Objectives{RTO: "1m"},
				Params: []byte(`{"namespaces":{"matchLabels":{"env":"production"}},"insecureRegistries":["` + host + `"],"publicKey":` + quote(pub) + `}`)}}
			sc, err := Kind{Deps: Deps{Kube: kube}}.New(def, "run-1")
			if err != nil {
				t.Fatal(err)
			}
			if err := sc.Recover(context.Background(), marks{}); err != nil {
				t.Fatal(err)
			}
			v, _ := sc.Verify(context.Background())
			fails, finds := strings.Join(v.Failures, "\n"), strings.Join(v.Findings, "\n")
			if len(tc.failures) == 0 && fails != "" {
				t.Errorf("failures %q", fails)
			}
			for _, w := range tc.failures {
				if !strings.Contains(fails, w) {
					t.Errorf("failures %q, want %q", fails, w)
				}
			}
			if (tc.inconclusive == "") != (v.Inconclusive == "") || !strings.Contains(v.Inconclusive, tc.inconclusive) {
				t.Errorf("inconclusive %q, want %q", v.Inconclusive, tc.inconclusive)
			}
			if tc.share != "" && !strings.Contains(finds, tc.share) {
				t.Errorf("findings %q, want %q", finds, tc.share)
			}
			for _, a := range kube.Actions() {
				if a.GetVerb() != "list" {
					t.Errorf("the check did %s %s", a.GetVerb(), a.GetResource().Resource)
				}
			}
		})
	}
}

func quote(s string) string {
	return `"` + strings.ReplaceAll(strings.ReplaceAll(s, "\n", `\n`), `"`, `\"`) + `"`
}

type marks struct{}

func (marks) Mark(string) {}

func TestGlobMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, image string
		want           bool
	}{
		{"registry.example/*", "registry.example/team/app:v1", true},
		{"registry.example/*", "evil.example/registry.example/app", false},
		{"registry.example/app:v?", "registry.example/app:v1", true},
		{"registry.example/app", "registry.example/app:v1", false},
		{"*", "anything/at:all", true},
	} {
		if got := globMatch(tc.pattern, tc.image); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %v", tc.pattern, tc.image, got)
		}
	}
}

// TestSignatureBlobUnreadable: a registry that lists the
// signature but fails to serve its payload (a 503) says nothing of the
// signature (EVIDENCE rule 5): the image is unverified, INCONCLUSIVE, not
// "not signed" (a FAIL worse than the truth, rule 8).
func TestSignatureBlobUnreadable(t *testing.T) {
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	var broken atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if broken.Load() && r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			http.Error(w, "registry overloaded", http.StatusServiceUnavailable)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	k, pub := key(t)
	signed := push(t, host, "app/signed")
	sign(t, k, signed, signed)
	broken.Store(true)
	kube := fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"env": "production"}}},
		pod("shop", "web", signed.String(), ""))
	v := runCheck(t, kube, host, pub, nil)
	if len(v.Failures) != 0 || !strings.Contains(v.Inconclusive, "could not be verified") {
		t.Errorf("failures %q inconclusive %q: want INCONCLUSIVE, the signature's payload unreadable", v.Failures, v.Inconclusive)
	}
}
