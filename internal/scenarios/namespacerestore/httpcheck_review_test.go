package namespacerestore

// Adversarial review of the http data check (httpcheck.go), the rule that
// every held volume is read by a check, and the rule that a check's
// newest write after the backup completed is INCONCLUSIVE (commit
// 563ab1d). Every TestReviewHTTP* below fails on the change as reviewed:
// each is a defect.

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
)

// servingPod is a pod Service db (app=db) selects, in phase, mounting
// claims; a Running one is Ready.
func servingPod(name string, phase corev1.PodPhase, claims ...string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", Labels: map[string]string{"app": "db"}},
		Status: corev1.PodStatus{Phase: phase}}
	if phase == corev1.PodRunning {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	}
	for _, c := range claims {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: c,
			VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: c}}})
	}
	return p
}

// TestReviewHTTPMergeHidesANewestWriteTheBackupCannotHold: with both
// checks, mergeChecks keeps only the older newest write, and dataTime
// applies the "newest write after the backup completed: INCONCLUSIVE"
// rule to that one alone. The http check here answers from data the
// restore never touched (the app behind Service db reads a database that
// was never deleted: same answer before and after, newest write 11:59:55,
// long after the backup completed at 11:00:30). Alone, the run is
// INCONCLUSIVE ("its answer is no evidence of the restore"); add a job
// check of another volume that passes with an older newest write and the
// http check's tell is thrown away: PASS, with PVC cache (mounted by the
// http check's pods) counted as read. Adding a check turned INCONCLUSIVE
// into PASS. Breaks EVIDENCE rule 2 (evidence tied to this run) and
// rule 1 (cache's data was never positively read).
func TestReviewHTTPMergeHidesANewestWriteTheBackupCannotHold(t *testing.T) {
	ctx := context.Background()
	jobNewest := httpBackupAt.Add(20 * time.Second) // in the backup: the job read restored data
	s := checkedVerify(t, jobNewest, httpBackupAt.Add(-time.Minute), httpBackupAt)
	kube := s.deps.Kube
	if _, err := kube.CoreV1().Services("shop").Create(ctx, dbService(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kube.CoreV1().Pods("shop").Create(ctx, servingPod("db-0", corev1.PodRunning, "cache"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Never deleted: it answers the same before and after, and holds every
	// write up to the disaster.
	s.httpCheck = &v1alpha1.HTTPCheck{Service: "db", Port: "http", Path: "/newest"}
	s.deps.Proxy, s.deps.PollInterval = &fakeProxy{data: liveData}, time.Millisecond
	s.disasterAt = httpDisaster
	if err := s.readDataBefore(ctx); err != nil {
		t.Fatal(err)
	}
	job := checkResult{finding: "data check job shop/drillbot-check-x passed (container check exited 0)", newest: &jobNewest,
		source: "the newest write the data check found in the restored data (job drillbot-check-x)", claims: []string{"data"}}
	// What verifyData does with both checks (http first, then the job).
	r := mergeChecks([]checkResult{s.runHTTPCheck(ctx), job})
	if r.failure != "" || r.inconclusive != "" {
		t.Fatalf("the checks did not pass: %+v", r)
	}
	s.checked = &r
	s.volumes, s.held = "2 of 2 bound PVCs have their data in backup shop-daily-1", []VolumeInfo{{PVCName: "data"}, {PVCName: "cache"}}
	v, err := s.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Failures) == 0 && v.Inconclusive == "" {
		t.Fatalf("PASS although the http check's newest write before the disaster (11:59:55) is after backup %s completed (11:00:30): its data was not restored; findings %q",
			s.backup.Name, strings.Join(v.Findings, "\n"))
	}
}

// localZoneProxy is an application that reads the before parameter's
// wall clock in its own zone, dropping the Z (a common parsing bug).
type localZoneProxy struct {
	app  *fakeProxy
	zone *time.Location
}

func (p localZoneProxy) ProxyGet(ctx context.Context, ns, scheme, svc, port, path string, params map[string]string) (io.ReadCloser, error) {
	t, err := time.Parse(time.RFC3339Nano, params[BeforeParam])
	if err != nil {
		return nil, err
	}
	local := time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), p.zone)
	return p.app.ProxyGet(ctx, ns, scheme, svc, port, path, map[string]string{BeforeParam: local.UTC().Format(time.RFC3339Nano)})
}

// TestReviewHTTPAnswerNewerThanItsQuestion: asked what it held at or
// before 11:00:00Z, the endpoint answers a newest write of 11:59:55Z. The
// answer contradicts its own question (an app reading `before` in its
// local zone, UTC-1 here, or ignoring it): it is not the contract's
// answer, and it is not what the backup holds. readDataBefore stores it
// anyway, the namespace is deleted, and after a perfect restore the same
// question gets the backup's answer (newest 11:00:20): FAIL "the restored
// data differs". The verdict is worse than the truth (rule 8), on an
// answer the contract says is INCONCLUSIVE ("answers otherwise"), and the
// contradiction was visible before the delete (rule 7: refuse, write
// nothing). Either refusing before the delete or INCONCLUSIVE after is
// accepted here; FAIL is not.
func TestReviewHTTPAnswerNewerThanItsQuestion(t *testing.T) {
	zone := time.FixedZone("app", -3600)
	s := httpScenario(nil, dbService(), servingPod("db-0", corev1.PodRunning, "data"))
	s.deps.Proxy = localZoneProxy{app: &fakeProxy{data: liveData}, zone: zone}
	if err := s.readDataBefore(context.Background()); err != nil {
		return // refused before the disaster: nothing deleted, no verdict on it
	}
	if s.before.Newest != nil && s.before.Newest.After(s.cut) {
		t.Logf("stored as the backup's contents: %s, asked as of %s", s.before, s.cut.Format(time.RFC3339))
	}
	// A perfect restore: the backup's data, by the same app.
	s.deps.Proxy = localZoneProxy{app: &fakeProxy{data: restoredData}, zone: zone}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := s.verifyData(ctx)
	if verdictOf(err) == "fail" {
		t.Fatalf("FAIL for a perfect restore, on an answer newer than its question: %v", err)
	}
}

// TestReviewHTTPNullAnswerIsNotAnAnswer: the contract is "HTTP 200 and a
// JSON object". An endpoint answering `null` (a handler whose store is not
// loaded yet, a proxy's empty reply) is not one: the type's doc says an
// endpoint that "answers otherwise, makes the run INCONCLUSIVE". But
// json.Decode of null into the struct is no error: it reads as "no write
// at all", and the run FAILs at once ("newest none, was ..."), without a
// retry. Errors are not evidence (rule 5); worse than the truth (rule 8).
func TestReviewHTTPNullAnswerIsNotAnAnswer(t *testing.T) {
	s := httpScenario(&fakeProxy{data: liveData}, dbService(), servingPod("db-0", corev1.PodRunning, "data"))
	if err := s.readDataBefore(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.deps.Proxy = &fakeProxy{body: "null"}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := s.verifyData(ctx)
	if got := verdictOf(err); got != "unknown" {
		t.Fatalf("an answer of `null` gave %s (%v), want INCONCLUSIVE (not the contract's JSON object)", got, err)
	}
}

// TestReviewHTTPFinishedPodsServeNothing: servedClaims intersects the
// claims of every pod the Service's selector matches, including pods that
// have finished (Succeeded, Failed). Those are never endpoints: the API
// server's proxy cannot reach them, and WaitWorkloadsReady skips them
// too. A finished pod carrying the app's labels (a migration or dump Job,
// a CronJob's pod with app=db) empties the intersection: "covers none",
// and the held volume data, which the only pod that can answer mounts,
// is called unread: INCONCLUSIVE when the truth is PASS (rule 8).
func TestReviewHTTPFinishedPodsServeNothing(t *testing.T) {
	objs := []runtime.Object{
		servingPod("db-0", corev1.PodRunning, "data"),
		servingPod("db-migrate-x7k2p", corev1.PodSucceeded), // a Job's pod with the app's labels, done
		servingPod("db-dump-29410560-abcde", corev1.PodFailed, "dump-scratch"),
	}
	s := httpScenario(&fakeProxy{}, objs...)
	claims, _, why := s.servedClaims(context.Background(), dbService())
	if strings.Join(claims, ",") != "data" {
		t.Fatalf("claims %v (%s), want data: the only pod that can answer mounts it", claims, why)
	}
}

// TestReviewHTTPServiceThatCannotBeEvidenceIsAskedBeforeTheDelete: the
// recover-side check refuses to credit an ExternalName Service, or one
// without a selector (endpoints made by hand): "its answer would not come
// from the restored data". Inject asks that very Service before the
// delete, takes its answer (the external database's) as what the backup
// holds, and deletes the namespace, although the run can then only be
// INCONCLUSIVE: an outage for a drill that cannot produce evidence, known
// before the delete from a Service drillbot may read (rule 7: before a
// fault, positive evidence the check can work; the before answer itself
// is out of scope, rule 6).
func TestReviewHTTPServiceThatCannotBeEvidenceIsAskedBeforeTheDelete(t *testing.T) {
	cases := []struct {
		name string
		svc  *corev1.Service
	}{
		{name: "ExternalName", svc: &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"}}},
		{name: "no selector", svc: &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop"},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 8080}}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objs := []runtime.Object{object("apps/v1", "Deployment", "web", started.Add(-time.Hour))}
			s, kube := contentsScenario(t, resourceList{list: map[string][]string{"apps/v1/Deployment": {"shop/web"}, "v1/Namespace": {"shop"}}}, objs...)
			if _, err := kube.CoreV1().Services("shop").Create(context.Background(), tc.svc, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			s.httpCheck = &v1alpha1.HTTPCheck{Service: "db", Port: "http", Path: "/newest"}
			s.deps.Proxy, s.deps.PollInterval = &fakeProxy{data: liveData}, time.Millisecond
			s.backup.CreationTimestamp = metav1.NewTime(httpBackupAt)
			s.backup.Status.StartTimestamp = &metav1.Time{Time: httpBackupAt}
			deleted, err := injectDeleted(t, s)
			if deleted {
				t.Fatalf("namespace deleted (err %v) for an http check whose Service (%s) the recover side never credits: the run can only be INCONCLUSIVE", err, tc.name)
			}
		})
	}
}
