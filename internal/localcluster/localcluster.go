// Package localcluster starts a real Kubernetes control plane on loopback,
// without Docker: etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, kwok (fake nodes, so pods become Running and Ready), an S3
// store (versitygw) and a Velero server with velero-plugin-for-aws. The
// binaries are built from the Go module proxy by the Makefile; their paths
// come from DRILLBOT_* environment variables (see Bins).
//
// Integration tests start one cluster per package in TestMain; make
// cluster-up starts one that outlives the command.
package localcluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
)

// Bins are the paths of the component binaries.
type Bins struct {
	Etcd, APIServer, ControllerManager, Scheduler, Kwok, VersityGW, Velero, VeleroPluginDir string
}

// BinsFromEnv reads the binaries' paths from the environment the Makefile
// exports. It fails naming every variable that is unset or points nowhere.
func BinsFromEnv() (Bins, error) {
	var b Bins
	vars := []struct {
		name string
		dst  *string
	}{
		{"DRILLBOT_ETCD", &b.Etcd}, {"DRILLBOT_KUBE_APISERVER", &b.APIServer},
		{"DRILLBOT_KUBE_CONTROLLER_MANAGER", &b.ControllerManager}, {"DRILLBOT_KUBE_SCHEDULER", &b.Scheduler},
		{"DRILLBOT_KWOK", &b.Kwok}, {"DRILLBOT_VERSITYGW", &b.VersityGW},
		{"DRILLBOT_VELERO", &b.Velero}, {"DRILLBOT_VELERO_PLUGIN_DIR", &b.VeleroPluginDir},
	}
	var missing []string
	for _, v := range vars {
		*v.dst = os.Getenv(v.name)
		if *v.dst == "" {
			missing = append(missing, v.name+" (unset)")
		} else if _, err := os.Stat(*v.dst); err != nil {
			missing = append(missing, v.name+"="+*v.dst+" (not found)")
		}
	}
	if len(missing) > 0 {
		return b, fmt.Errorf("local cluster binaries missing: %s; build them with 'make cluster-bins'", strings.Join(missing, ", "))
	}
	return b, nil
}

// Config configures a local cluster.
type Config struct {
	Bins Bins
	// Dir holds data, certificates, logs and the kubeconfig.
	Dir    string
	Logger *slog.Logger
	// Detach lets the processes outlive this one (make cluster-up). Otherwise
	// they are killed when the process that started them dies.
	Detach bool
	// Nodes is the number of kwok nodes (default 1).
	Nodes int
}

// Cluster is a running local cluster.
type Cluster struct {
	cfg        Config
	Kubeconfig string
	REST       *rest.Config
	Kube       kubernetes.Interface
	Dynamic    dynamic.Interface
	// VeleroNamespace is where Velero runs; its BackupStorageLocation
	// "default" is Available once Start returns.
	VeleroNamespace string
	procs           []*proc
	log             *slog.Logger
}

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

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

const (
	observedToken   = "drillbot-observed-token"
	adminToken      = "drillbot-admin-token"
	s3Access        = "drillbot"
	s3Secret        = "drillbot-secret-key"
	veleroNamespace = "velero"
	bucket          = "velero"
)

