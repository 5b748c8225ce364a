package namespacerestore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
)

// BeforeParam is the query parameter of an http data check: the answer
// covers the durable writes at or before this time (RFC 3339).
const BeforeParam = "before"

// maxAnswer bounds an http data check's answer.
const maxAnswer = 1 << 20

// ServiceProxy asks a Service's endpoint through the API server's service
// proxy.
type ServiceProxy interface {
	ProxyGet(ctx context.Context, ns, scheme, service, port, path string, params map[string]string) (io.ReadCloser, error)
}

// KubeProxy is the API server's service proxy (services/proxy get).
type KubeProxy struct{ Kube kubernetes.Interface }

// ProxyGet implements ServiceProxy. A status other than 2xx is an error.
func (k KubeProxy) ProxyGet(ctx context.Context, ns, scheme, service, port, path string, params map[string]string) (io.ReadCloser, error) {
	return k.Kube.CoreV1().Services(ns).ProxyGet(scheme, service, port, path, params).Stream(ctx)
}

// DataAnswer is what an http data check's endpoint says of the writes at
// or before a time.
type DataAnswer struct {
	Newest   *time.Time `json:"newest"`
	Count    *int64     `json:"count,omitempty"`
	Checksum *string    `json:"checksum,omitempty"`
}

func (a DataAnswer) String() string {
	var b strings.Builder
	if a.Newest == nil {
		b.WriteString("newest none")
	} else {
		b.WriteString("newest " + a.Newest.UTC().Format(time.RFC3339Nano))
	}
	if a.Count != nil {
		fmt.Fprintf(&b, ", count %d", *a.Count)
	}
	if a.Checksum != nil {
		fmt.Fprintf(&b, ", checksum %q", *a.Checksum)
	}
	return b.String()
}

// differs names every field of want that got does not answer the same.
func (a DataAnswer) differs(got DataAnswer) []string {
	var out []string
	if !sameTime(a.Newest, got.Newest) {
		out = append(out, fmt.Sprintf("newest %s, was %s", fmtTime(got.Newest), fmtTime(a.Newest)))
	}
	if a.Count != nil && (got.Count == nil || *got.Count != *a.Count) {
		out = append(out, fmt.Sprintf("count %s, was %d", fmtPtr(got.Count), *a.Count))
	}
	if a.Checksum != nil && (got.Checksum == nil || *got.Checksum != *a.Checksum) {
		out = append(out, fmt.Sprintf("checksum %s, was %q", fmtPtr(got.Checksum), *a.Checksum))
	}
	return out
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Equal(*b)
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "none"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func fmtPtr[T any](p *T) string {
	if p == nil {
		return "absent"
	}
	return fmt.Sprintf("%#v", *p)
}

// ProxyName is the name the API server's authorizer sees when an http
// data check asks its Service through the proxy (services/proxy): RBAC's
// resourceNames must hold it, not the Service's name.
func ProxyName(h *v1alpha1.HTTPCheck) string {
	if h.Scheme == "https" {
		return "https:" + h.Service + ":" + h.Port
	}
	return h.Service + ":" + h.Port
}

// httpTarget names the check's endpoint, for findings.
func (s *scenario) httpTarget() string {
	h := s.httpCheck
	scheme := h.Scheme
	if scheme == "" {
		scheme = "http"
	}
	return fmt.Sprintf("%s://%s.%s:%s%s", scheme, h.Service, s.ns, h.Port, h.Path)
}

// askData asks the check's endpoint once what it holds at or before t.
func (s *scenario) askData(ctx context.Context, t time.Time) (DataAnswer, error) {
	h := s.httpCheck
	ask, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	scheme := h.Scheme
	if scheme == "http" {
		scheme = "" // the name RBAC sees is then <service>:<port>, as ProxyName says
	}
	rc, err := s.deps.Proxy.ProxyGet(ask, s.ns, scheme, h.Service, h.Port, h.Path, map[string]string{BeforeParam: t.UTC().Format(time.RFC3339Nano)})
	if err != nil {
		return DataAnswer{}, err
	}
	defer rc.Close()
	body, err := io.ReadAll(io.LimitReader(rc, maxAnswer+1))
	if err != nil {
		return DataAnswer{}, fmt.Errorf("read its answer: %w", err)
	}
	if len(body) > maxAnswer {
		return DataAnswer{}, fmt.Errorf("its answer is longer than %d KiB", maxAnswer>>10)
	}
	var a DataAnswer
	dec := json.NewDecoder(bytes.NewReader(body))
	err = dec.Decode(&a)
	if err == nil && !bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
		err = errors.New("not an object")
	}
	if err == nil && dec.More() {
		err = errors.New("more than one JSON value")
	}
	if err != nil {
		return DataAnswer{}, fmt.Errorf("its answer is not the JSON object of a data check (newest, count, checksum): %w: %.200q", err, body)
	}
	if a.Newest != nil && a.Newest.After(t) {
		// Not the contract's answer: a write newer than the question.
		return DataAnswer{}, fmt.Errorf("asked for the writes at or before %s, it answered a newest write at %s (does it read %s as RFC 3339, zone included?)",
			t.UTC().Format(time.RFC3339Nano), a.Newest.UTC().Format(time.RFC3339Nano), BeforeParam)
	}
	return a, nil
}

