package kindcluster

import (
	"context"
	"fmt"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/drillbot-io/drillbot/test/localcluster"
)

// Velero on kind runs as pods, as it does in production: the server (with
// the AWS plugin, image velero-server) and an S3 store (versitygw, image
// versitygw) in the velero namespace. The node image has no cluster DNS,
// so Velero reaches the store at its Service's cluster IP.

const (
	// VeleroNamespace is where Velero and its store run.
	VeleroNamespace = "velero"
	s3Port          = 7070
)

// StackImages are the images the stack's pods run, loaded into the node.
var StackImages = []string{"velero-server", "versitygw"}

// InstallVelero installs the S3 store, Velero's CRDs (printed by the
// velero binary on this machine), its credentials, storage location and
// server, and waits until the location is Available.
func (c *Cluster) InstallVelero(ctx context.Context, veleroBin string) error {
	if err := localcluster.InstallVeleroCRDs(ctx, c.Dynamic, veleroBin); err != nil {
		return err
	}
	if err := apply(ctx, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: VeleroNamespace}}); err != nil {
		return err
	}
	s3URL, err := c.installS3(ctx)
	if err != nil {
		return err
	}
	for _, obj := range veleroObjects() {
		if err := apply(ctx, c, obj); err != nil {
			return err
		}
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(localcluster.VeleroBSL(s3URL))
	if err != nil {
		return err
	}
	bsls := c.Dynamic.Resource(velerov1.SchemeGroupVersion.WithResource("backupstoragelocations")).Namespace(VeleroNamespace)
	if _, err := bsls.Create(ctx, &unstructured.Unstructured{Object: m}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create the storage location: %w", err)
	}
	var last string
	if err := wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		u, err := bsls.Get(ctx, "default", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
		msg, _, _ := unstructured.NestedString(u.Object, "status", "message")
		last = phase + " " + msg
		return phase == string(velerov1.BackupStorageLocationPhaseAvailable), nil
	}); err != nil {
		return fmt.Errorf("velero's storage location never Available (last: %s): %w", last, err)
	}
	c.log.Info("kind: velero up", "store", s3URL)
	return nil
}

// installS3 runs versitygw (posix backend: a bucket is a directory, here
// Velero's own, an emptyDir mounted where the store looks) and returns its
// URL on the Service's cluster IP.
func (c *Cluster) installS3(ctx context.Context) (string, error) {
	access, secret, bucket := localcluster.S3Keys()
	labels := map[string]string{"app": "s3"}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "s3", Namespace: VeleroNamespace},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Name: "s3", Port: s3Port, TargetPort: intstr.FromInt32(s3Port)}}},
	}
	dep := deployment(VeleroNamespace, "s3", labels, 1, corev1.PodSpec{
		Containers: []corev1.Container{{
			Name: "versitygw", Image: ImageRef("versitygw"), ImagePullPolicy: corev1.PullNever,
			Args:  []string{"--access", access, "--secret", secret, "--port", fmt.Sprintf(":%d", s3Port), "posix", "/data"},
			Ports: []corev1.ContainerPort{{Name: "s3", ContainerPort: s3Port}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(s3Port)}},
				PeriodSeconds: 1},
			VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "bucket", MountPath: "/data/" + bucket}},
		}},
		SecurityContext: &corev1.PodSecurityContext{FSGroup: ptr.To[int64](65532)},
		Volumes: []corev1.Volume{
			{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "bucket", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		},
	})
	for _, obj := range []runtime.Object{svc, dep} {
		if err := apply(ctx, c, obj); err != nil {
			return "", err
		}
	}
	got, err := c.Kube.CoreV1().Services(VeleroNamespace).Get(ctx, "s3", metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	if err := c.waitReady(ctx, VeleroNamespace, "s3"); err != nil {
		return "", err
	}
	return fmt.Sprintf("http://%s:%d", got.Spec.ClusterIP, s3Port), nil
}

// veleroObjects are Velero's credentials, service account (cluster-admin,
// as velero install binds it) and server Deployment.
func veleroObjects() []runtime.Object {
	labels := map[string]string{"component": "velero"}
	return []runtime.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "cloud-credentials", Namespace: VeleroNamespace},
			Data: map[string][]byte{"cloud": localcluster.S3CredentialsFile()}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "velero", Namespace: VeleroNamespace}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "velero"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "velero", Namespace: VeleroNamespace}}},
		deployment(VeleroNamespace, "velero", labels, 1, corev1.PodSpec{
			ServiceAccountName: "velero",
			Containers: []corev1.Container{{
				Name: "velero", Image: ImageRef("velero-server"), ImagePullPolicy: corev1.PullNever,
				Command: []string{"/velero"},
				Args: []string{"server", "--namespace", VeleroNamespace, "--plugin-dir", "/velero-plugins",
					"--uploader-type", "kopia", "--store-validation-frequency", "10s", "--backup-sync-period", "5s",
					"--profiler-address", "", "--log-level", "info"},
				Env: []corev1.EnvVar{
					{Name: "VELERO_NAMESPACE", Value: VeleroNamespace},
					{Name: "VELERO_SCRATCH_DIR", Value: "/scratch"},
					{Name: "HOME", Value: "/scratch"},
					{Name: "AWS_SHARED_CREDENTIALS_FILE", Value: "/credentials/cloud"},
				},
				// Velero's plugins talk over sockets in /tmp.
				VolumeMounts: []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}, {Name: "tmp", MountPath: "/tmp"},
					{Name: "credentials", MountPath: "/credentials", ReadOnly: true}},
			}},
			Volumes: []corev1.Volume{
				{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "credentials", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "cloud-credentials"}}},
			},
		}),
	}
}

// deployment is a Deployment of replicas pods of spec, labelled (and
// selected by) labels.
func deployment(ns, name string, labels map[string]string, replicas int32, spec corev1.PodSpec) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec},
		},
	}
}

// ImageRef is the reference of one of hack/image's images.
func ImageRef(name string) string { return "drillbot.local/" + name + ":dev" }

// apply creates obj (typed), leaving one that exists.
func apply(ctx context.Context, c *Cluster, obj runtime.Object) error {
	var err error
	switch o := obj.(type) {
	case *corev1.Namespace:
		_, err = c.Kube.CoreV1().Namespaces().Create(ctx, o, metav1.CreateOptions{})
	case *corev1.Service:
		_, err = c.Kube.CoreV1().Services(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	case *corev1.Secret:
		_, err = c.Kube.CoreV1().Secrets(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	case *corev1.ServiceAccount:
		_, err = c.Kube.CoreV1().ServiceAccounts(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	case *rbacv1.ClusterRoleBinding:
		_, err = c.Kube.RbacV1().ClusterRoleBindings().Create(ctx, o, metav1.CreateOptions{})
	case *appsv1.Deployment:
		_, err = c.Kube.AppsV1().Deployments(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	default:
		return fmt.Errorf("apply: %T not handled", obj)
	}
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create %T: %w", obj, err)
	}
	return nil
}

// waitReady waits until the Deployment's replicas are all available.
func (c *Cluster) waitReady(ctx context.Context, ns, name string) error {
	var last string
	if err := wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		d, err := c.Kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = fmt.Sprintf("%d of %d available", d.Status.AvailableReplicas, ptr.Deref(d.Spec.Replicas, 1))
		return d.Status.ObservedGeneration >= d.Generation && d.Status.AvailableReplicas == ptr.Deref(d.Spec.Replicas, 1), nil
	}); err != nil {
		return fmt.Errorf("deployment %s/%s not ready (%s): %w", ns, name, last, err)
	}
	return nil
}
