package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drillbot-io/drillbot/internal/alerts"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/halt"
)

// clusterPolicyDoc is the cluster's DrillPolicy: a stop condition and a
// weekend freeze.
const clusterPolicyDoc = `apiVersion: drillbot.io/v1alpha1
kind: DrillPolicy
metadata: {name: production}
spec:
  stopWhen: ['{severity="critical"}']
  freezeWindows:
    - {name: weekends, schedule: "0 18 * * 5", timeZone: Europe/Berlin, duration: 62h}
`

// alertmanager answers the alerts API with no alerts; closed, it is an
// unreachable one.
func alertmanager(t *testing.T, closed bool) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("[]"))
	}))
	if closed {
		srv.Close()
	} else {
		t.Cleanup(srv.Close)
	}
	return srv.URL
}

func parsedClusterPolicy(t *testing.T, doc, url string) halt.ClusterPolicy {
	t.Helper()
	cp := halt.ClusterPolicy{Source: "configmap drillbot-system/drillbot-policy", ResourceVersion: "1", AlertmanagerURL: url}
	if doc != "" {
		p, err := drill.ParsePolicy(cp.Source+" (policy.yaml)", []byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		cp.Policy = p
	}
	return cp
}

// TestAlertFlagsObeyTheClusterPolicy: the cluster's policy
// binds every entry point whatever its flags: its stop conditions join the
// flags', its freeze windows apply (they need no alerts), its Alertmanager
// is used unless --alertmanager-url names another, and a process that
// cannot read the alerts the policy needs refuses, naming the ConfigMap.
func TestAlertFlagsObeyTheClusterPolicy(t *testing.T) {
	up, down := alertmanager(t, false), alertmanager(t, true)
	fileFreeze := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(fileFreeze, []byte("apiVersion: drillbot.io/v1alpha1\nkind: DrillPolicy\nmetadata: {name: f}\nspec:\n  freezeWindows:\n    - {name: year-end, start: \"2026-12-20T00:00:00Z\", end: \"2027-01-04T00:00:00Z\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	friday := time.Date(2026, 10, 23, 17, 0, 0, 0, time.UTC) // 19:00 in Berlin
	christmas := time.Date(2026, 12, 24, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		flags    alertFlags
		cluster  halt.ClusterPolicy
		probe    bool
		wantErr  []string
		stop     int
		frozenAt []time.Time
		source   bool
		scope    string
	}{
		{name: "the cluster's stop conditions, no Alertmanager anywhere", cluster: parsedClusterPolicy(t, clusterPolicyDoc, ""),
			wantErr: []string{"configmap drillbot-system/drillbot-policy", "stop conditions", "--alertmanager-url"}},
		{name: "the cluster's Alertmanager unreachable from here", cluster: parsedClusterPolicy(t, clusterPolicyDoc, down), probe: true,
			wantErr: []string{"cannot be read", "configmap drillbot-system/drillbot-policy", "--alertmanager-url"}},
		{name: "--alertmanager-url unreachable", flags: alertFlags{alertmanagerURL: down}, cluster: parsedClusterPolicy(t, clusterPolicyDoc, ""), probe: true,
			wantErr: []string{"cannot be read", "--alertmanager-url"}},
		{name: "the cluster's Alertmanager", cluster: parsedClusterPolicy(t, clusterPolicyDoc, up), probe: true, stop: 1, source: true, frozenAt: []time.Time{friday}},
		{name: "flags and the cluster combine", flags: alertFlags{alertmanagerURL: up, stopWhen: []string{`{alertname="EtcdDown"}`}, policyFile: fileFreeze},
			cluster: parsedClusterPolicy(t, clusterPolicyDoc, down), probe: true, stop: 2, source: true, frozenAt: []time.Time{friday, christmas}},
		{name: "the cluster's freeze windows need no alerts", cluster: parsedClusterPolicy(t, strings.Replace(clusterPolicyDoc, `  stopWhen: ['{severity="critical"}']`+"\n", "", 1), ""),
			probe: true, frozenAt: []time.Time{friday}},
		{name: "no policy anywhere", probe: true},
		{name: "the cluster's alert label narrows expected alerts", cluster: halt.ClusterPolicy{Source: "configmap drillbot-system/drillbot-policy",
			AlertClusterLabel: alerts.Scope{Label: "cluster", Value: "prod-eu"}}, scope: "cluster=prod-eu"},
		{name: "the flag agrees with the cluster", flags: alertFlags{cluster: "cluster=prod-eu"}, cluster: halt.ClusterPolicy{Source: "configmap drillbot-system/drillbot-policy",
			AlertClusterLabel: alerts.Scope{Label: "cluster", Value: "prod-eu"}}, scope: "cluster=prod-eu"},
		{name: "the flag disagrees with the cluster", flags: alertFlags{cluster: "cluster=prod-us"}, cluster: halt.ClusterPolicy{Source: "configmap drillbot-system/drillbot-policy",
			AlertClusterLabel: alerts.Scope{Label: "cluster", Value: "prod-eu"}}, wantErr: []string{"disagrees", "cluster=prod-eu", "cluster=prod-us"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.flags
			f.poll = 10 * time.Second
			o, err := f.load(context.Background(), nil, tc.cluster, tc.probe)
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("accepted: %+v", o)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error does not mention %q:\n%v", w, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := o.scope.Label + "=" + o.scope.Value; tc.scope != "" && got != tc.scope {
				t.Errorf("alert scope %s, want %s", got, tc.scope)
			}
			if len(o.stopWhen) != tc.stop || (o.source != nil) != tc.source {
				t.Errorf("%d stop conditions, source %v; want %d, %v", len(o.stopWhen), o.source != nil, tc.stop, tc.source)
			}
			for _, at := range tc.frozenAt {
				if o.freeze == nil {
					t.Fatalf("no freeze windows; want frozen at %s", at)
				}
				if _, _, frozen := o.freeze.Frozen(at); !frozen {
					t.Errorf("not frozen at %s", at)
				}
			}
			if len(tc.frozenAt) == 0 && o.freeze != nil {
				if name, _, frozen := o.freeze.Frozen(friday); frozen {
					t.Errorf("frozen by %s", name)
				}
			}
		})
	}
}
