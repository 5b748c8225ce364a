package namespacerestore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/engine"
)

// NewestPrefix starts the log line of a data check that names the newest
// restored write.
const NewestPrefix = "drillbot-newest:"

// Environment a data check's pod gets.
const (
	EnvDisasterTime = "DRILLBOT_DISASTER_TIME"
	EnvBackup       = "DRILLBOT_BACKUP"
	EnvRun          = "DRILLBOT_RUN"
)

// dataCheckTTL removes a check's Job by itself when drillbot cannot.
const dataCheckTTL = 10 * time.Minute

// deadlineMargin is kept of the recover phase, after the check's deadline,
// to read its outcome and delete it.
const deadlineMargin = 30 * time.Second

// LogReader reads a pod's container log.
type LogReader interface {
	PodLog(ctx context.Context, ns, pod, container string) (io.ReadCloser, error)
}

// KubeLogs reads logs through the API server (pods/log), streamed.
type KubeLogs struct{ Kube kubernetes.Interface }

// maxLog bounds how much of a check's log is read: past it the log is
// said to be cut, and no newest write is taken from it.
const maxLog = 64 << 20

// PodLog implements LogReader.
func (k KubeLogs) PodLog(ctx context.Context, ns, pod, container string) (io.ReadCloser, error) {
	return k.Kube.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: container}).Stream(ctx)
}

// checkResult is what a data check found.
type checkResult struct {
	failure      string     // the check ran and said the data is not good
	inconclusive string     // the check could not run to an answer
	finding      string     // what it said, on any outcome
	newest       *time.Time // the newest restored write it reported
	source       string     // which check reported newest, for the RPO's source
	claims       []string   // the PVCs whose data the check read
	latest       *time.Time // of several checks, the newest of their newest writes (nil: newest's)
}

// newestOfAll is the newest write any of the checks reported: a check
// whose data holds writes the backup cannot is no evidence of the restore,
// whatever the other checks found.
func (r *checkResult) newestOfAll() *time.Time {
	if r.latest != nil {
		return r.latest
	}
	return r.newest
}

// DataCheckJobName is the name of a run's data check Job.
func DataCheckJobName(run string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(run))
	return fmt.Sprintf("drillbot-check-%08x", h.Sum32())
}

// verifyData runs the drill's data check: an error when the data failed
// it (FAIL) or it gave no answer (Unknown: INCONCLUSIVE).
func (s *scenario) verifyData(ctx context.Context) error {
	var results []checkResult
	if s.httpCheck != nil {
		results = append(results, s.runHTTPCheck(ctx))
	}
	if s.check != nil {
		results = append(results, s.runDataCheck(ctx, s.check))
	}
	r := mergeChecks(results)
	s.checked = &r
	switch {
	case r.failure != "":
		return errors.New(r.failure)
	case r.inconclusive != "":
		return engine.Unknown(errors.New(r.inconclusive))
	}
	return nil
}

// mergeChecks is what the checks found together: a failure of one FAILs,
// else one without an answer is INCONCLUSIVE; the newest write is the
// older of those reported (the larger RPO: never better than the truth).
func mergeChecks(rs []checkResult) checkResult {
	var m checkResult
	var fail, unknown, found []string
	for _, r := range rs {
		if r.failure != "" {
			fail = append(fail, r.failure)
		}
		if r.inconclusive != "" {
			unknown = append(unknown, r.inconclusive)
		}
		if r.finding != "" {
			found = append(found, r.finding)
		}
		if r.newest != nil && (m.newest == nil || r.newest.Before(*m.newest)) {
			m.newest, m.source = r.newest, r.source
		}
		if l := r.newestOfAll(); l != nil && (m.latest == nil || l.After(*m.latest)) {
			m.latest = l
		}
		for _, c := range r.claims {
			if !slices.Contains(m.claims, c) {
				m.claims = append(m.claims, c)
			}
		}
	}
	m.failure, m.inconclusive, m.finding = strings.Join(fail, "; "), strings.Join(unknown, "; "), strings.Join(found, "; ")
	return m
}

