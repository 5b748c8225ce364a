package localcluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// ObservedUser is a second cluster-admin whose every request the API server
// writes to its audit log (AuditLog), one line per request, at metadata
// level: a process given ObservedKubeconfig is counted by the API server
// itself. Nobody else's requests are logged.
const ObservedUser = "drillbot-observed"

const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [ResponseStarted, ResponseComplete, Panic]
rules:
- level: Metadata
  users: [` + ObservedUser + `]
- level: None
`

// advertiseAddress is what the API server publishes as the endpoint of
// default/kubernetes. Endpoints may not hold loopback addresses, so it is
// not 127.0.0.1 (where it listens) but a documentation address
// (TEST-NET-1) that nothing dials: clients use the kubeconfig, and no pod
// runs a process.
const advertiseAddress = "192.0.2.1"

// The Service range, and the kubernetes Service's cluster IP in it.
const (
	serviceCIDR  = "10.96.0.0/16"
	apiServiceIP = "10.96.0.1"
)

const (
	observedToken = "drillbot-observed-token"
	adminToken    = "drillbot-admin-token"
)

// startAPIServer starts kube-apiserver on etcdURL, listening at port on
// loopback (or, with a real node, on the node's bridge address, which it
// then advertises, so pods reach it), and writes the kubeconfigs once
// /readyz answers.
func (c *Cluster) startAPIServer(ctx context.Context, etcdURL string, port int) error {
	if err := c.writeSecrets(); err != nil {
		return err
	}
	advertise := advertiseAddress
	if c.cfg.RealNode {
		advertise = NodeIP
	}
	var extra []string
	if c.cfg.EncryptSecrets {
		cfg, err := c.writeEncryptionConfig()
		if err != nil {
			return err
		}
		extra = append(extra, "--encryption-provider-config", cfg)
	}
	if err := c.start("kube-apiserver", c.cfg.Bins.APIServer, nil, append([]string{
		"--etcd-servers", etcdURL, "--bind-address", c.Host(), "--advertise-address", advertise,
		"--secure-port", fmt.Sprint(port), "--cert-dir", c.path("certs"),
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", c.path("sa.pub"), "--service-account-signing-key-file", c.path("sa.key"),
		"--token-auth-file", c.path("tokens.csv"), "--authorization-mode", "RBAC",
		"--service-cluster-ip-range", serviceCIDR, "--allow-privileged=true",
		"--enable-priority-and-fairness=false",
		// The node's name resolves nowhere: logs, exec and port-forward go
		// to the kubelet at the node's InternalIP.
		"--kubelet-preferred-address-types", "InternalIP",
		"--kubelet-client-certificate", c.path(kubeletClientCert), "--kubelet-client-key", c.path(kubeletClientKey),
		"--audit-policy-file", c.path("audit-policy.yaml"), "--audit-log-path", c.AuditLog(),
		"--audit-log-maxsize", "200"}, extra...)...); err != nil {
		return err
	}
	host := fmt.Sprintf("https://%s:%d", c.Host(), port)
	if err := c.waitHTTP(ctx, "kube-apiserver", host+"/readyz", 120*time.Second); err != nil {
		return err
	}
	return c.writeKubeconfig(host)
}

// writeSecrets writes the service-account key pair, the token file and
// the audit policy the API server reads.
// writeEncryptionConfig writes an EncryptionConfiguration encrypting
// Secrets with aescbc under a fresh random key, and returns its path.
func (c *Cluster) writeEncryptionConfig() (string, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	cfg := fmt.Sprintf(`apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - aescbc:
          keys:
            - name: key1
              secret: %s
      - identity: {}
`, base64.StdEncoding.EncodeToString(key))
	path := c.path("encryption-config.yaml")
	return path, os.WriteFile(path, []byte(cfg), 0o600)
}

func (c *Cluster) writeSecrets() error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	clientCert, clientKey, err := selfSignedClientCert(kubeletClientCN, "system:masters")
	if err != nil {
		return err
	}
	files := map[string][]byte{
		kubeletClientCert: clientCert, kubeletClientKey: clientKey,
		"sa.key":            pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
		"sa.pub":            pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}),
		"tokens.csv":        []byte(adminToken + ",admin,admin,system:masters\n" + observedToken + "," + ObservedUser + "," + ObservedUser + ",system:masters\n"),
		"audit-policy.yaml": []byte(auditPolicy),
	}
	for name, data := range files {
		if err := os.WriteFile(c.path(name), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// The API server's client certificate for the kubelet (logs, exec,
// port-forward): self-signed, the kubelet's client CA.
const (
	kubeletClientCert = "kubelet-client.crt"
	kubeletClientKey  = "kubelet-client.key"
	kubeletClientCN   = "kube-apiserver-kubelet-client"
)

// selfSignedClientCert is a client certificate of user cn in group, its
// own CA, as PEM certificate and key.
func selfSignedClientCert(cn, group string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn, Organization: []string{group}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(7 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

// AuditLog is the API server's audit log: the requests of ObservedUser.
func (c *Cluster) AuditLog() string { return c.path("logs", "audit.log") }

// ObservedKubeconfig is a kubeconfig for ObservedUser.
func (c *Cluster) ObservedKubeconfig() string { return c.path("kubeconfig-observed") }

func (c *Cluster) writeKubeconfig(host string) error {
	for file, token := range map[string]string{c.path("kubeconfig"): adminToken, c.ObservedKubeconfig(): observedToken} {
		kc := clientcmdapi.NewConfig()
		kc.Clusters["local"] = &clientcmdapi.Cluster{Server: host, InsecureSkipTLSVerify: true}
		kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: token}
		kc.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "admin"}
		kc.CurrentContext = "local"
		if err := clientcmd.WriteToFile(*kc, file); err != nil {
			return err
		}
	}
	c.Kubeconfig = c.path("kubeconfig")
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 100, 200
	c.REST = cfg
	if c.Kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	c.Dynamic, err = dynamic.NewForConfig(cfg)
	return err
}
