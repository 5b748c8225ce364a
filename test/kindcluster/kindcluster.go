// Package kindcluster runs drillbot against a kind cluster, the cluster
// most users bring, through kind's Go library (sigs.k8s.io/kind/pkg/cluster):
// create a cluster, load image archives into its nodes (what `kind load
// image-archive` does), hand out its kubeconfig, delete it.
//
// Two node images are meant: kind's own (kindest/node, on a machine with
// registry access: a laptop, a CI runner), and drillbot's locally built one
// (hack/kindnode: Debian's containerd and runc, the Kubernetes binaries of
// hack/tools/kube, the control plane's images FROM scratch, pre-loaded),
// for machines with no registry. The local image brings its own CNI (a
// bridge conflist) and no CoreDNS image, which Config.Local tells kind.
//
// kind runs the `docker` command it finds on PATH with this process's
// environment: DOCKER_HOST and KIND_EXPERIMENTAL_DOCKER_NETWORK (the
// network kind attaches its nodes to, made beforehand without masquerade
// by Docker.Network) are read from it, so Create sets them, process-wide.
// This is development machinery: nothing under cmd/ or internal/ imports it.
package kindcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"
	kindexec "sigs.k8s.io/kind/pkg/exec"
	kindlog "sigs.k8s.io/kind/pkg/log"
)

// Config is one kind cluster of one control-plane node.
type Config struct {
	// Name is the cluster's name (kind's rule: lower-case letters, digits,
	// '.' and '-').
	Name string
	// NodeImage is the node image's reference; empty is kind's default
	// (pulled from a registry).
	NodeImage string
	// Local: NodeImage is drillbot's own (hack/kindnode): kind installs no
	// CNI (the image's bridge conflist serves) and kubeadm skips CoreDNS
	// (no image of it is built).
	Local bool
	// Kubeconfig is the file the cluster's kubeconfig is written to (never
	// the user's ~/.kube/config).
	Kubeconfig string
	// DockerHost is the daemon kind drives (DOCKER_HOST); empty: the
	// environment's.
	DockerHost string
	// Network is the Docker network the node joins; empty: kind's own
	// "kind" network (which kind makes with masquerade on).
	Network string
	// Retain keeps the node of a failed create, for its logs.
	Retain bool
	Logger *slog.Logger
}

var validName = regexp.MustCompile(`^[a-z0-9.-]+$`)

// Validate says what is wrong with c before anything is created.
func (c Config) Validate() error {
	var errs []error
	if !validName.MatchString(c.Name) {
		errs = append(errs, fmt.Errorf("name %q: want lower-case letters, digits, '.' and '-'", c.Name))
	}
	if c.Kubeconfig == "" {
		errs = append(errs, errors.New("kubeconfig: a file of the cluster's own is required (kind would merge into ~/.kube/config)"))
	}
	if c.Local && c.NodeImage == "" {
		errs = append(errs, errors.New("node image: a local node image needs its reference"))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("logger: required"))
	}
	return errors.Join(errs...)
}

// ClusterConfig is the kind configuration Create passes: one control
// plane, its API server on 127.0.0.1; for the local image no default CNI
// and no CoreDNS.
func ClusterConfig(c Config) *v1alpha4.Cluster {
	cfg := &v1alpha4.Cluster{
		TypeMeta: v1alpha4.TypeMeta{Kind: "Cluster", APIVersion: "kind.x-k8s.io/v1alpha4"},
		Name:     c.Name,
		Nodes:    []v1alpha4.Node{{Role: v1alpha4.ControlPlaneRole, Image: c.NodeImage}},
		Networking: v1alpha4.Networking{
			APIServerAddress: "127.0.0.1",
		},
	}
	if c.Local {
		cfg.Networking.DisableDefaultCNI = true
		// kind's template skips preflight (a list a merge patch replaces
		// whole, so it is named again).
		cfg.KubeadmConfigPatches = []string{"kind: InitConfiguration\nskipPhases:\n- preflight\n- addon/coredns\n"}
	}
	v1alpha4.SetDefaultsCluster(cfg)
	return cfg
}

// Cluster is a kind cluster Create made.
type Cluster struct {
	Name       string
	Kubeconfig string
	REST       *rest.Config
	Kube       kubernetes.Interface
	Dynamic    dynamic.Interface

	provider *cluster.Provider
	log      *slog.Logger
}

// Create makes the cluster and waits until its node is Ready.
func Create(ctx context.Context, c Config) (*Cluster, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("kind cluster: %w", err)
	}
	if err := setEnv(c); err != nil {
		return nil, err
	}
	p := cluster.NewProvider(cluster.ProviderWithLogger(Logger(c.Logger)), runtimeOption(c))
	if err := os.MkdirAll(filepath.Dir(c.Kubeconfig), 0o755); err != nil {
		return nil, err
	}
	opts := []cluster.CreateOption{
		cluster.CreateWithV1Alpha4Config(ClusterConfig(c)),
		cluster.CreateWithKubeconfigPath(c.Kubeconfig),
		cluster.CreateWithRetain(c.Retain),
		cluster.CreateWithDisplayUsage(false),
		cluster.CreateWithDisplaySalutation(false),
	}
	if c.NodeImage != "" {
		opts = append(opts, cluster.CreateWithNodeImage(c.NodeImage))
	}
	c.Logger.Info("kind: creating the cluster", "name", c.Name, "image", c.NodeImage, "network", c.Network)
	// kind's create takes no context: a cancelled ctx is seen once it returns.
	if err := p.Create(c.Name, opts...); err != nil {
		return nil, fmt.Errorf("kind create cluster %s: %w", c.Name, withOutput(err))
	}
	if err := ctx.Err(); err != nil {
		_ = p.Delete(c.Name, c.Kubeconfig)
		return nil, err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kind cluster %s: kubeconfig: %w", c.Name, err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Cluster{Name: c.Name, Kubeconfig: c.Kubeconfig, REST: cfg, Kube: kube, Dynamic: dyn, provider: p, log: c.Logger}, nil
}

