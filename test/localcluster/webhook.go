package localcluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// PodDecision decides one pod's admission: allowed, or denied with a message.
type PodDecision func(pod *corev1.Pod) (allowed bool, message string)

// Webhook is a validating admission webhook for pods, served by the test
// process over TLS on loopback and registered with the real API server, so a
// decision comes through the real admission chain.
type Webhook struct {
	Name   string
	server *httptest.Server
	c      *Cluster
	// available, when set, is asked before each review; false answers 503,
	// as a webhook whose pods are down, and the API server applies the
	// failure policy.
	available atomic.Pointer[func() bool]
}

// SetAvailable sets the function that says whether the webhook answers.
func (w *Webhook) SetAvailable(f func() bool) { w.available.Store(&f) }

// ServeWebhook registers a ValidatingWebhookConfiguration named name for pod
// CREATE in namespaces labelled selector, calling decide. failurePolicy is
// what the API server does when the webhook cannot be called.
func (c *Cluster) ServeWebhook(ctx context.Context, name string, selector map[string]string, failurePolicy admissionregistrationv1.FailurePolicyType, decide PodDecision) (*Webhook, error) {
	caPEM, cert, err := selfSignedLoopbackCert()
	if err != nil {
		return nil, err
	}
	wh := &Webhook{Name: name, c: c}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f := wh.available.Load(); f != nil && !(*f)() {
			http.Error(w, "webhook unavailable", http.StatusServiceUnavailable)
			return
		}
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
			http.Error(w, "bad review", http.StatusBadRequest)
			return
		}
		var pod corev1.Pod
		resp := &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
		if err := json.Unmarshal(review.Request.Object.Raw, &pod); err == nil {
			if ok, msg := decide(&pod); !ok {
				resp.Allowed, resp.Result = false, &metav1.Status{Code: http.StatusForbidden, Message: msg}
			}
		}
		review.Response, review.Request = resp, nil
		_ = json.NewEncoder(w).Encode(review)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	url := srv.URL + "/validate"
	cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    name + ".drillbot.test",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caPEM},
			Rules:                   []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create}, Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}}}},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: selector},
			FailurePolicy:           &failurePolicy,
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          ptr.To[int32](5),
		}},
	}
	if _, err := c.Kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, cfg, metav1.CreateOptions{}); err != nil {
		srv.Close()
		return nil, fmt.Errorf("register webhook %s: %w", name, err)
	}
	wh.server = srv
	return wh, nil
}

// Close unregisters the webhook and stops serving it.
func (w *Webhook) Close() {
	_ = w.c.Kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(context.Background(), w.Name, metav1.DeleteOptions{})
	w.server.Close()
}

func selfSignedLoopbackCert() ([]byte, tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "drillbot-test-webhook"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	return certPEM, cert, err
}

// StopServing stops answering while the registration stays, so the API
// server's calls fail (as when the webhook's pods are down).
func (w *Webhook) StopServing() { w.server.Close() }
