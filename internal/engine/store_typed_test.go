package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
)

// TestListTypedReadsEveryPageAsTheDynamicPathDoes: List through REST
// follows the continue tokens, passes the selector, keeps raw JSON (the
// journal's undo) byte for byte, and an API error stays one.
func TestListTypedReadsEveryPageAsTheDynamicPathDoes(t *testing.T) {
	undo := `{"original":"a\u0000b","resourceVersion":"7"}`
	pages := []string{
		`{"apiVersion":"drillbot.io/v1alpha1","kind":"DrillRunList","metadata":{"continue":"c1"},"items":[` +
			`{"metadata":{"name":"r1","namespace":"drillbot-system"},"spec":{"drill":"d"},"status":{"phase":"Completed","verdict":"PASS","journal":[{"id":"1","undo":` + undo + `}]}}]}`,
		`{"apiVersion":"drillbot.io/v1alpha1","kind":"DrillRunList","metadata":{},"items":[{"metadata":{"name":"r2"},"spec":{"drill":"d"}}]}`,
	}
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/apis/drillbot.io/v1alpha1/namespaces/drillbot-system/drillruns" {
			http.Error(w, r.URL.Path, http.StatusNotFound)
			return
		}
		q := r.URL.Query()
		seen = append(seen, fmt.Sprintf("limit=%s selector=%s continue=%s", q.Get("limit"), q.Get("labelSelector"), q.Get("continue")))
		w.Header().Set("Content-Type", "application/json")
		if q.Get("continue") == "c1" {
			_, _ = w.Write([]byte(pages[1]))
			return
		}
		_, _ = w.Write([]byte(pages[0]))
	}))
	defer srv.Close()
	kube, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	s := &KubeStore{Namespace: "drillbot-system", REST: kube.CoreV1().RESTClient()}
	runs, err := s.List(context.Background(), v1alpha1.LabelDrill+"=d")
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[0].Name != "r1" || runs[1].Name != "r2" || runs[0].Status.Verdict != v1alpha1.VerdictPass {
		t.Fatalf("runs %+v", runs)
	}
	if got := string(runs[0].Status.Journal[0].Undo); got != undo {
		t.Errorf("undo %s, want %s byte for byte", got, undo)
	}
	want := []string{"limit=250 selector=drillbot.io/drill=d continue=", "limit=250 selector=drillbot.io/drill=d continue=c1"}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("requests %v, want %v", seen, want)
	}

	forbidden := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_ = json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403, "message": "no"})
	}))
	defer forbidden.Close()
	kube, _ = kubernetes.NewForConfig(&rest.Config{Host: forbidden.URL})
	if _, err := (&KubeStore{Namespace: "x", REST: kube.CoreV1().RESTClient()}).List(context.Background(), ""); !apierrors.IsForbidden(err) {
		t.Errorf("a 403: %v, want an API error that says Forbidden", err)
	}
}

// TestContinueToken: the token is read before the items, after them, or
// absent; a body that is no list object is an error.
func TestContinueToken(t *testing.T) {
	for _, tc := range []struct {
		raw, want string
		err       bool
	}{
		{`{"kind":"DrillRunList","metadata":{"continue":"c1","resourceVersion":"5"},"items":[{"metadata":{"name":"x"}}]}`, "c1", false},
		{`{"items":[{"metadata":{"name":"x","continue":"not this"}}],"metadata":{"continue":"c2"}}`, "c2", false},
		{`{"kind":"DrillRunList","metadata":{},"items":[]}`, "", false},
		{`{"kind":"DrillRunList"}`, "", false},
		{`[1,2]`, "", true},
		{`{"metadata":{"continue":`, "", true},
	} {
		got, err := continueToken([]byte(tc.raw))
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("%s: %q, %v; want %q (error %v)", tc.raw, got, err, tc.want, tc.err)
		}
	}
}

// TestListTypedKeepsEveryPage: many pages, each decoded while the next is
// fetched, all come back in order (a page lost between the fetch and the
// decode would leave a drill's newest run out of the report).
func TestListTypedKeepsEveryPage(t *testing.T) {
	const n = 64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var i int
		if c := r.URL.Query().Get("continue"); c != "" {
			_, _ = fmt.Sscan(c, &i)
		}
		cont := ""
		if i+1 < n {
			cont = fmt.Sprint(i + 1)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"metadata":{"continue":%q},"items":[{"metadata":{"name":"r%02d"}}]}`, cont, i)
	}))
	defer srv.Close()
	kube, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL, QPS: -1})
	if err != nil {
		t.Fatal(err)
	}
	runs, err := (&KubeStore{Namespace: "drillbot-system", REST: kube.CoreV1().RESTClient()}).List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != n {
		t.Fatalf("%d runs, want %d", len(runs), n)
	}
	for i, r := range runs {
		if r.Name != fmt.Sprintf("r%02d", i) {
			t.Fatalf("run %d is %s", i, r.Name)
		}
	}
}
