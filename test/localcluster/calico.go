package localcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// Calico as the real node's NetworkPolicy enforcer (Config.Calico), in
// place of kube-router: calico-node (Felix, policy only, its iptables
// dataplane on the nf_tables backend) as a DaemonSet in calico-system, and
// Calico's CNI plugin with host-local IPAM giving each pod a cali* veth and
// a /32 route (no bridge port, no BGP, no overlay). It is installed from
// Calico's own policy-only manifest (DRILLBOT_CALICO_MANIFEST): its CRDs,
// RBAC and calico-node DaemonSet, moved to calico-system (the operator's
// namespace, where kill-calico-node looks) and adapted to the local image:
//
//   - the install-cni and ebpf-bootstrap init containers are dropped (the
//     harness writes the CNI configuration; the dataplane is iptables);
//   - `calico-node -startup` runs as an init container (Calico's image runs
//     it before Felix under runit), then `calico-node -felix`;
//   - Typha is not used (one node), no default IP pool is made (host-local
//     IPAM), no address is autodetected (no BGP);
//   - Felix returns rather than accepts what policy allows, so the node's
//     own firewall (DRILLBOT-NODE: nothing forwarded off the machine) still
//     applies after it, and /var/run/calico and /var/lib/calico are the
//     pod's own (nothing is left on the machine).
//
// Felix writes iptables chains cali-* (and ipsets cali40*), removed with
// the node's others (nodeclean.go).

// Calico tells whether Calico enforces NetworkPolicy on the real node
// (Config.Calico); kube-router does otherwise.
func (c *Cluster) Calico() bool { return c.cfg.Calico }

// CalicoNamespace is where calico-node runs.
const CalicoNamespace = "calico-system"

// calicoChain is the chain Felix hooks into FORWARD once it has programmed
// the dataplane.
const calicoChain = "cali-FORWARD"

// calicoCNIConfig is the CNI configuration of a Calico node: Calico's
// plugin (policy k8s, the Kubernetes datastore) with host-local IPAM on the
// node's pod range, then portmap, as Calico's manifest lays it out.
func (c *Cluster) calicoCNIConfig() string {
	return `{"cniVersion": "0.3.1", "name": "` + cniNetwork + `", "plugins": [
  {"type": "calico", "log_level": "info", "log_file_path": "` + c.nodePath("calico-cni.log") + `",
   "datastore_type": "kubernetes", "nodename": "` + NodeName + `", "nodename_file_optional": true, "mtu": 1500,
   "ipam": {"type": "host-local", "dataDir": "` + c.nodePath("ipam") + `", "ranges": [[{"subnet": "` + podCIDR + `"}]]},
   "policy": {"type": "k8s"},
   "kubernetes": {"kubeconfig": "` + c.nodePath("calico-cni.kubeconfig") + `"}},
  {"type": "portmap", "snat": false, "capabilities": {"portMappings": true}}
]}
`
}

// calicoCNIBinDir is the node's own CNI plugin directory: Debian's plugins
// (linked) and Calico's, so nothing is added to /usr/lib/cni.
func (c *Cluster) calicoCNIBinDir() (string, error) {
	dir := c.nodePath("cni-bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	ents, err := os.ReadDir(cniBinDir)
	if err != nil {
		return "", err
	}
	for _, e := range ents {
		if err := os.Symlink(filepath.Join(cniBinDir, e.Name()), filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrExist) {
			return "", err
		}
	}
	_ = os.Remove(filepath.Join(dir, "calico"))
	if err := os.Symlink(c.cfg.Bins.CalicoCNI, filepath.Join(dir, "calico")); err != nil {
		return "", err
	}
	kc, err := os.ReadFile(c.Kubeconfig)
	if err != nil {
		return "", err
	}
	return dir, os.WriteFile(c.nodePath("calico-cni.kubeconfig"), kc, 0o600)
}

// calicoObjects reads Calico's manifest and keeps what a policy-only node
// needs: every CRD, and calico-node's and the CNI plugin's accounts, roles
// and bindings, moved to CalicoNamespace; the DaemonSet comes apart.
func calicoObjects(manifest []byte) (objs []unstructured.Unstructured, ds *appsv1.DaemonSet, err error) {
	keep := map[string]bool{"calico-node": true, "calico-cni-plugin": true, "calico-tier-getter": true}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifest), 4096)
	for {
		var u unstructured.Unstructured
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, nil, fmt.Errorf("decode Calico's manifest: %w", err)
		}
		switch k := u.GetKind(); {
		case k == "CustomResourceDefinition":
			objs = append(objs, u)
		case (k == "ServiceAccount" || k == "ClusterRole" || k == "ClusterRoleBinding") && keep[u.GetName()]:
			if u.GetNamespace() != "" {
				u.SetNamespace(CalicoNamespace)
			}
			if subjects, ok, _ := unstructured.NestedSlice(u.Object, "subjects"); ok {
				for _, s := range subjects {
					if m, ok := s.(map[string]any); ok && m["namespace"] != nil {
						m["namespace"] = CalicoNamespace
					}
				}
				_ = unstructured.SetNestedSlice(u.Object, subjects, "subjects")
			}
			objs = append(objs, u)
		case k == "DaemonSet" && u.GetName() == "calico-node":
			ds = &appsv1.DaemonSet{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, ds); err != nil {
				return nil, nil, fmt.Errorf("calico-node DaemonSet: %w", err)
			}
		}
	}
	if ds == nil || len(ds.Spec.Template.Spec.Containers) != 1 {
		return nil, nil, errors.New("Calico's manifest has no calico-node DaemonSet of one container")
	}
	return objs, ds, nil
}