// askDataRetrying asks until the endpoint answers or ctx ends; the error
// is the last one.
func (s *scenario) askDataRetrying(ctx context.Context, t time.Time) (DataAnswer, error) {
	var a DataAnswer
	var last error
	err := wait.PollUntilContextCancel(ctx, s.pollInterval(), true, func(ctx context.Context) (bool, error) {
		a, last = s.askData(ctx, t)
		return last == nil, nil
	})
	if err != nil {
		if last == nil {
			last = err
		}
		return a, last
	}
	return a, nil
}

// checkHTTPService refuses a Service whose answer after the restore could
// not be evidence (known before any write: Preflight calls it, and Inject
// again right before the delete).
func (s *scenario) checkHTTPService(ctx context.Context) error {
	if s.httpCheck == nil {
		return nil
	}
	svc, err := s.deps.Kube.CoreV1().Services(s.ns).Get(ctx, s.httpCheck.Service, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("the http data check's Service %s/%s could not be read before the disaster: %w", s.ns, s.httpCheck.Service, err)
	}
	if why := notEvidence(svc); why != "" {
		return fmt.Errorf("the http data check %s %s", s.httpTarget(), why)
	}
	if _, ambiguous, why := s.servedClaims(ctx, svc); ambiguous {
		return fmt.Errorf("the http data check %s%s", s.httpTarget(), why)
	}
	return nil
}

// readDataBefore asks the endpoint, before the disaster, what it holds as
// of the backup's start: every write of that answer is in the backup.
// Three tries, then no answer is an error (the run makes no write).
func (s *scenario) readDataBefore(ctx context.Context) error {
	if s.httpCheck == nil {
		return nil
	}
	if s.backup.Status.StartTimestamp == nil {
		return fmt.Errorf("velero backup %s has no start time: the http data check cannot tell which writes it holds", s.backup.Name)
	}
	// The earlier of Velero's clock and the API server's (the Backup
	// object's creation), less a margin for the application's clock: the
	// backup started after both, so it holds every write before either.
	cut := s.backup.Status.StartTimestamp.Time
	if c := s.backup.CreationTimestamp.Time; !c.IsZero() && c.Before(cut) {
		cut = c
	}
	cut = cut.Add(-ClockMargin)
	// Again, as close to the delete as it can be.
	if err := s.checkHTTPService(ctx); err != nil {
		return err
	}
	var a DataAnswer
	var err error
	for try := 0; try < 3; try++ {
		if try > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(s.pollInterval()):
			}
		}
		if a, err = s.askData(ctx, cut); err == nil || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("the http data check's endpoint %s did not answer before the disaster, so the restored data could not be compared: %w", s.httpTarget(), err)
	}
	if a.Newest == nil {
		return fmt.Errorf("the http data check's endpoint %s reports no write at or before %s, when backup %s started: the restored data would be compared with nothing",
			s.httpTarget(), cut.UTC().Format(time.RFC3339), s.backup.Name)
	}
	s.before, s.cut = &a, cut
	return nil
}

