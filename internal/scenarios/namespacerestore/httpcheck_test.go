package namespacerestore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/engine"
)

// writes is an application's data: the times of its durable writes.
type writes []time.Time

// every is a write each step from from to to, inclusive.
func every(from, to time.Time, step time.Duration) writes {
	var w writes
	for t := from; !t.After(to); t = t.Add(step) {
		w = append(w, t)
	}
	return w
}

// answer is what the application's endpoint says of its writes at or
// before t: the contract of spec.verify.http.
func (w writes) answer(t time.Time) DataAnswer {
	var a DataAnswer
	h := sha256.New()
	n := int64(0)
	for _, at := range w {
		if at.After(t) {
			continue
		}
		n++
		fmt.Fprintln(h, at.UTC().Format(time.RFC3339Nano))
		at := at
		a.Newest = &at
	}
	sum := hex.EncodeToString(h.Sum(nil))
	a.Count, a.Checksum = &n, &sum
	return a
}

// fakeProxy answers from data, or with err, and counts the asks.
type fakeProxy struct {
	data  writes
	body  string // a fixed answer instead of data's
	err   error
	asked []string
}

func (p *fakeProxy) ProxyGet(_ context.Context, ns, scheme, svc, port, path string, params map[string]string) (io.ReadCloser, error) {
	p.asked = append(p.asked, fmt.Sprintf("%s %s:%s:%s%s?before=%s", ns, scheme, svc, port, path, params[BeforeParam]))
	if p.err != nil {
		return nil, p.err
	}
	if p.body != "" {
		return io.NopCloser(strings.NewReader(p.body)), nil
	}
	t, err := time.Parse(time.RFC3339Nano, params[BeforeParam])
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(p.data.answer(t))
	return io.NopCloser(strings.NewReader(string(b))), nil
}

var (
	httpBackupAt = time.Date(2026, 12, 5, 11, 0, 0, 0, time.UTC) // the backup starts; it completes 30s later
	httpDisaster = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	// before the disaster: a write every 10s since 10:00
	liveData = every(httpBackupAt.Add(-time.Hour), httpDisaster.Add(-5*time.Second), 10*time.Second)
	// restored: what the backup's snapshot held (to 11:00:20), then the
	// restored app's own writes after the restore
	restoredData = append(every(httpBackupAt.Add(-time.Hour), httpBackupAt.Add(20*time.Second), 10*time.Second),
		every(httpDisaster.Add(time.Minute), httpDisaster.Add(2*time.Minute), 10*time.Second)...)
)

func dbService() *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "db"}, Ports: []corev1.ServicePort{{Name: "http", Port: 8080}}}}
}

// httpScenario is a scenario with the drill's http check of Service db,
// its backup made at httpBackupAt, the disaster at httpDisaster.
func httpScenario(p *fakeProxy, objs ...runtime.Object) *scenario {
	s := checkScenario(fake.NewClientset(objs...), &podLogs{})
	s.check = nil
	s.httpCheck = &v1alpha1.HTTPCheck{Service: "db", Port: "http", Path: "/newest"}
	s.deps.Proxy = p
	s.backup = backup("shop-daily-1", "shop-daily", velerov1.BackupPhaseCompleted, "shop")
	s.backup.CreationTimestamp = metav1.NewTime(httpBackupAt)
	s.backup.Status.StartTimestamp = &metav1.Time{Time: httpBackupAt}
	s.backup.Status.CompletionTimestamp = &metav1.Time{Time: httpBackupAt.Add(30 * time.Second)}
	s.disasterAt = httpDisaster
	return s
}

