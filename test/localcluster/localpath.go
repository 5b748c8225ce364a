package localcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// LocalPathStorageClass is the StorageClass of the real node's dynamic
// provisioner (rancher/local-path-provisioner): a claim of it gets a new
// directory of the node as its volume (a local volume: Velero's
// file-system backup skips the provisioner's default, hostPath) when its
// first pod is scheduled, and the directory is removed with the volume
// (reclaim policy Delete), as a cloud disk's would be.
const LocalPathStorageClass = "local-path"

const (
	localPathNamespace   = "local-path-storage"
	localPathAccount     = "local-path-provisioner-service-account"
	localPathProvisioner = "rancher.io/local-path"
)

// startLocalPath runs rancher/local-path-provisioner on the real node as
// its own manifest lays it out (deploy/local-path-storage.yaml of the
// version make builds): its namespace, service account, roles, config and
// Deployment, from the local image of its static binary, and the
// StorageClass local-path. The helper pod it runs on the node to make and
// remove a volume's directory is hack/images/volumehelper (its config's
// setupCommand and teardownCommand), not a shell: the local images are
// FROM scratch. Volumes live under the cluster's node directory, removed
// with it. It waits until the provisioner is Ready.
func (c *Cluster) startLocalPath(ctx context.Context) error {
	for _, img := range []string{"local-path-provisioner", "volumehelper"} {
		if err := c.ImportImage(ctx, img); err != nil {
			return err
		}
	}
	root := c.nodePath("local-path")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	config, err := json.Marshal(map[string]any{
		"nodePathMap":     []map[string]any{{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": []string{root}}},
		"setupCommand":    "/volumehelper",
		"teardownCommand": "/volumehelper",
	})
	if err != nil {
		return err
	}
	helper, err := yaml.Marshal(&corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{Name: "helper-pod"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "helper-pod", Image: ImageRef("volumehelper"), ImagePullPolicy: corev1.PullNever}}}})
	if err != nil {
		return err
	}
	labels := map[string]string{"app": "local-path-provisioner"}
	objs := []struct {
		what   string
		create func() error
	}{
		{"namespace", func() error {
			_, err := c.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: localPathNamespace}}, metav1.CreateOptions{})
			return err
		}},
		{"service account", func() error {
			_, err := c.Kube.CoreV1().ServiceAccounts(localPathNamespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: localPathAccount}}, metav1.CreateOptions{})
			return err
		}},
		{"role", func() error {
			_, err := c.Kube.RbacV1().Roles(localPathNamespace).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "local-path-provisioner-role"},
				Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch", "create", "patch", "update", "delete"}}}}, metav1.CreateOptions{})
			return err
		}},
		{"cluster role", func() error {
			_, err := c.Kube.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "local-path-provisioner-role"},
				Rules: []rbacv1.PolicyRule{
					{APIGroups: []string{""}, Resources: []string{"nodes", "persistentvolumeclaims", "configmaps", "pods", "pods/log"}, Verbs: []string{"get", "list", "watch"}},
					{APIGroups: []string{""}, Resources: []string{"persistentvolumes"}, Verbs: []string{"get", "list", "watch", "create", "patch", "update", "delete"}},
					{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
					{APIGroups: []string{"storage.k8s.io"}, Resources: []string{"storageclasses"}, Verbs: []string{"get", "list", "watch"}},
				}}, metav1.CreateOptions{})
			return err
		}},
		{"role binding", func() error {
			_, err := c.Kube.RbacV1().RoleBindings(localPathNamespace).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "local-path-provisioner-bind"},
				RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "local-path-provisioner-role"},
				Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: localPathAccount, Namespace: localPathNamespace}}}, metav1.CreateOptions{})
			return err
		}},
		{"cluster role binding", func() error {
			_, err := c.Kube.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "local-path-provisioner-bind"},
				RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "local-path-provisioner-role"},
				Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: localPathAccount, Namespace: localPathNamespace}}}, metav1.CreateOptions{})
			return err
		}},
		{"config", func() error {
			_, err := c.Kube.CoreV1().ConfigMaps(localPathNamespace).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "local-path-config"},
				Data: map[string]string{"config.json": string(config), "helperPod.yaml": string(helper)}}, metav1.CreateOptions{})
			return err
		}},
		{"deployment", func() error {
			_, err := c.Kube.AppsV1().Deployments(localPathNamespace).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "local-path-provisioner"},
				Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: labels},
					Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
						ServiceAccountName: localPathAccount,
						Containers: []corev1.Container{{Name: "local-path-provisioner", Image: ImageRef("local-path-provisioner"), ImagePullPolicy: corev1.PullNever,
							Command:      []string{"/local-path-provisioner", "--debug", "start", "--config", "/etc/config/config.json"},
							VolumeMounts: []corev1.VolumeMount{{Name: "config-volume", MountPath: "/etc/config/"}},
							Env: []corev1.EnvVar{{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
								{Name: "CONFIG_MOUNT_PATH", Value: "/etc/config/"}}}},
						Volumes: []corev1.Volume{{Name: "config-volume", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
							LocalObjectReference: corev1.LocalObjectReference{Name: "local-path-config"}}}}}}}}}, metav1.CreateOptions{})
			return err
		}},
		{"storage class", func() error {
			// local volumes, not the provisioner's default hostPath:
			// Velero's file-system backup skips hostPath volumes.
			_, err := c.Kube.StorageV1().StorageClasses().Create(ctx, &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: LocalPathStorageClass,
				Annotations: map[string]string{"defaultVolumeType": "local"}},
				Provisioner: localPathProvisioner, ReclaimPolicy: ptr.To(corev1.PersistentVolumeReclaimDelete),
				VolumeBindingMode: ptr.To(storagev1.VolumeBindingWaitForFirstConsumer)}, metav1.CreateOptions{})
			return err
		}},
	}
	for _, o := range objs {
		if err := o.create(); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("local-path-provisioner's %s: %w", o.what, err)
		}
	}
	return c.poll(ctx, "local-path-provisioner Ready", 2*time.Minute, func(ctx context.Context) (bool, error) {
		d, err := c.Kube.AppsV1().Deployments(localPathNamespace).Get(ctx, "local-path-provisioner", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return d.Status.ReadyReplicas == 1, nil
	})
}
