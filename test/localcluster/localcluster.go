// Package localcluster starts a real Kubernetes control plane on loopback,
// without Docker: etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, kwok (fake nodes, so pods become Running and Ready), an S3
// store (versitygw) and a Velero server with velero-plugin-for-aws. The
// binaries are built from the Go module proxy by the Makefile; their paths
// come from DRILLBOT_* environment variables (see Bins).
//
// One file per component, as kwok's binary runtime is laid out: etcd.go,
// apiserver.go, controllermanager.go, scheduler.go, kwok.go, s3.go,
// velero.go; process.go starts, watches and waits for them.
//
// Integration tests start one cluster per package in TestMain; make
// cluster-up starts one that outlives the command.
package localcluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/drillbot-io/drillbot/internal/kube"
)

// Bins are the paths of the component binaries.
type Bins struct {
	Etcd, APIServer, ControllerManager, Scheduler, Kwok, VersityGW, Velero, VeleroPluginDir string
	// The real node's: the kubelet, kube-proxy and the directory of the
	// image tarballs hack/image writes (pause, sampleapp, drillbot).
	// Optional: checked when a real node is asked for.
	Kubelet, KubeProxy, Images string
	// KubeRouter enforces NetworkPolicy on the real node (kuberouter.go).
	KubeRouter string
	// CalicoCNI and CalicoManifest are Calico's CNI plugin and its
	// policy-only manifest, for a real node under Calico (calico.go; the
	// calico-node image is in Images). Optional: checked when asked for.
	CalicoCNI, CalicoManifest string
	// Prometheus and Alertmanager are the monitoring StartMonitoring
	// starts (prometheus.go, alertmanager.go). Optional.
	Prometheus, Alertmanager string
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
	b.Kubelet, b.KubeProxy, b.Images = os.Getenv("DRILLBOT_KUBELET"), os.Getenv("DRILLBOT_KUBE_PROXY"), os.Getenv("DRILLBOT_IMAGES")
	b.KubeRouter = os.Getenv("DRILLBOT_KUBE_ROUTER")
	b.CalicoCNI, b.CalicoManifest = os.Getenv("DRILLBOT_CALICO_CNI"), os.Getenv("DRILLBOT_CALICO_MANIFEST")
	b.Prometheus, b.Alertmanager = os.Getenv("DRILLBOT_PROMETHEUS"), os.Getenv("DRILLBOT_ALERTMANAGER")
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
	// Nodes is the number of kwok nodes (default 1; none with a real
	// node unless set).
	Nodes int
	// RealNode adds a real node (kubelet, containerd, kube-proxy: see
	// node.go). It needs root and takes the machine's one real node.
	RealNode bool
	// Calico makes Calico the real node's NetworkPolicy enforcer and CNI
	// (calico-node in CalicoNamespace: calico.go) instead of kube-router
	// on the bridge.
	Calico bool
	// S3URL, when set, is another cluster's S3 store (its S3URL): this one
	// starts none and its Velero reads the same bucket, as a DR cluster
	// reads production's backups.
	S3URL string
	// ReadOnlyBSL makes Velero's storage location ReadOnly: it syncs the
	// backups it finds and writes none.
	ReadOnlyBSL bool
	// NoBackups starts neither the S3 store nor Velero: a control plane
	// and kwok only (a fleet's members in make bench).
	NoBackups bool
	// EncryptSecrets gives the API server an EncryptionConfiguration that
	// encrypts Secrets with aescbc (a random key in the cluster's
	// directory); without it Secrets are stored as they are.
	EncryptSecrets bool
	// NodeAgent runs Velero's node-agent on the real node (RealNode
	// needed), so backups can hold pod volumes' data (file-system backup)
	// and restores bring it back; the S3 store then listens on the node's
	// address, where the node-agent's pods reach it. The node's dynamic
	// provisioner (rancher/local-path-provisioner, StorageClass
	// local-path) runs with it.
	NodeAgent bool
	// CRDs are installed before Velero starts. Velero's server reads the
	// API's discovery at start and refreshes it every 5 minutes (hard-coded
	// in its server): objects of a CRD installed later are silently left
	// out of backups until then.
	CRDs [][]byte
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
	// S3URL is the S3 store Velero's storage location is on.
	S3URL string
	// EtcdURL is etcd's client URL (plain HTTP on loopback).
	EtcdURL string
	procs   []*proc
	log     *slog.Logger
	// node is set once this cluster owns the machine's real node.
	node bool
	// kubeletPort is the real node's kubelet port.
	kubeletPort int
}

