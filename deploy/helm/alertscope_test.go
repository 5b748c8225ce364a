package helm_test

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// TestChartAlertClusterLabel: the chart gives drillbot its
// cluster identity on the alerts: alertmanager.clusterLabel, or else the
// cluster label its own series carry; the flag of the daemon and the
// cluster's policy ConfigMap say the same.
func TestChartAlertClusterLabel(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  []string
		want string // "" for no flag
	}{
		{"none", nil, ""},
		{"explicit", []string{"alertmanager.clusterLabel=region=eu-1"}, "--alert-cluster-label=region=eu-1"},
		{"from the series' cluster label", []string{"metrics.serviceMonitor.clusterLabel=prod-eu"}, "--alert-cluster-label=cluster=prod-eu"},
		{"explicit wins", []string{"metrics.serviceMonitor.clusterLabel=prod-eu", "alertmanager.clusterLabel=k8s_cluster=eu"}, "--alert-cluster-label=k8s_cluster=eu"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"--set", "drills.kill-kyverno.enabled=true", "--set", "alertmanager.url=http://alertmanager.monitoring:9093"}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			docs := render(t, args...)
			got := strings.Join(decode[appsv1.Deployment](t, docs["Deployment"][0]).Spec.Template.Spec.Containers[0].Args, " ")
			if tc.want == "" && strings.Contains(got, "--alert-cluster-label") || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("args %s, want %q", got, tc.want)
			}
			// run and plan, from anywhere, read the same identity from the
			// cluster's policy.
			var label string
			for _, doc := range docs["ConfigMap"] {
				if cm := decode[corev1.ConfigMap](t, doc); cm.Name == "drillbot-policy" {
					label = cm.Data["alert-cluster-label"]
				}
			}
			if want := strings.TrimPrefix(tc.want, "--alert-cluster-label="); label != want {
				t.Errorf("drillbot-policy alert-cluster-label %q, want %q", label, want)
			}
		})
	}
	if out, err := helmErr("template", "dr", "drillbot", "--set", "alertmanager.url=http://am:9093", "--set", "alertmanager.clusterLabel=prod-eu"); err == nil {
		t.Errorf("a cluster label without label= rendered:\n%s", out)
	}
}
