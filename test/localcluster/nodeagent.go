package localcluster

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/vmware-tanzu/velero/pkg/install"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// LocalStorageClass is the StorageClass of the real node's local volumes
// (LocalVolume): static, no provisioner, bound at once.
const LocalStorageClass = "drillbot-local"

// startNodeAgent runs Velero's node-agent on the real node as Velero's
// own install lays it out (its DaemonSet, service account and cluster
// role binding, from Velero's install package), from the local image of
// the same static velero binary the server runs. The node-agent makes the
// pods that copy pod volumes' data (file-system backup with kopia) from its
// DaemonSet's template, so they run the same image. Velero adds the
// restore helper (the local velero-restore-helper image, named by the
// ConfigMap Velero's restore item action reads) to every pod it restores
// with volume data. It waits until the node-agent is Ready.
func (c *Cluster) startNodeAgent(ctx context.Context) error {
	for _, img := range []string{"velero", "velero-restore-helper"} {
		if err := c.ImportImage(ctx, img); err != nil {
			return err
		}
	}
	if _, err := c.Kube.CoreV1().ServiceAccounts(veleroNamespace).Create(ctx, install.ServiceAccount(veleroNamespace, nil), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("velero service account: %w", err)
	}
	if _, err := c.Kube.RbacV1().ClusterRoleBindings().Create(ctx, install.ClusterRoleBinding(veleroNamespace), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("velero cluster role binding: %w", err)
	}
	ds := install.DaemonSet(veleroNamespace, install.WithImage(ImageRef("velero")), install.WithSecret(true),
		install.WithServiceAccountName("velero"), install.WithKubeletRootDir(c.nodePath("kubelet")))
	ds.Spec.Template.Spec.Containers[0].ImagePullPolicy = corev1.PullNever
	if _, err := c.Kube.AppsV1().DaemonSets(veleroNamespace).Create(ctx, ds, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("velero node-agent: %w", err)
	}
	helper := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "fs-restore-action-config", Namespace: veleroNamespace,
		Labels: map[string]string{"velero.io/plugin-config": "", "velero.io/pod-volume-restore": "RestoreItemAction"}},
		Data: map[string]string{"image": ImageRef("velero-restore-helper")}}
	if _, err := c.Kube.CoreV1().ConfigMaps(veleroNamespace).Create(ctx, helper, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("velero restore helper config: %w", err)
	}
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: LocalStorageClass}, Provisioner: "kubernetes.io/no-provisioner",
		ReclaimPolicy: ptr.To(corev1.PersistentVolumeReclaimRetain), VolumeBindingMode: ptr.To(storagev1.VolumeBindingImmediate)}
	if _, err := c.Kube.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("storage class %s: %w", LocalStorageClass, err)
	}
	return c.poll(ctx, "velero node-agent Ready", 2*time.Minute, func(ctx context.Context) (bool, error) {
		d, err := c.Kube.AppsV1().DaemonSets(veleroNamespace).Get(ctx, ds.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return daemonSetReady(d), nil
	})
}

func daemonSetReady(d *appsv1.DaemonSet) bool {
	return d.Status.ObservedGeneration >= d.Generation && d.Status.DesiredNumberScheduled > 0 &&
		d.Status.NumberReady == d.Status.DesiredNumberScheduled
}

// LocalVolume makes a local PersistentVolume of size on the real node, in
// a new directory under the cluster's, of LocalStorageClass, Available to
// any claim of that class (or bound to the claim ns/claim when claim is
// set). It returns the volume's directory.
func (c *Cluster) LocalVolume(ctx context.Context, name, size, ns, claim string) (string, error) {
	if !c.node {
		return "", fmt.Errorf("local volume %s: the cluster has no real node", name)
	}
	dir := c.nodePath("volumes", name)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return "", err
	}
	// Writable by the pods' non-root users, as a provisioner's volume is.
	if err := os.Chmod(dir, 0o777); err != nil {
		return "", err
	}
	pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			StorageClassName:              LocalStorageClass,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: dir}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{NodeName}}}}}}}}}
	if claim != "" {
		pv.Spec.ClaimRef = &corev1.ObjectReference{Namespace: ns, Name: claim}
	}
	if _, err := c.Kube.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("local volume %s: %w", name, err)
	}
	return dir, nil
}