// TestHTTPCheck: the answer before the disaster, as of the backup's start,
// is read from the live data; after the restore the same question must
// get the same answer, and the newest write before the disaster is the
// RPO's.
func TestHTTPCheck(t *testing.T) {
	restoredNewest := httpBackupAt.Add(20 * time.Second)
	cases := []struct {
		name     string
		after    *fakeProxy
		svc      *corev1.Service
		want     string // pass, fail, unknown
		reason   string
		newest   *time.Time
		deadline time.Duration
	}{
		{name: "the backup's data is back", after: &fakeProxy{data: restoredData}, want: "pass", newest: &restoredNewest},
		{name: "the volume came back empty: only the restored app's new writes",
			after: &fakeProxy{data: every(httpDisaster.Add(time.Minute), httpDisaster.Add(2*time.Minute), 10*time.Second)},
			want:  "fail", reason: "newest none, was 2026-12-05T10:59:50Z; count 0, was 360"},
		{name: "one write lost before the backup", after: &fakeProxy{data: append(writes{}, restoredData[1:]...)},
			want: "fail", reason: "count 359, was 360; checksum"},
		{name: "an endpoint without count or checksum", after: &fakeProxy{body: `{"newest":"2026-12-05T10:59:50Z"}`},
			want: "fail", reason: "count absent, was 360"},
		{name: "no answer within the recover phase", after: &fakeProxy{err: errors.New(`the server is currently unable to handle the request (get services http:db:http)`)},
			want: "unknown", reason: "did not answer within the recover phase", deadline: 50 * time.Millisecond},
		{name: "an answer that is not the contract's", after: &fakeProxy{body: "<html>ok</html>"},
			want: "unknown", reason: "not the JSON object of a data check", deadline: 50 * time.Millisecond},
		{name: "an answer without the checksum it had", after: &fakeProxy{body: `{"newest":"2026-12-05T10:59:50Z","count":360}`},
			want: "fail", reason: "checksum absent"},
		{name: "an ExternalName service: the data is elsewhere", after: &fakeProxy{data: liveData},
			svc:  &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"}},
			want: "unknown", reason: "ExternalName db.example.com"},
		{name: "endpoints made by hand", after: &fakeProxy{data: liveData},
			svc:  &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop"}},
			want: "unknown", reason: "endpoints made by hand"},
		{name: "no Service", after: &fakeProxy{data: restoredData}, svc: &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "shop"}},
			want: "unknown", reason: "its Service could not be read"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			live := &fakeProxy{data: liveData}
			s := httpScenario(live, dbService(), servingPod("db-0", corev1.PodRunning, "data"))
			if err := s.readDataBefore(context.Background()); err != nil {
				t.Fatal(err)
			}
			// The restore brings back another Service than the one asked
			// before the disaster.
			if tc.svc != nil {
				tracker := s.deps.Kube.(*fake.Clientset).Tracker()
				gvr := corev1.SchemeGroupVersion.WithResource("services")
				if err := tracker.Delete(gvr, "shop", "db"); err != nil {
					t.Fatal(err)
				}
				if err := tracker.Add(tc.svc); err != nil {
					t.Fatal(err)
				}
			}
			s.deps.Proxy = tc.after
			ctx := context.Background()
			if tc.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.deadline)
				defer cancel()
			}
			err := s.verifyData(ctx)
			if got := verdictOf(err); got != tc.want {
				t.Fatalf("got %s (%v; %+v), want %s", got, err, s.checked, tc.want)
			}
			if tc.reason != "" && (err == nil || !strings.Contains(err.Error(), tc.reason)) {
				t.Errorf("reason %v, want it to say %q", err, tc.reason)
			}
			if !sameTime(s.checked.newest, tc.newest) {
				t.Errorf("newest %v, want %v", fmtTime(s.checked.newest), fmtTime(tc.newest))
			}
			if tc.want == "pass" && !strings.Contains(s.checked.source, "http data check") {
				t.Errorf("RPO source %q, want the http check named", s.checked.source)
			}
		})
	}
}