// adaptCalicoNode turns the manifest's calico-node DaemonSet into the local
// node's (see the file comment).
func adaptCalicoNode(ds *appsv1.DaemonSet) {
	ds.Namespace = CalicoNamespace
	spec := &ds.Spec.Template.Spec
	node := &spec.Containers[0]
	node.Image, node.ImagePullPolicy = ImageRef("calico-node"), corev1.PullNever
	node.Command = []string{"/bin/calico-node", "-felix"}
	env := slices.DeleteFunc(slices.Clone(node.Env), func(e corev1.EnvVar) bool {
		return e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil // Typha's service name
	})
	env = append(env,
		corev1.EnvVar{Name: "FELIX_FELIXHOSTNAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
		corev1.EnvVar{Name: "FELIX_IPTABLESBACKEND", Value: "NFT"},
		corev1.EnvVar{Name: "FELIX_IPTABLESFILTERALLOWACTION", Value: "RETURN"},
		corev1.EnvVar{Name: "FELIX_XDPENABLED", Value: "false"},
		// Built without cgo, Felix has no libbpf: its start-up clean-up of
		// a BPF connect-time load balancer (never installed here) would
		// panic in libbpf's stub; Felix's own switch skips it.
		corev1.EnvVar{Name: "FELIX_DebugSkipCTLBCleanup", Value: "true"},
		corev1.EnvVar{Name: "FELIX_LOGSEVERITYSCREEN", Value: "info"},
		corev1.EnvVar{Name: "FELIX_LOGSEVERITYSYS", Value: "none"},
		corev1.EnvVar{Name: "NO_DEFAULT_POOLS", Value: "true"},
		corev1.EnvVar{Name: "IP", Value: "none"},
		corev1.EnvVar{Name: "IP6", Value: "none"},
	)
	node.Env = env
	// Only what Felix needs of the host: modules (read), the xtables lock;
	// its state directories are the pod's own.
	hostMounts := map[string]bool{"lib-modules": true, "xtables-lock": true}
	own := map[string]bool{"var-run-calico": true, "var-lib-calico": true}
	node.VolumeMounts = slices.DeleteFunc(node.VolumeMounts, func(m corev1.VolumeMount) bool { return !hostMounts[m.Name] && !own[m.Name] })
	spec.Volumes = slices.DeleteFunc(spec.Volumes, func(v corev1.Volume) bool { return !hostMounts[v.Name] && !own[v.Name] })
	for i := range spec.Volumes {
		if own[spec.Volumes[i].Name] {
			spec.Volumes[i].VolumeSource = corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}
		}
	}
	startup := node.DeepCopy()
	startup.Name, startup.Command = "startup", []string{"/bin/calico-node", "-startup"}
	startup.LivenessProbe, startup.ReadinessProbe, startup.Lifecycle = nil, nil, nil
	spec.InitContainers = []corev1.Container{*startup}
}

// startCalico installs Calico from its manifest and waits until Felix has
// hooked its chains into FORWARD.
func (c *Cluster) startCalico(ctx context.Context) error {
	manifest, err := os.ReadFile(c.cfg.Bins.CalicoManifest)
	if err != nil {
		return fmt.Errorf("Calico's manifest: %w", err)
	}
	objs, ds, err := calicoObjects(manifest)
	if err != nil {
		return err
	}
	adaptCalicoNode(ds)
	if err := c.ImportImage(ctx, "calico-node"); err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: CalicoNamespace, Labels: map[string]string{"pod-security.kubernetes.io/enforce": "privileged"}}}
	if _, err := c.Kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	for i := range objs {
		o := &objs[i]
		gvk := o.GroupVersionKind()
		gvr := schema.GroupVersionResource{Group: gvk.Group, Version: gvk.Version, Resource: strings.ToLower(gvk.Kind) + "s"}
		var err error
		if o.GetNamespace() != "" {
			_, err = c.Dynamic.Resource(gvr).Namespace(o.GetNamespace()).Create(ctx, o, metav1.CreateOptions{})
		} else {
			_, err = c.Dynamic.Resource(gvr).Create(ctx, o, metav1.CreateOptions{})
		}
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %s %s: %w", gvk.Kind, o.GetName(), err)
		}
	}
	felixConfigs := schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "felixconfigurations"}
	if err := c.poll(ctx, "Calico's CRDs established", 60*time.Second, func(ctx context.Context) (bool, error) {
		_, err := c.Dynamic.Resource(felixConfigs).List(ctx, metav1.ListOptions{})
		return err == nil, nil
	}); err != nil {
		return err
	}
	if _, err := c.Kube.AppsV1().DaemonSets(CalicoNamespace).Create(ctx, ds, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create calico-node DaemonSet: %w", err)
	}
	return c.poll(ctx, "calico-node Ready and Felix's chains in FORWARD", 120*time.Second, func(ctx context.Context) (bool, error) {
		d, err := c.Kube.AppsV1().DaemonSets(CalicoNamespace).Get(ctx, "calico-node", metav1.GetOptions{})
		if err != nil || d.Status.NumberReady < 1 {
			return false, nil
		}
		return hasForwardJump(ctx, calicoChain), nil
	})
}