// Start starts every component and returns once the API server is ready,
// a kwok node is Ready and Velero's storage location is Available. On error
// whatever was started is stopped.
func Start(ctx context.Context, cfg Config) (c *Cluster, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Nodes == 0 {
		cfg.Nodes = 1
	}
	for _, d := range []string{"etcd", "certs", "logs", "s3/" + bucket, "kwok"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	c = &Cluster{cfg: cfg, VeleroNamespace: veleroNamespace, log: cfg.Logger}
	defer func() {
		if err != nil {
			c.Stop()
			err = fmt.Errorf("%w (logs in %s)", err, filepath.Join(cfg.Dir, "logs"))
		}
	}()
	ports, err := freePorts(5)
	if err != nil {
		return c, err
	}
	etcdPort, peerPort, apiPort, s3Port, veleroMetrics := ports[0], ports[1], ports[2], ports[3], ports[4]
	if err := c.writeSecrets(); err != nil {
		return c, err
	}

	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPort)
	if err := c.start("etcd", cfg.Bins.Etcd, nil,
		"--data-dir", c.path("etcd"), "--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peerPort),
		"--initial-advertise-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peerPort),
		"--initial-cluster", fmt.Sprintf("default=http://127.0.0.1:%d", peerPort),
		"--unsafe-no-fsync", "--log-level", "warn"); err != nil {
		return c, err
	}
	if err := c.waitHTTP(ctx, "etcd", etcdURL+"/health", 60*time.Second); err != nil {
		return c, err
	}

	if err := c.start("kube-apiserver", cfg.Bins.APIServer, nil,
		"--etcd-servers", etcdURL, "--bind-address", "127.0.0.1", "--advertise-address", advertiseAddress,
		"--secure-port", fmt.Sprint(apiPort), "--cert-dir", c.path("certs"),
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", c.path("sa.pub"), "--service-account-signing-key-file", c.path("sa.key"),
		"--token-auth-file", c.path("tokens.csv"), "--authorization-mode", "RBAC",
		"--service-cluster-ip-range", "10.96.0.0/16", "--allow-privileged=true",
		"--enable-priority-and-fairness=false",
		"--audit-policy-file", c.path("audit-policy.yaml"), "--audit-log-path", c.AuditLog(),
		"--audit-log-maxsize", "200"); err != nil {
		return c, err
	}
	host := fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	if err := c.waitHTTP(ctx, "kube-apiserver", host+"/readyz", 120*time.Second); err != nil {
		return c, err
	}
	if err := c.writeKubeconfig(host); err != nil {
		return c, err
	}
	if err := c.start("kube-controller-manager", cfg.Bins.ControllerManager, nil,
		"--kubeconfig", c.Kubeconfig, "--leader-elect=false", "--secure-port=0",
		"--service-account-private-key-file", c.path("sa.key"), "--controllers=*",
		"--use-service-account-credentials=false", "--root-ca-file", c.path("certs", "apiserver.crt"),
		"--concurrent-namespace-syncs=5"); err != nil {
		return c, err
	}
	if err := c.start("kube-scheduler", cfg.Bins.Scheduler, nil,
		"--kubeconfig", c.Kubeconfig, "--leader-elect=false", "--secure-port=0"); err != nil {
		return c, err
	}
	if err := c.createNodes(ctx); err != nil {
		return c, err
	}
	if err := c.start("kwok", cfg.Bins.Kwok, nil,
		"--kubeconfig", c.Kubeconfig, "--manage-all-nodes=true", "--node-ip=127.0.0.1",
		// Node leases keep the node healthy: kwok's status heartbeat alone
		// (about a minute) is slower than the controller-manager's grace
		// period, which would mark every pod NotReady.
		"--node-lease-duration-seconds=40",
		"--config", c.path("kwok", "kwok.yaml")); err != nil {
		return c, err
	}
	if err := c.waitNodesReady(ctx); err != nil {
		return c, err
	}

	if err := c.start("versitygw", cfg.Bins.VersityGW, nil,
		"--access", s3Access, "--secret", s3Secret, "--port", fmt.Sprintf("127.0.0.1:%d", s3Port),
		"posix", c.path("s3")); err != nil {
		return c, err
	}
	if err := c.waitTCP(ctx, "versitygw", fmt.Sprintf("127.0.0.1:%d", s3Port), 30*time.Second); err != nil {
		return c, err
	}
	if err := c.installVelero(ctx, fmt.Sprintf("http://127.0.0.1:%d", s3Port)); err != nil {
		return c, err
	}
	env := []string{"AWS_SHARED_CREDENTIALS_FILE=" + c.path("s3-credentials")}
	if err := c.start("velero", cfg.Bins.Velero, env,
		"server", "--kubeconfig", c.Kubeconfig, "--namespace", veleroNamespace,
		"--plugin-dir", cfg.Bins.VeleroPluginDir, "--metrics-address", fmt.Sprintf("127.0.0.1:%d", veleroMetrics),
		"--profiler-address", "", "--store-validation-frequency", "10s",
		"--log-level", "info"); err != nil {
		return c, err
	}
	if err := c.waitBSLAvailable(ctx); err != nil {
		return c, err
	}
	c.log.Info("local cluster ready", "kubeconfig", c.Kubeconfig, "dir", cfg.Dir)
	return c, nil
}

func (c *Cluster) path(parts ...string) string {
	return filepath.Join(append([]string{c.cfg.Dir}, parts...)...)
}