// runHTTPCheck asks the restored application's endpoint again, as of the
// backup's start (it must answer what it answered before the disaster),
// then as of the disaster (its newest write is the RPO's).
func (s *scenario) runHTTPCheck(ctx context.Context) checkResult {
	target := s.httpTarget()
	read, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	// The answer must come from the restored namespace's pods, not from
	// elsewhere (an ExternalName, endpoints made by hand).
	svc, err := s.deps.Kube.CoreV1().Services(s.ns).Get(read, s.httpCheck.Service, metav1.GetOptions{})
	if err != nil {
		return checkResult{inconclusive: fmt.Sprintf("http data check %s: its Service could not be read, the data was not checked: %v", target, err)}
	}
	if why := notEvidence(svc); why != "" {
		return checkResult{inconclusive: fmt.Sprintf("http data check %s %s", target, why)}
	}
	claims, ambiguous, why := s.servedClaims(read, svc)
	if ambiguous {
		return checkResult{inconclusive: fmt.Sprintf("http data check %s%s", target, why)}
	}
	got, err := s.askDataRetrying(ctx, s.cut)
	if err != nil {
		return checkResult{inconclusive: fmt.Sprintf("http data check %s did not answer within the recover phase, the data was not checked: %v", target, err)}
	}
	cut := s.cut.UTC().Format(time.RFC3339)
	if d := s.before.differs(got); len(d) > 0 {
		return checkResult{failure: fmt.Sprintf("http data check %s: the restored data differs from what it held before the disaster, as of %s (backup %s's start, less %s for clocks): %s",
			target, cut, s.backup.Name, ClockMargin, strings.Join(d, "; "))}
	}
	r := checkResult{finding: fmt.Sprintf("http data check %s passed: as of %s (backup %s's start, less %s for clocks) the restored data answers as before the disaster (%s)%s",
		target, cut, s.backup.Name, ClockMargin, s.before, why), claims: claims}
	if s.disasterAt.IsZero() {
		r.finding += "; the disaster's time is unknown, so the RPO is not measured from the data"
		return r
	}
	// The endpoint just answered: a short while for the second question,
	// which only refines the RPO (the recover phase is the RTO's).
	refine, cancelRefine := context.WithTimeout(ctx, 30*time.Second)
	defer cancelRefine()
	latest, err := s.askDataRetrying(refine, s.disasterAt)
	switch {
	case err != nil:
		r.finding += fmt.Sprintf("; its newest write before the disaster could not be read (%v), so the RPO is not measured from the data", err)
	case latest.Newest == nil || latest.Newest.Before(*got.Newest) || (latest.Count != nil && got.Count != nil && *latest.Count < *got.Count):
		// Fewer writes before the disaster than before the backup: the
		// answers contradict each other.
		return checkResult{inconclusive: fmt.Sprintf("http data check %s: its answers contradict each other: as of the disaster (%s) %s, as of the backup's start %s",
			target, s.disasterAt.UTC().Format(time.RFC3339Nano), latest, got)}
	default:
		r.newest, r.source = latest.Newest, "the newest write before the disaster the http data check's endpoint found in the restored data ("+target+")"
	}
	return r
}

// ClockMargin is taken off the backup's start for the http check's
// question: writes stamped by an application clock up to this much behind
// Velero's are still asked only when the backup holds them.
const ClockMargin = 2 * time.Second

// notEvidence says why the Service's answer could not come from the
// namespace's pods ("" when it can).
func notEvidence(svc *corev1.Service) string {
	switch {
	case svc.Spec.Type == corev1.ServiceTypeExternalName:
		return fmt.Sprintf("asks Service %s/%s, an ExternalName %s: its answer would not come from the restored data", svc.Namespace, svc.Name, svc.Spec.ExternalName)
	case len(svc.Spec.Selector) == 0:
		return fmt.Sprintf("asks Service %s/%s, which selects no pods (no selector: endpoints made by hand): its answer would not come from the restored data", svc.Namespace, svc.Name)
	}
	return ""
}

// servedClaims are the PVCs the pods that can answer for the Service (those
// it selects that are Ready) mount: the data its answer comes from,
// whichever pod answers. ambiguous: the pods mount different claims, so
// the answers may come from different data (replicas of their own). why
// says what is and is not covered.
func (s *scenario) servedClaims(ctx context.Context, svc *corev1.Service) (claims []string, ambiguous bool, why string) {
	pods, err := s.deps.Kube.CoreV1().Pods(s.ns).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(svc.Spec.Selector).String()})
	if err != nil {
		return nil, false, fmt.Sprintf("; which volumes it read is unknown (the pods it selects could not be listed: %v)", err)
	}
	var serving []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning || !podReady(&p) {
			continue // cannot answer
		}
		mine := podClaims(&p.Spec)
		slices.Sort(mine)
		if len(serving) > 0 && !slices.Equal(claims, mine) {
			return nil, true, fmt.Sprintf(": Service %s/%s selects pods that mount different volumes (%s: %s; %s: %s), so its answers may come from different data; point it at one pod",
				s.ns, svc.Name, serving[0], strings.Join(claims, ", "), p.Name, strings.Join(mine, ", "))
		}
		claims = mine
		serving = append(serving, p.Name)
	}
	switch {
	case len(serving) == 0:
		return nil, false, "; which volumes it read is unknown (the Service selects no Ready pod now)"
	case len(claims) == 0:
		return nil, false, fmt.Sprintf("; the pods that answer for it (%s) mount no volume", strings.Join(serving, ", "))
	}
	return claims, false, fmt.Sprintf("; it read PVCs %s", strings.Join(claims, ", "))
}