// runDataCheck runs the drill's check Job in the restored namespace and
// reads its outcome. Only an exit of the check's own containers is an
// answer (an exit on their own: reason Error, a code of 1 to 128); a pod
// that never got there, or was killed, is no evidence either way.
func (s *scenario) runDataCheck(ctx context.Context, check *v1alpha1.JobCheck) (r checkResult) {
	name := DataCheckJobName(s.run)
	job := s.dataCheckJob(ctx, name, check)
	jobs := s.deps.Kube.BatchV1().Jobs(s.ns)
	created, err := jobs.Create(ctx, job, metav1.CreateOptions{})
	// The check's Job and pod are no part of the application: gone before
	// the run ends, also when the create's answer was lost (or by their
	// TTL if the delete fails, and then the run says so).
	defer func() {
		if left := s.removeCheckJob(ctx, name); left != "" {
			switch {
			case r.failure != "":
				r.failure += "; " + left
			case r.inconclusive != "":
				r.inconclusive += "; " + left
			default:
				r.finding += "; " + left
			}
		}
	}()
	if err != nil {
		return checkResult{inconclusive: fmt.Sprintf("data check job %s/%s could not be created, the data was not checked: %v", s.ns, name, err)}
	}
	var done *batchv1.Job
	err = wait.PollUntilContextCancel(ctx, s.pollInterval(), true, func(ctx context.Context) (bool, error) {
		j, err := jobs.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil // read again; the deadline decides
		}
		if j.UID != created.UID {
			return false, fmt.Errorf("job %s was replaced (UID %s, created %s)", name, j.UID, created.UID)
		}
		if jobCondition(j) != "" {
			done = j
			return true, nil
		}
		return false, nil
	})
	// Read the pod with a context of its own: the phase's may be spent.
	read, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	pod, perr := s.checkPod(read, created)
	if err != nil || done == nil {
		why := "did not finish within the recover phase"
		if err != nil && ctx.Err() == nil {
			why = err.Error()
		}
		return checkResult{inconclusive: fmt.Sprintf("data check job %s/%s %s, the data was not checked%s", s.ns, name, why, podWaiting(pod, perr))}
	}
	if pod == nil {
		return checkResult{inconclusive: fmt.Sprintf("data check job %s/%s ended %s but its pod could not be read, so its answer is unknown: %v", s.ns, name, jobCondition(done), perr)}
	}
	answered, killed := containerExits(pod, &job.Spec.Template.Spec)
	if len(answered) > 0 {
		c := answered[0]
		tail, _, _, lerr := s.readLog(read, pod.Name, c.name)
		return checkResult{failure: fmt.Sprintf("data check job %s/%s: the restored data failed the check (container %s exited %d)%s",
			s.ns, name, c.name, c.exit, quoted(tail, lerr))}
	}
	main := job.Spec.Template.Spec.Containers[0].Name
	if len(killed) > 0 || jobCondition(done) != string(batchv1.JobComplete) {
		tail, _, _, lerr := s.readLog(read, pod.Name, main)
		return checkResult{inconclusive: fmt.Sprintf("data check job %s/%s ended %s without an answer of the check's own (%s): the data was not checked%s",
			s.ns, name, jobCondition(done), noAnswer(pod, killed), quoted(tail, lerr))}
	}
	tail, newest, cut, lerr := s.readLog(read, pod.Name, main)
	r = checkResult{finding: fmt.Sprintf("data check job %s/%s passed (container %s exited 0)%s", s.ns, name, main, quoted(tail, lerr)),
		claims: podClaims(&job.Spec.Template.Spec)}
	switch {
	case lerr != nil:
		r.finding += "; RPO not from the data: its log could not be read"
	case cut:
		r.finding += fmt.Sprintf("; its log was truncated at the %d MiB drillbot reads, so the RPO is not taken from it", maxLog>>20)
	case newest.err != nil:
		// The check's answer stands; only its time is unreadable.
		r.finding += fmt.Sprintf("; its newest write cannot be read (%v), so the RPO is not taken from it", newest.err)
	case newest.ok:
		r.newest, r.source = &newest.at, "the newest write the data check found in the restored data (job "+name+")"
	default:
		r.finding += "; it reported no " + NewestPrefix + " line, so the RPO is not measured from the data"
	}
	return r
}