func freePorts(n int) ([]int, error) {
	var (
		ports []int
		lns   []net.Listener
	)
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
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
	files := map[string][]byte{
		"sa.key":            pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
		"sa.pub":            pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}),
		"tokens.csv":        []byte(adminToken + ",admin,admin,system:masters\n" + observedToken + "," + ObservedUser + "," + ObservedUser + ",system:masters\n"),
		"audit-policy.yaml": []byte(auditPolicy),
		"s3-credentials":    []byte(fmt.Sprintf("[default]\naws_access_key_id=%s\naws_secret_access_key=%s\n", s3Access, s3Secret)),
		// kwok's default stages make nodes and pods Ready at once.
		"kwok/kwok.yaml": []byte("apiVersion: config.kwok.x-k8s.io/v1alpha1\nkind: KwokConfiguration\noptions:\n  enableCRDs: []\n"),
	}
	for name, data := range files {
		if err := os.WriteFile(c.path(name), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) start(name, bin string, env []string, args ...string) error {
	logf, err := os.OpenFile(c.path("logs", name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if !c.cfg.Detach {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	c.procs = append(c.procs, p)
	c.log.Info("started", "component", name, "pid", cmd.Process.Pid)
	if c.cfg.Detach {
		return os.WriteFile(c.path(name+".pid"), []byte(fmt.Sprint(cmd.Process.Pid)), 0o644)
	}
	return nil
}

// exited reports a component that died, so waits fail fast with its name.
func (c *Cluster) exited() error {
	for _, p := range c.procs {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited: %v (see %s)", p.name, p.err, c.path("logs", p.name+".log"))
		default:
		}
	}
	return nil
}

func (c *Cluster) poll(ctx context.Context, what string, timeout time.Duration, cond func(context.Context) (bool, error)) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if err := c.exited(); err != nil {
			return false, err
		}
		ok, err := cond(ctx)
		if err != nil {
			last = err
			return false, nil
		}
		return ok, nil
	})
	if err != nil {
		if last != nil {
			err = fmt.Errorf("%w (last: %v)", err, last)
		}
		return fmt.Errorf("waiting for %s: %w", what, err)
	}
	return nil
}

func (c *Cluster) waitHTTP(ctx context.Context, what, url string, timeout time.Duration) error {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback test cluster with a self-signed cert
	}}
	return c.poll(ctx, what, timeout, func(ctx context.Context) (bool, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := client.Do(req)
		if err != nil {
			return false, err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(body))
		}
		return true, nil
	})
}

func (c *Cluster) waitTCP(ctx context.Context, what, addr string, timeout time.Duration) error {
	return c.poll(ctx, what, timeout, func(ctx context.Context) (bool, error) {
		conn, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return false, err
		}
		conn.Close()
		return true, nil
	})
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

func (c *Cluster) createNodes(ctx context.Context) error {
	res := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods: resource.MustParse("250"),
	}
	for i := range c.cfg.Nodes {
		name := fmt.Sprintf("kwok-node-%d", i)
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name,
				Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
				Labels:      map[string]string{"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "type": "kwok"},
			},
			Status: corev1.NodeStatus{Allocatable: res, Capacity: res},
		}
		if _, err := c.Kube.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create node %s: %w", name, err)
		}
	}
	return nil
}

