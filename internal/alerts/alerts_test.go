package alerts_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/drillbot-io/drillbot/internal/alerts"
)

// gettable is one alert as Alertmanager's API v2 returns it.
func gettable(name, state string) string {
	return fmt.Sprintf(`{"labels":{"alertname":%q,"severity":"critical"},"annotations":{},"receivers":[{"name":"x"}],
"fingerprint":"%x","startsAt":"2026-11-24T03:00:00Z","endsAt":"2026-11-24T04:00:00Z","updatedAt":"2026-11-24T03:00:00Z",
"status":{"state":%q,"silencedBy":[],"inhibitedBy":[]}}`, name, name, state)
}

// TestActiveKeepsUnprocessedAlerts: an alert Alertmanager has received but
// not yet routed ("unprocessed") is active all the same. A stop condition
// must see it (on doubt, no fault); an expected alert is told it was not
// notified yet.
func TestActiveKeepsUnprocessedAlerts(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v2/alerts" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, "["+strings.Join([]string{gettable("Active", "active"), gettable("Silenced", "suppressed"), gettable("New", "unprocessed")}, ",")+"]")
	}))
	defer srv.Close()
	am, err := alerts.NewAlertmanager(srv.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := am.Active(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, a := range got {
		switch {
		case a.Suppressed:
			states[a.Name] = "suppressed"
		case a.Unprocessed:
			states[a.Name] = "unprocessed"
		default:
			states[a.Name] = "active"
		}
		if a.Notified() != (states[a.Name] == "active") {
			t.Errorf("%s: notified %t", a.Name, a.Notified())
		}
	}
	want := map[string]string{"Active": "active", "Silenced": "suppressed", "New": "unprocessed"}
	if fmt.Sprint(states) != fmt.Sprint(want) {
		t.Errorf("alerts %v, want %v", states, want)
	}
}

func TestScope(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		labels   map[string]string
		matches  bool
	}{
		{in: "cluster=prod-eu", want: `cluster="prod-eu"`, labels: map[string]string{"cluster": "prod-eu"}, matches: true},
		{in: `cluster="prod-eu"`, want: `cluster="prod-eu"`, labels: map[string]string{"cluster": "prod-us"}},
		{in: "cluster=prod-eu", want: `cluster="prod-eu"`, labels: map[string]string{"alertname": "Down"}}, // no label: not ours
		{in: "cluster="}, {in: "prod-eu"}, {in: "bad-name=x"},
	} {
		s, err := alerts.ParseScope(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("%q: parsed as %s", tc.in, s)
			}
			continue
		}
		if err != nil || s.String() != tc.want || s.Matches(tc.labels) != tc.matches {
			t.Errorf("%q: %s %v, matches %v: %t", tc.in, s, err, tc.labels, s.Matches(tc.labels))
		}
	}
	if !(alerts.Scope{}).Matches(map[string]string{"cluster": "any"}) {
		t.Error("the zero scope matches everything")
	}
}