// podClaims are the PVCs a pod mounts.
func podClaims(spec *corev1.PodSpec) []string {
	var out []string
	for _, v := range spec.Volumes {
		if c := v.PersistentVolumeClaim; c != nil && !slices.Contains(out, c.ClaimName) {
			out = append(out, c.ClaimName)
		}
	}
	return out
}

// removeCheckJob deletes the run's check Job, if there is one of this run
// (a Job of that name that is not this run's is left alone), and says
// what it left behind.
func (s *scenario) removeCheckJob(ctx context.Context, name string) string {
	cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	jobs := s.deps.Kube.BatchV1().Jobs(s.ns)
	j, err := jobs.Get(cleanup, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return ""
	case err == nil && j.Labels[v1alpha1.LabelRun] != s.run:
		return ""
	case err == nil:
		err = jobs.Delete(cleanup, name, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground),
			Preconditions: &metav1.Preconditions{UID: &j.UID}})
		if err == nil || apierrors.IsNotFound(err) {
			return ""
		}
	}
	s.log.Warn("data check job not deleted; it removes itself after its TTL", "job", name, "ttl", dataCheckTTL, "err", err)
	return fmt.Sprintf("its Job %s/%s was not deleted (%v): it stays until it ends and then %s more", s.ns, name, err, dataCheckTTL)
}

// dataCheckJob is the check's Job: the drill's template, run once, with
// the run's facts in its environment.
func (s *scenario) dataCheckJob(ctx context.Context, name string, check *v1alpha1.JobCheck) *batchv1.Job {
	tpl := *check.Template.DeepCopy()
	tpl.Spec.RestartPolicy = corev1.RestartPolicyNever
	// Labelled with the run (no part of the inventory) and kept out of
	// Velero's backups: a restore must never bring an old check back.
	labels := map[string]string{v1alpha1.LabelRun: s.run, velerov1.ExcludeFromBackupLabel: "true"}
	if tpl.Labels == nil {
		tpl.Labels = map[string]string{}
	}
	maps.Copy(tpl.Labels, labels)
	env := []corev1.EnvVar{{Name: EnvBackup, Value: s.backup.Name}, {Name: EnvRun, Value: s.run}}
	if !s.disasterAt.IsZero() {
		env = append(env, corev1.EnvVar{Name: EnvDisasterTime, Value: s.disasterAt.UTC().Format(time.RFC3339Nano)})
	}
	for i := range tpl.Spec.Containers {
		tpl.Spec.Containers[i].Env = append(tpl.Spec.Containers[i].Env, env...)
	}
	// The check's deadline is the recover phase's, less the time to read
	// its outcome.
	deadline := int64(time.Hour.Seconds())
	if d, ok := ctx.Deadline(); ok {
		deadline = max(1, int64((time.Until(d) - deadlineMargin).Seconds()))
	}
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.ns, Labels: labels},
		Spec: batchv1.JobSpec{
			BackoffLimit:            ptr.To[int32](0),
			ActiveDeadlineSeconds:   ptr.To(deadline),
			TTLSecondsAfterFinished: ptr.To(int32(dataCheckTTL.Seconds())),
			Template:                tpl,
		},
	}
}

func (s *scenario) pollInterval() time.Duration {
	if s.deps.PollInterval > 0 {
		return s.deps.PollInterval
	}
	return time.Second
}

// checkPod is the check Job's pod: listed by the Job's UID, and only one
// the Job controls (anyone may set a label). No retries, so one.
func (s *scenario) checkPod(ctx context.Context, job *batchv1.Job) (*corev1.Pod, error) {
	pods, err := s.deps.Kube.CoreV1().Pods(s.ns).List(ctx, metav1.ListOptions{LabelSelector: batchv1.ControllerUidLabel + "=" + string(job.UID)})
	if err != nil {
		return nil, err
	}
	var own []*corev1.Pod
	for i := range pods.Items {
		if metav1.IsControlledBy(&pods.Items[i], job) {
			own = append(own, &pods.Items[i])
		}
	}
	switch len(own) {
	case 0:
		return nil, errors.New("the job made no pod")
	case 1:
		return own[0], nil
	}
	return nil, fmt.Errorf("the job controls %d pods, not one", len(own))
}

