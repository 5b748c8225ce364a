package main

// Integration test against the local cluster: the cluster's drill policy
// (the drillbot-policy ConfigMap) binds run, plan and serve alike.

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/halt"
	"github.com/drillbot-io/drillbot/test/localcluster"
	"github.com/drillbot-io/drillbot/test/testharness"
)

// setClusterPolicy creates or replaces drillbot-system/drillbot-policy
// with data; the test's cleanup deletes it.
func setClusterPolicy(t *testing.T, data map[string]string) {
	t.Helper()
	ctx := context.Background()
	cms := cluster.Kube.CoreV1().ConfigMaps("drillbot-system")
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: halt.PolicyName, Namespace: "drillbot-system"}, Data: data}
	if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = cms.Delete(context.Background(), halt.PolicyName, metav1.DeleteOptions{}) })
}

// TestClusterPolicyBindsEveryEntryPoint: with stop
// conditions in the cluster's policy, `drillbot run` and `drillbot plan`
// without an Alertmanager they can read refuse, naming the ConfigMap, and
// touch nothing; the cluster's freeze windows hold serve's scheduled runs
// with no flag naming them; a changed policy makes serve exit to start
// again under it.
func TestClusterPolicyBindsEveryEntryPoint(t *testing.T) {
	localcluster.Require(t, cluster)
	ns := "cluster-policy-" + localcluster.RandomSuffix()
	falco(t, ns)
	bin := testharness.Binary(t)
	now := time.Now().UTC()
	freeze := fmt.Sprintf("    - {name: e2e-cluster-freeze, start: %q, end: %q}\n", now.Add(-time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))
	doc := "apiVersion: drillbot.io/v1alpha1\nkind: DrillPolicy\nmetadata: {name: e2e}\nspec:\n  stopWhen: ['{severity=\"critical\"}']\n  freezeWindows:\n" + freeze
	setClusterPolicy(t, map[string]string{halt.PolicyKey: doc})
	file := drillFile(t, falcoDrill("cluster-policy-falco", ns, "", "10m"))
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"run, no Alertmanager", []string{"run", "-f", file}, "configmap drillbot-system/drillbot-policy"},
		{"plan, no Alertmanager", []string{"plan", "-f", file}, "configmap drillbot-system/drillbot-policy"},
		{"run, an Alertmanager it cannot reach", []string{"run", "-f", file, "--alertmanager-url", "http://127.0.0.1:1"}, "the alerts cannot be read from --alertmanager-url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, append(tc.args, "--kubeconfig", cluster.Kubeconfig, "-n", "drillbot-system")...)
			out, err := cmd.CombinedOutput()
			if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != exitError || !strings.Contains(string(out), tc.want) {
				t.Errorf("exit %v, want %d naming %q:\n%s", err, exitError, tc.want, out)
			}
		})
	}
	if runs := listRuns(t, "cluster-policy-falco"); len(runs) != 0 {
		t.Errorf("%d runs recorded by refused commands", len(runs))
	}
	cm, err := cluster.Kube.CoreV1().ConfigMaps(ns).Get(context.Background(), "falco-rules", metav1.GetOptions{})
	if err != nil || cm.Data["falco_rules.yaml"] != rules {
		t.Errorf("rules after refused runs: %q (%v)", cm.Data["falco_rules.yaml"], err)
	}

	// The cluster's freeze windows need no Alertmanager: serve obeys them
	// with no flag naming them.
	setClusterPolicy(t, map[string]string{halt.PolicyKey: "apiVersion: drillbot.io/v1alpha1\nkind: DrillPolicy\nmetadata: {name: e2e}\nspec:\n  freezeWindows:\n" + freeze})
	d := startDaemon(t, bin, drillDir(t, falcoDrill("cluster-frozen-falco", ns, "@every 2s", "10m")), "--leader-election-lease", "drillbot-cluster-policy")
	eventually(t, "a scheduled start held by the cluster's freeze window", 30*time.Second, func() bool {
		for _, r := range listRuns(t, "cluster-frozen-falco") {
			if st := r.Status; st.Phase == v1alpha1.PhaseCompleted && st.Stop != nil && st.Stop.Kind == v1alpha1.StopFreezeWindow && st.Stop.Name == "e2e-cluster-freeze" {
				return true
			}
		}
		return false
	})
	for _, r := range listRuns(t, "cluster-frozen-falco") {
		if st := r.Status; st.Phase == v1alpha1.PhaseCompleted && (st.Verdict != v1alpha1.VerdictInconclusive || len(st.Journal) != 0) {
			t.Errorf("run %s in the cluster's freeze: %s %q journal %d", r.Name, st.Verdict, st.Reason, len(st.Journal))
		}
	}
	// A changed policy: the daemon stops and exits, to start again under it.
	setClusterPolicy(t, map[string]string{halt.PolicyKey: doc, halt.AlertmanagerURLKey: "http://127.0.0.1:1"})
	eventually(t, "serve exits on a changed policy", 30*time.Second, func() bool { return d.saw("drillbot-policy changed: exiting") })
	// An unreadable policy is a refusal, not "no policy".
	setClusterPolicy(t, map[string]string{"policy.yml": doc})
	out, err := exec.Command(bin, "run", "-f", file, "--kubeconfig", cluster.Kubeconfig, "-n", "drillbot-system").CombinedOutput()
	if err == nil || !strings.Contains(string(out), `unknown key "policy.yml"`) {
		t.Errorf("run with an invalid cluster policy: %v\n%s", err, out)
	}
}
