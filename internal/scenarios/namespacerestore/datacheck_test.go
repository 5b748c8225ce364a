package namespacerestore

// The data check, as the adversary would have it: a check that never ran,
// a pod that is not the check's, a check killed by its deadline, an answer
// drillbot cannot read. Only the check's own exit is an answer.

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/engine"
)

type podLogs struct {
	log  string
	err  error
	pods []string
}

func (l *podLogs) PodLog(_ context.Context, _, pod, _ string) (io.ReadCloser, error) {
	l.pods = append(l.pods, pod)
	if l.err != nil {
		return nil, l.err
	}
	return io.NopCloser(strings.NewReader(l.log)), nil
}

// controlledBy makes p the pod of the Job of UID uid.
func controlledBy(p *corev1.Pod, uid string) *corev1.Pod {
	p.Labels = map[string]string{batchv1.ControllerUidLabel: uid}
	p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: "drillbot-check", UID: types.UID(uid), Controller: ptr.To(true)}}
	return p
}

func checkTemplate() *v1alpha1.JobCheck {
	return &v1alpha1.JobCheck{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: "check", Image: "drillbot.local/sampleapp", Args: []string{"check", "/data/records"}}}}}}
}

func terminatedPod(name, uid string, exit int32, reason string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"}}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "check", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: exit, Reason: reason}}}}
	return controlledBy(p, uid)
}

func waitingPod(name, uid, reason string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"}, Status: corev1.PodStatus{Phase: corev1.PodPending}}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "check", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}}}
	return controlledBy(p, uid)
}

func finished(t batchv1.JobConditionType, reason string) []batchv1.JobCondition {
	return []batchv1.JobCondition{{Type: t, Status: corev1.ConditionTrue, Reason: reason}}
}

// checkCluster is a fake cluster where creating the check's Job gives it
// UID "check-uid" and the status cond, and makes pods (the Job's own and
// any other).
func checkCluster(t *testing.T, cond []batchv1.JobCondition, createErr error, pods ...*corev1.Pod) *fake.Clientset {
	t.Helper()
	var objs []runtime.Object
	for _, p := range pods {
		objs = append(objs, p)
	}
	c := fake.NewClientset(objs...)
	c.PrependReactor("create", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if createErr != nil {
			return true, nil, createErr
		}
		j := a.(k8stesting.CreateAction).GetObject().(*batchv1.Job)
		j.UID = "check-uid"
		j.Status.Conditions = cond
		return false, nil, nil // stored by the tracker as changed
	})
	return c
}

func checkScenario(c *fake.Clientset, logs LogReader) *scenario {
	return &scenario{
		deps: Deps{Kube: c, Logs: logs, PollInterval: time.Millisecond, Clock: clocktesting.NewFakePassiveClock(time.Now())},
		ns:   "shop", run: "shop-restore-20261205-120000-abcd", check: checkTemplate(),
		backup:     &velerov1.Backup{ObjectMeta: metav1.ObjectMeta{Name: "shop-daily-1"}},
		disasterAt: time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC),
		log:        slog.New(slog.DiscardHandler),
	}
}