// jobCondition is the Job's final condition (Complete, Failed) and its
// reason, "" while it runs.
func jobCondition(j *batchv1.Job) string {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			if c.Type == batchv1.JobFailed && c.Reason != "" {
				return string(c.Type) + " (" + c.Reason + ")"
			}
			return string(c.Type)
		}
	}
	return ""
}

type exit struct {
	name   string
	exit   int32
	reason string
}

// containerExits sorts the check's containers (its init containers, not
// sidecars, then the others; spec is the Job's) that ended non-zero:
// answered, those that
// exited on their own (reason Error, code 1 to 128: the check's answer);
// killed, the others (a signal, out of memory, never started).
func containerExits(p *corev1.Pod, spec *corev1.PodSpec) (answered, killed []exit) {
	sidecar := map[string]bool{}
	for _, c := range spec.InitContainers {
		sidecar[c.Name] = c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
	}
	for _, cs := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		t := cs.State.Terminated
		if t == nil || t.ExitCode == 0 || sidecar[cs.Name] {
			continue
		}
		e := exit{cs.Name, t.ExitCode, t.Reason}
		if t.Reason == "Error" && t.ExitCode <= 128 {
			answered = append(answered, e)
		} else {
			killed = append(killed, e)
		}
	}
	return answered, killed
}

// noAnswer says why the check's pod gave no answer.
func noAnswer(p *corev1.Pod, killed []exit) string {
	var why []string
	for _, k := range killed {
		why = append(why, fmt.Sprintf("container %s ended %s, exit %d", k.name, k.reason, k.exit))
	}
	if p.Status.Reason != "" {
		why = append(why, "pod "+p.Status.Reason)
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue {
			why = append(why, "pod disrupted: "+c.Reason)
		}
	}
	if len(why) == 0 {
		return strings.TrimPrefix(podWaiting(p, nil), ": ")
	}
	return strings.Join(why, "; ")
}

// podWaiting says why the check's pod has not run, as far as it shows.
func podWaiting(p *corev1.Pod, err error) string {
	if p == nil {
		if err != nil {
			return ": " + err.Error()
		}
		return ""
	}
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil {
			return strings.TrimSpace(fmt.Sprintf(": pod %s %s, container %s waiting: %s %s", p.Name, p.Status.Phase, cs.Name, w.Reason, w.Message))
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Status != corev1.ConditionTrue && c.Message != "" {
			return fmt.Sprintf(": pod %s %s, %s: %s", p.Name, p.Status.Phase, c.Type, c.Message)
		}
	}
	return fmt.Sprintf(": pod %s %s", p.Name, p.Status.Phase)
}

type newestLine struct {
	at  time.Time
	ok  bool
	err error
}

// readLog streams a container's log, keeping its last lines and its last
// "drillbot-newest: <RFC 3339>" line; cut says it was longer than maxLog.
func (s *scenario) readLog(ctx context.Context, pod, container string) (tail []string, newest newestLine, cut bool, err error) {
	rc, err := s.deps.Logs.PodLog(ctx, s.ns, pod, container)
	if err != nil {
		return nil, newest, false, err
	}
	defer rc.Close()
	lr := &io.LimitedReader{R: rc, N: maxLog + 1}
	sc := bufio.NewScanner(lr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var last string
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), NewestPrefix); ok {
			last = strings.TrimSpace(v)
		}
		if len(line) > 200 {
			line = line[:200] + "..."
		}
		if tail = append(tail, line); len(tail) > 5 {
			tail = tail[1:]
		}
	}
	if err := sc.Err(); err != nil {
		return tail, newest, false, fmt.Errorf("read its log: %w", err)
	}
	if lr.N <= 0 {
		return tail, newest, true, nil
	}
	if last != "" {
		at, perr := time.Parse(time.RFC3339Nano, last)
		if perr != nil {
			newest.err = fmt.Errorf("%s %q is not an RFC 3339 time", NewestPrefix, last)
		} else {
			newest.at, newest.ok = at, true
		}
	}
	return tail, newest, false, nil
}

func quoted(tail []string, err error) string {
	switch {
	case err != nil:
		return "; its log could not be read: " + err.Error()
	case len(tail) == 0:
		return "; its log is empty"
	}
	return "; its log ends: " + strings.Join(tail, " | ")
}
