package kindcluster

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
	"github.com/drillbot-io/drillbot/test/localcluster"
)

// DrillbotNamespace is where InstallChart installs drillbot.
const DrillbotNamespace = "drillbot-system"

// SampleApp makes ns, opted in, with a Secret and the sample app's web
// Deployment (two replicas, Ready when the process answers), and waits
// until it is available.
func (c *Cluster) SampleApp(ctx context.Context, ns string) error {
	labels := map[string]string{"app": "shop-web"}
	tmpl := localcluster.SampleApp(labels)
	for _, obj := range []runtime.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{v1alpha1.LabelAllowDisaster: "true"}}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "shop-db", Namespace: ns}, StringData: map[string]string{"password": "not-a-real-password"}},
		deployment(ns, "shop-web", labels, 2, tmpl.Spec),
	} {
		if err := apply(ctx, c, obj); err != nil {
			return err
		}
	}
	return c.waitReady(ctx, ns, "shop-web")
}

// InstallChart installs drillbot's chart (release drillbot in
// DrillbotNamespace) with values, or upgrades the release to them, and
// waits for its pods.
func (c *Cluster) InstallChart(ctx context.Context, helm, chart string, values map[string]any) error {
	data, err := yaml.Marshal(values)
	if err != nil {
		return err
	}
	if err := localcluster.HelmUpgrade(ctx, helm, c.Kubeconfig, "drillbot", DrillbotNamespace, chart, string(data), 4*time.Minute); err != nil {
		return err
	}
	c.log.Info("kind: drillbot installed by its chart")
	return nil
}

// WaitMarker waits until drillbot's daemon has stamped the RPO marker in ns.
func (c *Cluster) WaitMarker(ctx context.Context, ns string) error {
	if err := wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := c.Kube.CoreV1().ConfigMaps(ns).Get(ctx, namespacerestore.MarkerName, metav1.GetOptions{})
		return err == nil, nil
	}); err != nil {
		return fmt.Errorf("the daemon never stamped %s/%s: %w", ns, namespacerestore.MarkerName, err)
	}
	return nil
}

// Backup makes the Velero Schedule (nightly, as a team would) and one
// backup from it now, and waits until that backup is Completed.
func (c *Cluster) Backup(ctx context.Context, schedule, ns string) error {
	tmpl := velerov1.BackupSpec{IncludedNamespaces: []string{ns}, StorageLocation: "default"}
	sched := &velerov1.Schedule{
		TypeMeta:   metav1.TypeMeta{APIVersion: velerov1.SchemeGroupVersion.String(), Kind: "Schedule"},
		ObjectMeta: metav1.ObjectMeta{Name: schedule, Namespace: VeleroNamespace},
		Spec:       velerov1.ScheduleSpec{Schedule: "0 2 * * *", Template: tmpl},
	}
	name := fmt.Sprintf("%s-%s", schedule, time.Now().UTC().Format("20060102150405"))
	backup := &velerov1.Backup{
		TypeMeta:   metav1.TypeMeta{APIVersion: velerov1.SchemeGroupVersion.String(), Kind: "Backup"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: VeleroNamespace, Labels: map[string]string{velerov1.ScheduleNameLabel: schedule}},
		Spec:       tmpl,
	}
	for gvr, obj := range map[string]any{"schedules": sched, "backups": backup} {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			return err
		}
		if _, err := c.Dynamic.Resource(velerov1.SchemeGroupVersion.WithResource(gvr)).Namespace(VeleroNamespace).Create(ctx, &unstructured.Unstructured{Object: m}, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create velero %s: %w", gvr, err)
		}
	}
	var phase string
	if err := wait.PollUntilContextTimeout(ctx, time.Second, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		u, err := c.Dynamic.Resource(velerov1.SchemeGroupVersion.WithResource("backups")).Namespace(VeleroNamespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		phase, _, _ = unstructured.NestedString(u.Object, "status", "phase")
		switch velerov1.BackupPhase(phase) {
		case velerov1.BackupPhaseCompleted:
			return true, nil
		case velerov1.BackupPhaseFailed, velerov1.BackupPhasePartiallyFailed, velerov1.BackupPhaseFailedValidation:
			return false, fmt.Errorf("backup %s: %s", name, phase)
		}
		return false, nil
	}); err != nil {
		return fmt.Errorf("backup %s (phase %q): %w", name, phase, err)
	}
	c.log.Info("kind: backup completed", "backup", name)
	return nil
}