func (c *Cluster) waitNodesReady(ctx context.Context) error {
	return c.poll(ctx, "kwok nodes Ready", 60*time.Second, func(ctx context.Context) (bool, error) {
		nodes, err := c.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		ready := 0
		for _, n := range nodes.Items {
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		return ready >= c.cfg.Nodes, nil
	})
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// installVelero installs Velero's CRDs (from the velero binary itself), its
// namespace, credentials, the default BackupStorageLocation on the S3 store,
// and the Deployment named velero that its restore item actions look up.
func (c *Cluster) installVelero(ctx context.Context, s3URL string) error {
	out, err := exec.CommandContext(ctx, c.cfg.Bins.Velero, "install", "--crds-only", "--dry-run", "-o", "json").Output()
	if err != nil {
		return fmt.Errorf("velero install --crds-only: %w", err)
	}
	var crds []unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	for {
		var u unstructured.Unstructured
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return fmt.Errorf("decode velero CRDs: %w", err)
		}
		if u.GetKind() == "List" {
			items, _, _ := unstructured.NestedSlice(u.Object, "items")
			for _, it := range items {
				if m, ok := it.(map[string]any); ok {
					crds = append(crds, unstructured.Unstructured{Object: m})
				}
			}
		} else if len(u.Object) > 0 {
			crds = append(crds, u)
		}
	}
	for i := range crds {
		if _, err := c.Dynamic.Resource(crdGVR).Create(ctx, &crds[i], metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create CRD %s: %w", crds[i].GetName(), err)
		}
	}
	if err := c.poll(ctx, "velero CRDs established", 60*time.Second, func(ctx context.Context) (bool, error) {
		_, err := c.Dynamic.Resource(velerov1.SchemeGroupVersion.WithResource("backupstoragelocations")).Namespace(veleroNamespace).List(ctx, metav1.ListOptions{})
		return err == nil, err
	}); err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: veleroNamespace}}
	if _, err := c.Kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	creds, _ := os.ReadFile(c.path("s3-credentials"))
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "cloud-credentials", Namespace: veleroNamespace}, Data: map[string][]byte{"cloud": creds}}
	if _, err := c.Kube.CoreV1().Secrets(veleroNamespace).Create(ctx, secret, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	bsl := &velerov1.BackupStorageLocation{
		TypeMeta:   metav1.TypeMeta{APIVersion: velerov1.SchemeGroupVersion.String(), Kind: "BackupStorageLocation"},
		ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: veleroNamespace},
		Spec: velerov1.BackupStorageLocationSpec{
			Provider: "aws", Default: true,
			StorageType: velerov1.StorageType{ObjectStorage: &velerov1.ObjectStorageLocation{Bucket: bucket}},
			Config:      map[string]string{"region": "us-east-1", "s3ForcePathStyle": "true", "s3Url": s3URL},
		},
	}
	if err := c.createTyped(ctx, velerov1.SchemeGroupVersion.WithResource("backupstoragelocations"), veleroNamespace, bsl); err != nil {
		return err
	}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "velero", Namespace: veleroNamespace, Labels: map[string]string{"component": "velero"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"component": "velero"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"component": "velero"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "velero", Image: "velero/velero:v1.18.3"}},
					Tolerations: []corev1.Toleration{{Key: "kwok.x-k8s.io/node", Operator: corev1.TolerationOpExists}}},
			},
		},
	}
	if _, err := c.Kube.AppsV1().Deployments(veleroNamespace).Create(ctx, dep, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

func (c *Cluster) createTyped(ctx context.Context, gvr schema.GroupVersionResource, ns string, obj any) error {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return err
	}
	u := &unstructured.Unstructured{Object: m}
	if _, err := c.Dynamic.Resource(gvr).Namespace(ns).Create(ctx, u, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create %s %s: %w", gvr.Resource, u.GetName(), err)
	}
	return nil
}

func (c *Cluster) waitBSLAvailable(ctx context.Context) error {
	gvr := velerov1.SchemeGroupVersion.WithResource("backupstoragelocations")
	return c.poll(ctx, "velero BackupStorageLocation Available", 3*time.Minute, func(ctx context.Context) (bool, error) {
		u, err := c.Dynamic.Resource(gvr).Namespace(veleroNamespace).Get(ctx, "default", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
		if phase != string(velerov1.BackupStorageLocationPhaseAvailable) {
			msg, _, _ := unstructured.NestedString(u.Object, "status", "message")
			return false, fmt.Errorf("phase %q %s", phase, msg)
		}
		return true, nil
	})
}

// Stop stops every component, newest first: SIGTERM, then SIGKILL after a
// grace period.
func (c *Cluster) Stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
		_ = os.Remove(c.path(p.name + ".pid"))
	}
	c.procs = nil
}

// StopDetached stops a cluster started with Detach from its pid files.
func StopDetached(dir string) error {
	order := []string{"drillbot-serve", "velero", "versitygw", "kwok", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"}
	var errs []error
	for _, name := range order {
		f := filepath.Join(dir, name+".pid")
		data, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var pid int
		if _, err := fmt.Sscan(string(data), &pid); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f, err))
			continue
		}
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		deadline := time.Now().Add(10 * time.Second)
		for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = os.Remove(f)
	}
	return errors.Join(errs...)
}

// RandomSuffix returns a short random hex string for test object names.
func RandomSuffix() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// JSON pretty-prints v, for test failure messages.
func JSON(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}