// The question asked before the disaster and again after it is as of the
// earlier of Velero's clock (the backup's start) and the API server's (the
// Backup object's creation): with Velero's clock ahead, a write stamped
// between the two is in the backup but would be asked for at neither.
func TestHTTPCheckCutIsTheEarlierClock(t *testing.T) {
	p := &fakeProxy{data: liveData}
	s := httpScenario(p, dbService())
	s.backup.CreationTimestamp = metav1.NewTime(httpBackupAt.Add(-time.Minute))
	if err := s.readDataBefore(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := "shop :db:http/newest?before=2026-12-05T10:58:58Z"; len(p.asked) != 1 || p.asked[0] != want {
		t.Fatalf("asked %q, want %q", p.asked, want)
	}
}

// Before the disaster: an endpoint that does not answer, or has no write
// older than the backup (nothing to compare the restored data with), or a
// Service whose answer could not be evidence after the restore (not the
// namespace's pods, or replicas of their own data), stops the drill
// before its first write.
func TestInjectRefusesWithoutAnAnswerBeforeTheDisaster(t *testing.T) {
	cases := []struct {
		name   string
		proxy  *fakeProxy
		svc    *corev1.Service
		pods   []runtime.Object
		reason string
	}{
		{name: "no answer", proxy: &fakeProxy{err: errors.New("503")}, reason: "did not answer before the disaster"},
		{name: "no write before the backup", proxy: &fakeProxy{data: every(httpBackupAt.Add(time.Second), httpDisaster, time.Minute)},
			reason: "reports no write at or before 2026-12-05T10:59:58Z"},
		{name: "an ExternalName Service", proxy: &fakeProxy{data: liveData}, svc: &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"}}, reason: "ExternalName db.example.com"},
		{name: "replicas with their own data", proxy: &fakeProxy{data: liveData}, pods: []runtime.Object{servingPod("db-1", corev1.PodRunning, "data-1")},
			reason: "mount different volumes"},
		{name: "no Service", proxy: &fakeProxy{data: liveData}, svc: &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "shop"}},
			reason: "could not be read before the disaster"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objs := []runtime.Object{object("apps/v1", "Deployment", "web", started.Add(-time.Hour))}
			s, _ := contentsScenario(t, resourceList{list: map[string][]string{"apps/v1/Deployment": {"shop/web"}, "v1/Namespace": {"shop"}}}, objs...)
			s.httpCheck = &v1alpha1.HTTPCheck{Service: "db", Port: "http", Path: "/newest"}
			s.deps.Proxy, s.deps.PollInterval = tc.proxy, time.Millisecond
			svc := tc.svc
			if svc == nil {
				svc = dbService()
			}
			for _, o := range append([]runtime.Object{svc, servingPod("db-0", corev1.PodRunning, "data")}, tc.pods...) {
				if err := s.deps.Kube.(*fake.Clientset).Tracker().Add(o); err != nil {
					t.Fatal(err)
				}
			}
			s.backup.CreationTimestamp = metav1.NewTime(httpBackupAt)
			s.backup.Status.StartTimestamp = &metav1.Time{Time: httpBackupAt}
			deleted, err := injectDeleted(t, s)
			if deleted || !engine.IsUnknown(err) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("deleted %v, err %v: want INCONCLUSIVE before any write, saying %q", deleted, err, tc.reason)
			}
		})
	}
}

// Velero's counters are no proof the data is back: a drill whose volumes
// were restored but whose data no check read is not PASS, volume by
// volume (a check of one of two volumes says nothing of the other).
func TestVerifyVolumesWithoutADataCheckAreNotAPass(t *testing.T) {
	cases := []struct {
		name   string
		read   []string // the claims the checks read; nil: no check
		unread string
	}{
		{name: "no check", unread: "the data of 2 restored volumes was not read (data, cache)"},
		{name: "a check of both", read: []string{"cache", "data"}},
		{name: "a check of one", read: []string{"data"}, unread: "the data of 1 restored volumes was not read (cache)"},
		{name: "a check of no volume", read: []string{}, unread: "the data of 2 restored volumes was not read (data, cache)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := checkedVerify(t, httpBackupAt.Add(-time.Hour), httpBackupAt.Add(-time.Hour), httpBackupAt)
			s.volumes, s.held = "2 of 2 bound PVCs have their data in backup shop-daily-1", []VolumeInfo{{PVCName: "data"}, {PVCName: "cache"}}
			if tc.read == nil {
				s.check, s.checked = nil, nil
			} else {
				s.checked.claims = tc.read
			}
			v, err := s.Verify(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(v.Inconclusive, "was not read"); got != (tc.unread != "") || !strings.Contains(v.Inconclusive, tc.unread) {
				t.Fatalf("inconclusive %q, want %q", v.Inconclusive, tc.unread)
			}
		})
	}
}