// WaitRun waits until a run of drill has finished and returns it.
func (c *Cluster) WaitRun(ctx context.Context, drill string, timeout time.Duration) (*v1alpha1.DrillRun, error) {
	var done *v1alpha1.DrillRun
	var seen string
	err := wait.PollUntilContextTimeout(ctx, 2*time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		list, err := c.Dynamic.Resource(v1alpha1.DrillRunResource).Namespace(DrillbotNamespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		for i := range list.Items {
			var r v1alpha1.DrillRun
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(list.Items[i].Object, &r); err != nil {
				return false, err
			}
			if r.Spec.Drill != drill {
				continue
			}
			seen = fmt.Sprintf("%s %s", r.Name, r.Status.Phase)
			if r.Status.FinishedAt != nil {
				done = &r
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return nil, fmt.Errorf("no finished run of %s (last seen: %q): %w", drill, seen, err)
	}
	return done, nil
}

// e2eDrill is the catalog's namespace-restore on drill-demo (Velero's
// Schedule drill-demo-daily), scheduled once, at a minute given.
const e2eDrill = `apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata:
  name: namespace-restore-e2e
spec:
  scenario: namespace-restore
  schedule: "%s"
  objectives: {rto: 5m, rpo: 1h}
  timeouts: {preflight: 2m, inject: 5m, recover: 5m, verify: 2m, revert: 5m}
  target: {namespace: drill-demo}
  params:
    veleroNamespace: velero
    backup: {schedule: drill-demo-daily}
`

// E2EDrill is the end-to-end drill's name.
const E2EDrill = "namespace-restore-e2e"

// E2E is drillbot's end-to-end on a kind cluster, as a user installs it:
// Velero and its S3 store as pods, the sample app in drill-demo (opted
// in), drillbot by its chart (the catalog's namespace-restore enabled:
// its RBAC, the marker's Role in drill-demo among it, must be in the
// backup), the RPO marker stamped by the daemon, a backup from the Velero
// Schedule; then the chart upgraded with the same drill as a custom one
// scheduled a minute or two ahead, and the daemon's run deletes
// drill-demo, restores it and gives its verdict.
type E2E struct {
	// Images is hack/image's directory (drillbot, sampleapp); KindImages
	// the kind images' (velero-server, versitygw).
	Images, KindImages string
	// Helm and Velero are the binaries; Chart drillbot's chart directory.
	Helm, Velero, Chart string
}

// RunE2E runs e and returns the daemon's finished run.
func (c *Cluster) RunE2E(ctx context.Context, e E2E) (*v1alpha1.DrillRun, error) {
	if e.Images == "" || e.KindImages == "" || e.Helm == "" || e.Velero == "" || e.Chart == "" {
		return nil, fmt.Errorf("kind e2e: images %q, kind images %q, helm %q, velero %q and chart %q are all required", e.Images, e.KindImages, e.Helm, e.Velero, e.Chart)
	}
	archives := []string{filepath.Join(e.Images, "drillbot.tar"), filepath.Join(e.Images, "sampleapp.tar")}
	for _, n := range StackImages {
		archives = append(archives, filepath.Join(e.KindImages, n+".tar"))
	}
	if err := c.LoadImages(ctx, archives...); err != nil {
		return nil, err
	}
	if err := c.InstallVelero(ctx, e.Velero); err != nil {
		return nil, err
	}
	if err := c.SampleApp(ctx, "drill-demo"); err != nil {
		return nil, err
	}
	values := map[string]any{
		"replicas": 1,
		"image":    map[string]any{"repository": "drillbot.local/drillbot", "tag": "dev", "pullPolicy": "Never"},
		"drills":   map[string]any{"unsigned-image": map[string]any{"enabled": false}, "namespace-restore": map[string]any{"enabled": true}},
		// The daemon stamps the marker soon after it starts.
		"markerInterval": "10s",
	}
	if err := c.InstallChart(ctx, e.Helm, e.Chart, values); err != nil {
		return nil, err
	}
	if err := c.WaitMarker(ctx, "drill-demo"); err != nil {
		return nil, err
	}
	if err := c.Backup(ctx, "drill-demo-daily", "drill-demo"); err != nil {
		return nil, err
	}
	// The upgrade rolls the daemon (the drills' checksum) in well under a
	// minute; the run's slot is the minute after the next.
	slot := time.Now().UTC().Add(2 * time.Minute).Truncate(time.Minute)
	values["customDrills"] = map[string]any{"e2e": fmt.Sprintf(e2eDrill, fmt.Sprintf("CRON_TZ=UTC %d %d * * *", slot.Minute(), slot.Hour()))}
	if err := c.InstallChart(ctx, e.Helm, e.Chart, values); err != nil {
		return nil, err
	}
	if time.Now().After(slot.Add(-10 * time.Second)) {
		return nil, fmt.Errorf("kind e2e: the daemon with the drill was up only at %s, past its slot (%s)", time.Now().UTC().Format(time.TimeOnly), slot.Format(time.TimeOnly))
	}
	c.log.Info("kind: waiting for the daemon's run", "drill", E2EDrill, "at", slot.Format(time.TimeOnly))
	return c.WaitRun(ctx, E2EDrill, time.Until(slot)+8*time.Minute)
}

// CheckE2ERun says what is wrong with the e2e's run as evidence of what
// the e2e claims: the daemon's schedule started it, it deleted the
// namespace (a disaster recorded), it PASSed with RTO measured and the
// RPO read from the marker Velero restored (not the backup's start time).
func CheckE2ERun(run *v1alpha1.DrillRun) error {
	var errs []error
	if run.Spec.Drill != E2EDrill {
		errs = append(errs, fmt.Errorf("run of %q, not %s", run.Spec.Drill, E2EDrill))
	}
	if run.Spec.StartedBy == nil || run.Spec.StartedBy.Kind != v1alpha1.InitiatorSchedule {
		errs = append(errs, fmt.Errorf("started by %+v, not the daemon's schedule", run.Spec.StartedBy))
	}
	if run.Status.Verdict != v1alpha1.VerdictPass {
		errs = append(errs, fmt.Errorf("verdict %q (%s), not PASS", run.Status.Verdict, run.Status.Reason))
	}
	if run.Status.DisasterAt == nil || run.Status.RTO == "" {
		errs = append(errs, fmt.Errorf("no disaster recorded or no RTO (%q)", run.Status.RTO))
	}
	if want := "restored marker ConfigMap " + namespacerestore.MarkerName; run.Status.RPO == "" || run.Status.RPOSource != want {
		errs = append(errs, fmt.Errorf("RPO %q from %q, not from the %s", run.Status.RPO, run.Status.RPOSource, want))
	}
	return errors.Join(errs...)
}

// CheckRestored says what is wrong with ns after the run: it must be a
// namespace made after the disaster (Velero's restore), its Deployment
// available again.
func (c *Cluster) CheckRestored(ctx context.Context, run *v1alpha1.DrillRun, ns, deployment string) error {
	n, err := c.Kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if run.Status.DisasterAt == nil || n.CreationTimestamp.Time.Before(run.Status.DisasterAt.Time.Truncate(time.Second)) {
		return fmt.Errorf("namespace %s made %s, not after the disaster (%v)", ns, n.CreationTimestamp, run.Status.DisasterAt)
	}
	return c.waitReady(ctx, ns, deployment)
}