// runtimeOption is the container engine kind drives: Docker for the
// harness's own daemon (or a DockerHost given), otherwise what kind
// detects on the machine (Docker, Podman or nerdctl), Docker if nothing.
func runtimeOption(c Config) cluster.ProviderOption {
	if c.Local || c.DockerHost != "" {
		return cluster.ProviderWithDocker()
	}
	if opt, err := cluster.DetectNodeProvider(); err == nil && opt != nil {
		return opt
	}
	return cluster.ProviderWithDocker()
}

// setEnv points kind's docker commands at the daemon and network of c.
func setEnv(c Config) error {
	for k, v := range map[string]string{"DOCKER_HOST": c.DockerHost, "KIND_EXPERIMENTAL_DOCKER_NETWORK": c.Network} {
		if v == "" {
			continue
		}
		if err := os.Setenv(k, v); err != nil {
			return err
		}
	}
	return nil
}

// withOutput adds what the failed command printed (kubeadm's account of
// why init failed) to err.
func withOutput(err error) error {
	if re := kindexec.RunErrorForError(err); re != nil && len(re.Output) > 0 {
		out := strings.TrimSpace(string(re.Output))
		if len(out) > 4000 {
			out = "..." + out[len(out)-4000:]
		}
		return fmt.Errorf("%w\n%s", err, out)
	}
	return err
}

// LoadImages loads image archives (docker-archive tarballs, as hack/image
// writes them) into every node's containerd, as `kind load image-archive`.
func (c *Cluster) LoadImages(ctx context.Context, archives ...string) error {
	ns, err := c.provider.ListInternalNodes(c.Name)
	if err != nil {
		return fmt.Errorf("kind cluster %s: nodes: %w", c.Name, err)
	}
	if len(ns) == 0 {
		return fmt.Errorf("kind cluster %s has no nodes", c.Name)
	}
	for _, a := range archives {
		if err := ctx.Err(); err != nil {
			return err
		}
		for _, n := range ns {
			if err := loadArchive(n, a); err != nil {
				return fmt.Errorf("load %s into %s: %w", a, n, withOutput(err))
			}
		}
		c.log.Info("kind: image loaded", "archive", filepath.Base(a), "nodes", len(ns))
	}
	return nil
}

func loadArchive(n nodes.Node, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return nodeutils.LoadImageArchive(n, f)
}

// CollectLogs writes the node's logs (journal, kubelet, containerd, pods)
// under dir.
func (c *Cluster) CollectLogs(dir string) error {
	return c.provider.CollectLogs(c.Name, dir)
}

// Delete removes the cluster's nodes (their containers and volumes) and
// its kubeconfig file.
func (c *Cluster) Delete() error {
	err := c.provider.Delete(c.Name, c.Kubeconfig)
	if rmErr := os.Remove(c.Kubeconfig); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
		err = errors.Join(err, rmErr)
	}
	if err != nil {
		return fmt.Errorf("kind delete cluster %s: %w", c.Name, err)
	}
	return nil
}

// Logger is kind's logger on slog: kind's V(0) status lines at Info, its
// debug levels at Debug, warnings and errors as such.
func Logger(l *slog.Logger) kindlog.Logger { return kindLogger{l} }

type kindLogger struct{ l *slog.Logger }

func (k kindLogger) Warn(m string)                        { k.l.Warn("kind: " + m) }
func (k kindLogger) Warnf(f string, a ...any)             { k.l.Warn("kind: " + fmt.Sprintf(f, a...)) }
func (k kindLogger) Error(m string)                       { k.l.Error("kind: " + m) }
func (k kindLogger) Errorf(f string, a ...any)            { k.l.Error("kind: " + fmt.Sprintf(f, a...)) }
func (k kindLogger) V(v kindlog.Level) kindlog.InfoLogger { return infoLogger{k.l, v} }

type infoLogger struct {
	l *slog.Logger
	v kindlog.Level
}

func (i infoLogger) level() slog.Level {
	if i.v <= 0 {
		return slog.LevelInfo
	}
	return slog.LevelDebug
}

func (i infoLogger) Enabled() bool { return i.l.Enabled(context.Background(), i.level()) }
func (i infoLogger) Info(m string) { i.l.Log(context.Background(), i.level(), "kind: "+m) }
func (i infoLogger) Infof(f string, a ...any) {
	if i.Enabled() {
		i.Info(fmt.Sprintf(f, a...))
	}
}