// Which volumes a check read: the job's, the claims its template mounts;
// the http check's, the claims every pod its Service selects mounts
// (whichever pod answered).
func TestChecksReadClaims(t *testing.T) {
	if got := podClaims(&servingPod("check", corev1.PodRunning, "data", "cache", "data").Spec); strings.Join(got, ",") != "data,cache" {
		t.Errorf("job claims %v", got)
	}
	cases := []struct {
		name      string
		pods      []runtime.Object
		want      string
		ambiguous bool
		why       string
	}{
		{name: "one pod", pods: []runtime.Object{servingPod("db-0", corev1.PodRunning, "data-db-0")}, want: "data-db-0"},
		{name: "replicas sharing a volume", pods: []runtime.Object{servingPod("web-1", corev1.PodRunning, "shared"), servingPod("web-2", corev1.PodRunning, "shared")}, want: "shared"},
		{name: "replicas with their own volumes", pods: []runtime.Object{servingPod("db-0", corev1.PodRunning, "data-db-0"), servingPod("db-1", corev1.PodRunning, "data-db-1")},
			ambiguous: true, why: "mount different volumes"},
		{name: "replicas without volumes", pods: []runtime.Object{servingPod("web-1", corev1.PodRunning), servingPod("web-2", corev1.PodRunning)}, why: "mount no volume"},
		{name: "a pod not Ready cannot answer", pods: []runtime.Object{servingPod("db-0", corev1.PodRunning, "data-db-0"), servingPod("db-1", corev1.PodPending, "data-db-1")}, want: "data-db-0"},
		{name: "no pod", why: "selects no Ready pod"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := httpScenario(&fakeProxy{}, tc.pods...)
			claims, ambiguous, why := s.servedClaims(context.Background(), dbService())
			if strings.Join(claims, ",") != tc.want || ambiguous != tc.ambiguous || !strings.Contains(why, tc.why) {
				t.Fatalf("claims %v ambiguous %v (%s), want %q %v (%s)", claims, ambiguous, why, tc.want, tc.ambiguous, tc.why)
			}
		})
	}
}

// A data check's newest write between the backup's completion and the
// disaster cannot have come from the backup: what it read was not (only)
// restored, so its answer is no evidence of the restore. A newest write
// after the disaster is the restored app's own: not the RPO's, a finding.
func TestVerifyDataCheckNewestAfterTheBackup(t *testing.T) {
	cases := []struct {
		name         string
		newest       time.Time
		inconclusive bool
	}{
		{name: "in the backup", newest: httpBackupAt.Add(20 * time.Second)},
		{name: "after the backup, before the disaster", newest: httpDisaster.Add(-5 * time.Second), inconclusive: true},
		{name: "after the disaster", newest: httpDisaster.Add(time.Minute)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := checkedVerify(t, tc.newest, httpBackupAt.Add(-time.Minute), httpBackupAt)
			v, err := s.Verify(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(v.Inconclusive, "its answer is no evidence of the restore"); got != tc.inconclusive {
				t.Fatalf("inconclusive %q, want %v", v.Inconclusive, tc.inconclusive)
			}
			if fromData := v.DataTimestamp != nil && v.DataTimestamp.Equal(tc.newest); fromData == (tc.name != "in the backup") {
				t.Errorf("data time %v (%s) for a newest write %s", v.DataTimestamp, v.RPOSource, tc.newest)
			}
		})
	}
}

// With both checks, the older newest write measures the RPO (the larger
// RPO: never better than the truth), and a failure of either FAILs.
func TestMergeChecks(t *testing.T) {
	a, b := httpBackupAt, httpBackupAt.Add(10*time.Second)
	m := mergeChecks([]checkResult{{finding: "http ok", newest: &b, source: "http"}, {finding: "job ok", newest: &a, source: "job"}})
	if m.failure != "" || m.inconclusive != "" || m.source != "job" || !m.newest.Equal(a) || m.finding != "http ok; job ok" {
		t.Fatalf("merged %+v", m)
	}
	m = mergeChecks([]checkResult{{inconclusive: "http no answer"}, {failure: "job exited 1"}})
	if m.failure != "job exited 1" || m.inconclusive != "http no answer" {
		t.Fatalf("merged %+v", m)
	}
}

// The real transport: the API server's service proxy, the time in the
// query, a status other than 2xx an error.
func TestKubeProxy(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.Path + "?" + r.URL.RawQuery
		if strings.Contains(r.URL.Path, "down") {
			http.Error(w, "no endpoints available for service", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, `{"newest":"2026-12-05T11:00:20Z","count":361,"checksum":"ab"}`)
	}))
	defer srv.Close()
	kc, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	s := httpScenario(nil)
	s.deps.Proxy = KubeProxy{Kube: kc}
	a, err := s.askData(context.Background(), httpDisaster)
	if err != nil || a.String() != `newest 2026-12-05T11:00:20Z, count 361, checksum "ab"` {
		t.Fatalf("answer %s (%v)", a, err)
	}
	if want := "/api/v1/namespaces/shop/services/db:http/proxy/newest?before=2026-12-05T12%3A00%3A00Z"; got != want {
		t.Errorf("asked %s, want %s", got, want)
	}
	s.httpCheck.Service = "down"
	if _, err := s.askData(context.Background(), httpDisaster); err == nil {
		t.Fatal("a 503 taken for an answer")
	}
}