// Start starts every component and returns once the API server is ready,
// a kwok node is Ready and Velero's storage location is Available. On error
// whatever was started is stopped.
func Start(ctx context.Context, cfg Config) (c *Cluster, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Dir, err = filepath.Abs(cfg.Dir); err != nil {
		return nil, err
	}
	if cfg.Nodes == 0 && !cfg.RealNode {
		cfg.Nodes = 1
	}
	if cfg.Nodes < 0 {
		cfg.Nodes = 0
	}
	for _, d := range []string{"etcd", "certs", "logs", "s3/" + bucket, "s3-versions", "kwok"} {
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
	if cfg.Calico && !cfg.RealNode {
		return nil, errors.New("local cluster: Calico needs the real node")
	}
	if cfg.NodeAgent && !cfg.RealNode {
		return c, errors.New("velero's node-agent needs a real node (RealNode)")
	}
	if cfg.RealNode {
		if err := c.prepareNodeNetwork(ctx); err != nil {
			return c, err
		}
	}
	etcdURL, err := c.startEtcd(ctx, etcdPort, peerPort)
	c.EtcdURL = etcdURL
	if err != nil {
		return c, err
	}
	if err := c.startAPIServer(ctx, etcdURL, apiPort); err != nil {
		return c, err
	}
	if err := c.startControllerManager(); err != nil {
		return c, err
	}
	if err := c.startScheduler(); err != nil {
		return c, err
	}
	if c.cfg.Nodes > 0 {
		if err := c.startKwok(ctx); err != nil {
			return c, err
		}
	}
	if cfg.RealNode {
		if err := c.startNode(ctx); err != nil {
			return c, err
		}
	}
	for _, crd := range cfg.CRDs {
		if err := kube.EnsureCRD(ctx, c.REST, crd); err != nil {
			return c, err
		}
	}
	if cfg.NoBackups {
		c.log.Info("local cluster ready (no S3 store, no Velero)", "kubeconfig", c.Kubeconfig, "dir", cfg.Dir)
		return c, nil
	}
	s3URL := cfg.S3URL
	if s3URL == "" {
		if s3URL, err = c.startS3(ctx, s3Port); err != nil {
			return c, err
		}
	} else if err := c.writeS3Credentials(); err != nil {
		return c, err
	}
	c.S3URL = s3URL
	if err := c.startVelero(ctx, s3URL, veleroMetrics); err != nil {
		return c, err
	}
	if cfg.NodeAgent {
		if err := c.startNodeAgent(ctx); err != nil {
			return c, err
		}
		if err := c.startLocalPath(ctx); err != nil {
			return c, err
		}
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
	if c.node {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := StopNode(ctx, c.cfg.Dir, c.log); err != nil {
			c.log.Error("the real node left something behind", "err", err)
		}
		c.node = false
	}
}

// Dir is the cluster's directory.
func (c *Cluster) Dir() string { return c.cfg.Dir }

// Host is the address the API server listens on: 127.0.0.1, or NodeIP
// with a real node (pods reach it there). Test servers that pods must
// reach listen on it too.
func (c *Cluster) Host() string {
	if c.cfg.RealNode {
		return NodeIP
	}
	return "127.0.0.1"
}

// StopDetached stops a cluster started with Detach from its pid files.
func StopDetached(dir string) error {
	order := []string{"drillbot-serve", "prometheus", "alertmanager", "velero", "versitygw", "kube-proxy", "kubelet", "containerd", "kwok", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"}
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
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := StopNode(ctx, dir, slog.New(slog.DiscardHandler)); err != nil {
		errs = append(errs, err)
	}
	if left := NodeLeftovers(dir); len(left) > 0 {
		errs = append(errs, fmt.Errorf("left behind: %s", strings.Join(left, "; ")))
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