func TestDataCheck(t *testing.T) {
	newest := time.Date(2026, 12, 5, 11, 59, 41, 0, time.UTC)
	cases := []struct {
		name      string
		cond      []batchv1.JobCondition
		createErr error
		pods      []*corev1.Pod
		log       string
		logErr    error
		timeout   time.Duration
		want      string // "pass", "fail" or "unknown"
		reason    string
		newest    *time.Time
	}{
		{name: "passed, newest write from the data", cond: finished(batchv1.JobComplete, ""),
			pods: []*corev1.Pod{terminatedPod("check-1", "check-uid", 0, "Completed")},
			log:  "1200 records, chain intact\ndrillbot-newest: 2026-12-05T11:59:41Z\n", want: "pass", newest: &newest},
		{name: "passed without a newest line: RPO from the marker", cond: finished(batchv1.JobComplete, ""),
			pods: []*corev1.Pod{terminatedPod("check-1", "check-uid", 0, "Completed")},
			log:  "ok\n", want: "pass", reason: "no drillbot-newest: line"},
		{name: "the data failed the check", cond: finished(batchv1.JobFailed, "BackoffLimitExceeded"),
			pods: []*corev1.Pod{terminatedPod("check-1", "check-uid", 3, "Error")},
			log:  "record 812: checksum mismatch\n", want: "fail", reason: "exited 3); its log ends: record 812: checksum mismatch"},
		{name: "another pod passing is not the check's answer", cond: finished(batchv1.JobFailed, "BackoffLimitExceeded"),
			pods: []*corev1.Pod{terminatedPod("stale", "other-uid", 0, "Completed"), terminatedPod("check-1", "check-uid", 1, "Error")},
			log:  "no records\n", want: "fail", reason: "exited 1"},
		{name: "killed out of memory: no answer", cond: finished(batchv1.JobFailed, "BackoffLimitExceeded"),
			pods: []*corev1.Pod{terminatedPod("check-1", "check-uid", 137, "OOMKilled")}, want: "unknown", reason: "container check ended OOMKilled, exit 137"},
		{name: "killed at the job's deadline: no answer", cond: finished(batchv1.JobFailed, batchv1.JobReasonDeadlineExceeded),
			pods: []*corev1.Pod{terminatedPod("check-1", "check-uid", 137, "Error")}, want: "unknown", reason: "without an answer of the check's own"},
		{name: "never started (command not found)", cond: finished(batchv1.JobFailed, "BackoffLimitExceeded"),
			pods: []*corev1.Pod{terminatedPod("check-1", "check-uid", 128, "StartError")}, want: "unknown", reason: "StartError"},
		{name: "image never pulled, job failed", cond: finished(batchv1.JobFailed, batchv1.JobReasonDeadlineExceeded),
			pods: []*corev1.Pod{waitingPod("check-1", "check-uid", "ErrImageNeverPull")}, want: "unknown", reason: "ErrImageNeverPull"},
		{name: "never finished within the phase", pods: []*corev1.Pod{waitingPod("check-1", "check-uid", "ImagePullBackOff")},
			timeout: 50 * time.Millisecond, want: "unknown", reason: "did not finish within the recover phase"},
		{name: "not admitted (Pod Security)", createErr: apierrors.NewForbidden(schema.GroupResource{Group: "batch", Resource: "jobs"}, "x", errors.New("violates PodSecurity \"restricted:latest\"")),
			want: "unknown", reason: "could not be created, the data was not checked"},
		{name: "a newest write drillbot cannot read", cond: finished(batchv1.JobComplete, ""),
			pods: []*corev1.Pod{terminatedPod("check-1", "check-uid", 0, "Completed")},
			log:  "drillbot-newest: yesterday\n", want: "pass", reason: "its newest write cannot be read (drillbot-newest: \"yesterday\" is not an RFC 3339 time), so the RPO is not taken from it"},
		{name: "passed but its log unreadable: no RPO from it", cond: finished(batchv1.JobComplete, ""),
			pods:   []*corev1.Pod{terminatedPod("check-1", "check-uid", 0, "Completed")},
			logErr: errors.New("kubelet unreachable"), want: "pass", reason: "its log could not be read"},
		{name: "the job's pod is gone", cond: finished(batchv1.JobComplete, ""), want: "unknown", reason: "its pod could not be read"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := checkCluster(t, tc.cond, tc.createErr, tc.pods...)
			logs := &podLogs{log: tc.log, err: tc.logErr}
			s := checkScenario(c, logs)
			ctx := context.Background()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			err := s.verifyData(ctx)
			got := "pass"
			switch {
			case engine.IsUnknown(err):
				got = "unknown"
			case err != nil:
				got = "fail"
			}
			said := ""
			if err != nil {
				said = err.Error()
			} else if s.checked != nil {
				said = s.checked.finding
			}
			if got != tc.want || !strings.Contains(said, tc.reason) {
				t.Fatalf("got %s %q, want %s containing %q", got, said, tc.want, tc.reason)
			}
			if tc.newest != nil && (s.checked.newest == nil || !s.checked.newest.Equal(*tc.newest)) {
				t.Errorf("newest write %v, want %v", s.checked.newest, tc.newest)
			}
			if tc.newest == nil && s.checked != nil && s.checked.newest != nil {
				t.Errorf("newest write %v from a check that gave none", s.checked.newest)
			}
			for _, p := range logs.pods {
				if p != "check-1" {
					t.Errorf("read the log of pod %s, not the check's", p)
				}
			}
			if tc.createErr == nil {
				if _, err := c.BatchV1().Jobs("shop").Get(context.Background(), DataCheckJobName(s.run), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
					t.Errorf("check job left behind (%v)", err)
				}
			}
		})
	}
}

