// Package helm_test renders the chart with the real helm binary.
package helm_test

import (
	"bytes"
	"os"
	"os/exec"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

func helm(t *testing.T, args ...string) []byte {
	t.Helper()
	bin := os.Getenv("DRILLBOT_HELM")
	if bin == "" {
		if os.Getenv("DRILLBOT_REQUIRE_CLUSTER") != "" {
			t.Fatal("DRILLBOT_HELM is not set (make test builds helm)")
		}
		t.Skip("no helm binary (run through make test)")
	}
	var out, errOut bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm %v: %v\n%s", args, err, errOut.String())
	}
	return out.Bytes()
}

func TestChartLints(t *testing.T) {
	helm(t, "lint", "--strict", "drillbot")
}

func TestDashboardConfigMap(t *testing.T) {
	out := helm(t, "template", "dr", "drillbot", "--namespace", "monitoring", "--show-only", "templates/grafana-dashboard.yaml")
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict(out, &cm); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if cm.Labels["grafana_dashboard"] != "1" || cm.Labels["app.kubernetes.io/name"] != "drillbot" || cm.Namespace != "monitoring" {
		t.Errorf("labels %v namespace %q", cm.Labels, cm.Namespace)
	}
	want, err := os.ReadFile("drillbot/dashboards/drillbot.json")
	if err != nil {
		t.Fatal(err)
	}
	if got := cm.Data["drillbot.json"]; got != string(bytes.TrimRight(want, "\n")) {
		t.Errorf("the ConfigMap does not hold the dashboard file as it is (%d bytes, want %d)", len(got), len(want))
	}
	if off := helm(t, "template", "dr", "drillbot", "--set", "grafanaDashboard.enabled=false"); bytes.Contains(off, []byte("kind: ConfigMap")) {
		t.Error("disabled dashboard still rendered")
	}
}
