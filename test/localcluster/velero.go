package localcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"
)

const veleroNamespace = "velero"

// startVelero installs Velero's objects, starts its server with the AWS
// plugin against the S3 store at s3URL (metrics on loopback at
// metricsPort), and waits until its BackupStorageLocation is Available.
func (c *Cluster) startVelero(ctx context.Context, s3URL string, metricsPort int) error {
	if err := c.installVelero(ctx, s3URL); err != nil {
		return err
	}
	env := []string{"AWS_SHARED_CREDENTIALS_FILE=" + c.path("s3-credentials")}
	if err := c.start("velero", c.cfg.Bins.Velero, env,
		"server", "--kubeconfig", c.Kubeconfig, "--namespace", veleroNamespace,
		"--plugin-dir", c.cfg.Bins.VeleroPluginDir, "--metrics-address", fmt.Sprintf("127.0.0.1:%d", metricsPort),
		"--profiler-address", "", "--store-validation-frequency", "10s",
		// Backups another cluster wrote to the same bucket appear within
		// seconds (default: a minute).
		"--backup-sync-period", "5s",
		"--log-level", "info"); err != nil {
		return err
	}
	return c.waitBSLAvailable(ctx)
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// installVelero installs Velero's CRDs (from the velero binary itself), its
// namespace, credentials, the default BackupStorageLocation on the S3 store,
// and the Deployment named velero that its restore item actions look up.
func (c *Cluster) installVelero(ctx context.Context, s3URL string) error {
	if err := InstallVeleroCRDs(ctx, c.Dynamic, c.cfg.Bins.Velero); err != nil {
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
	bsl := VeleroBSL(s3URL)
	if c.cfg.ReadOnlyBSL {
		bsl.Spec.AccessMode = velerov1.BackupStorageLocationAccessModeReadOnly
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
				// The local pause image: never pulled (no registry is contacted), and
				// on a real node it really runs.
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "velero", Image: ImageRef("pause"), ImagePullPolicy: corev1.PullNever}},
					Tolerations: []corev1.Toleration{{Key: "kwok.x-k8s.io/node", Operator: corev1.TolerationOpExists}}},
			},
		},
	}
	if _, err := c.Kube.AppsV1().Deployments(veleroNamespace).Create(ctx, dep, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// VeleroBSL is the default BackupStorageLocation on the S3 store at s3URL
// (the harness's versitygw: path-style, us-east-1).
func VeleroBSL(s3URL string) *velerov1.BackupStorageLocation {
	return &velerov1.BackupStorageLocation{
		TypeMeta:   metav1.TypeMeta{APIVersion: velerov1.SchemeGroupVersion.String(), Kind: "BackupStorageLocation"},
		ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: veleroNamespace},
		Spec: velerov1.BackupStorageLocationSpec{
			Provider: "aws", Default: true,
			StorageType: velerov1.StorageType{ObjectStorage: &velerov1.ObjectStorageLocation{Bucket: bucket}},
			Config:      map[string]string{"region": "us-east-1", "s3ForcePathStyle": "true", "s3Url": s3URL},
		},
	}
}

// InstallVeleroCRDs installs Velero's CRDs, as the velero binary itself
// prints them, and waits until they are served.
func InstallVeleroCRDs(ctx context.Context, dyn dynamic.Interface, velero string) error {
	out, err := exec.CommandContext(ctx, velero, "install", "--crds-only", "--dry-run", "-o", "json").Output()
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
		if _, err := dyn.Resource(crdGVR).Create(ctx, &crds[i], metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create CRD %s: %w", crds[i].GetName(), err)
		}
	}
	if err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := dyn.Resource(velerov1.SchemeGroupVersion.WithResource("backupstoragelocations")).Namespace(veleroNamespace).List(ctx, metav1.ListOptions{})
		return err == nil, nil
	}); err != nil {
		return fmt.Errorf("velero CRDs not established: %w", err)
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

// Backup takes a Velero backup of namespaces in the default location and
// waits until it has finished (in whatever phase).
func (c *Cluster) Backup(ctx context.Context, name string, namespaces ...string) (velerov1.Backup, error) {
	b := &velerov1.Backup{TypeMeta: metav1.TypeMeta{APIVersion: velerov1.SchemeGroupVersion.String(), Kind: "Backup"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: veleroNamespace},
		Spec:       velerov1.BackupSpec{IncludedNamespaces: namespaces, StorageLocation: "default"}}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(b)
	if err != nil {
		return velerov1.Backup{}, err
	}
	if _, err := c.Dynamic.Resource(backupsGVR).Namespace(veleroNamespace).Create(ctx, &unstructured.Unstructured{Object: m}, metav1.CreateOptions{}); err != nil {
		return velerov1.Backup{}, fmt.Errorf("create backup %s: %w", name, err)
	}
	return c.WaitBackup(ctx, name)
}

var backupsGVR = velerov1.SchemeGroupVersion.WithResource("backups")

// WaitBackup waits until the backup exists and has finished: taken here,
// or synced from a shared store (Velero's backup sync reconciles at most
// once a minute, whatever --backup-sync-period says).
func (c *Cluster) WaitBackup(ctx context.Context, name string) (velerov1.Backup, error) {
	return waitFinished(ctx, c, backupsGVR, "backup", name, func(b *velerov1.Backup) bool {
		switch b.Status.Phase {
		case velerov1.BackupPhaseCompleted, velerov1.BackupPhaseFailed, velerov1.BackupPhasePartiallyFailed, velerov1.BackupPhaseFailedValidation:
			return true
		}
		return false
	})
}

var restoresGVR = velerov1.SchemeGroupVersion.WithResource("restores")

// WaitRestore waits until the restore exists and has finished.
func (c *Cluster) WaitRestore(ctx context.Context, name string) (velerov1.Restore, error) {
	return waitFinished(ctx, c, restoresGVR, "restore", name, func(r *velerov1.Restore) bool {
		switch r.Status.Phase {
		case velerov1.RestorePhaseCompleted, velerov1.RestorePhaseFailed, velerov1.RestorePhasePartiallyFailed, velerov1.RestorePhaseFailedValidation:
			return true
		}
		return false
	})
}

// waitFinished polls a Velero object until done says it has finished.
func waitFinished[T any](ctx context.Context, c *Cluster, gvr schema.GroupVersionResource, what, name string, done func(*T) bool) (T, error) {
	var obj T
	err := c.poll(ctx, "velero "+what+" "+name+" finished", 3*time.Minute, func(ctx context.Context) (bool, error) {
		u, err := c.Dynamic.Resource(gvr).Namespace(veleroNamespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &obj); err != nil {
			return false, err
		}
		return done(&obj), nil
	})
	return obj, err
}