// The Job is the drill's template, run once, with the run's facts in its
// environment and a deadline within the phase's.
func TestDataCheckJob(t *testing.T) {
	s := checkScenario(fake.NewClientset(), &podLogs{})
	s.check.Template.Spec.RestartPolicy = ""
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	j := s.dataCheckJob(ctx, "drillbot-check-1", s.check)
	if *j.Spec.BackoffLimit != 0 || j.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("backoffLimit %d, restartPolicy %q: want one try", *j.Spec.BackoffLimit, j.Spec.Template.Spec.RestartPolicy)
	}
	if d := *j.Spec.ActiveDeadlineSeconds; d > 60 || d < 50 {
		t.Errorf("activeDeadlineSeconds %d, want the phase's 90s less 30s to read the outcome", d)
	}
	if j.Labels["velero.io/exclude-from-backup"] != "true" || j.Spec.Template.Labels["velero.io/exclude-from-backup"] != "true" {
		t.Error("the check's Job and pod are not kept out of Velero's backups")
	}
	if j.Spec.TTLSecondsAfterFinished == nil || j.Labels[v1alpha1.LabelRun] != s.run || j.Spec.Template.Labels[v1alpha1.LabelRun] != s.run {
		t.Errorf("job %+v: want a TTL and the run's label on the job and its pod", j.ObjectMeta)
	}
	env := map[string]string{}
	for _, e := range j.Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e.Value
	}
	if env[EnvDisasterTime] != "2026-12-05T12:00:00Z" || env[EnvBackup] != "shop-daily-1" || env[EnvRun] != s.run {
		t.Errorf("env %v", env)
	}
	if s.check.Template.Spec.Containers[0].Env != nil {
		t.Error("the drill's template was changed")
	}
	if got := DataCheckJobName(s.run); len(got) > 63 || got == DataCheckJobName(s.run+"x") {
		t.Errorf("job name %q: want a short name per run", got)
	}
}

// An init container of the check that fails is the check's answer: FAIL,
// not "the check never ran".
func TestDataCheckInitContainerFails(t *testing.T) {
	p := waitingPod("check-1", "check-uid", "PodInitializing")
	p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "fetch-keys", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2, Reason: "Error"}}}}
	s := checkScenario(checkCluster(t, finished(batchv1.JobFailed, "BackoffLimitExceeded"), nil, p), &podLogs{log: "orders table missing\n"})
	err := s.verifyData(context.Background())
	if err == nil || engine.IsUnknown(err) || !strings.Contains(err.Error(), "container fetch-keys exited 2); its log ends: orders table missing") {
		t.Fatalf("got %v, want FAIL naming the init container", err)
	}
}

// A newest write inside what the backup can hold (after the restored
// marker, before the backup completed) is the RPO's.
func TestDataCheckNewestWriteMeasuresTheRPO(t *testing.T) {
	disaster := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	backupAt := disaster.Add(-time.Hour)
	newest := backupAt.Add(10 * time.Second) // the backup completes 30s after it starts
	s := checkedVerify(t, newest, backupAt.Add(-20*time.Second), backupAt)
	v, err := s.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if v.DataTimestamp == nil || !v.DataTimestamp.Equal(newest) || !strings.Contains(v.RPOSource, "data check") {
		t.Fatalf("data time %v from %q, want the check's %v", v.DataTimestamp, v.RPOSource, newest)
	}
}
