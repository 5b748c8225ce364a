package corruptconfig_test

// Integration tests on the local cluster. kwok runs the DaemonSet's pods but
// no Falco inside them, so the test plays Falco: when the rules ConfigMap
// holds the corrupt rules, it marks the DaemonSet's pods not Ready with a
// container restart in their status, as the kubelet would report a Falco
// that exits on bad rules. Restarted pods (new ones) are healthy again.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/scenarios/corruptconfig"
	"github.com/drillbot-io/drillbot/test/localcluster"
	"github.com/drillbot-io/drillbot/test/testharness"
)

var cluster *localcluster.Cluster

func TestMain(m *testing.M) { os.Exit(localcluster.RunTests(m, &cluster)) }

// The original rules, with bytes that a careless restore would mangle.
const originalRules = "- rule: Terminal shell in container\n  desc: >\n    A shell was spawned — “unexpected”\n  condition: spawned_process and container and shell_procs\n  output: \"shell (user=%user.name)\"\n  priority: WARNING\n\t\n"

const falcoDrill = `apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata: {name: %s}
spec:
  scenario: corrupt-config
  objectives: {rto: 20m, rpo: 5m}
  timeouts: {recover: 1m, revert: 1m}
  target: {namespace: %s}
  params: {configMap: falco-rules, key: falco_rules.yaml, daemonSet: falco}
`

func falco(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	testharness.Namespace(t, cluster, ns, map[string]string{v1alpha1.LabelAllowDisaster: "true"})
	if _, err := cluster.Kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "falco-rules"},
		Data: map[string]string{"falco_rules.yaml": originalRules, "other.yaml": "untouched"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	l := map[string]string{"app": "falco"}
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "falco"}, Spec: appsv1.DaemonSetSpec{
		Selector: &metav1.LabelSelector{MatchLabels: l},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: l},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "falco", Image: "registry.example/falco:0.41"}}}}}}
	if _, err := cluster.Kube.AppsV1().DaemonSets(ns).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		got, err := cluster.Kube.AppsV1().DaemonSets(ns).Get(ctx, "falco", metav1.GetOptions{})
		return err == nil && got.Status.DesiredNumberScheduled > 0 && got.Status.NumberReady == got.Status.DesiredNumberScheduled, err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCorruptFalcoRules(t *testing.T) {
	cases := []struct {
		name        string
		operatorFix string // written by "someone else" once the failure shows
		wantVerdict v1alpha1.Verdict
		wantReason  string
		wantRules   string
	}{
		{name: "detected, restored byte for byte, Falco Ready again", wantVerdict: v1alpha1.VerdictPass, wantRules: originalRules},
		{name: "someone else changed the rules meanwhile: no overwrite", operatorFix: "- rule: hotfix by on-call\n",
			wantVerdict: v1alpha1.VerdictFail, wantReason: "refusing to overwrite", wantRules: "- rule: hotfix by on-call\n"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := testharness.New(t, cluster)
			ns := fmt.Sprintf("falco-%d-%s", i, localcluster.RandomSuffix())
			falco(t, ns)
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			var onDetected func()
			if tc.operatorFix != "" {
				onDetected = func() {
					cm, err := cluster.Kube.CoreV1().ConfigMaps(ns).Get(ctx, "falco-rules", metav1.GetOptions{})
					if err == nil {
						cm.Data["falco_rules.yaml"] = tc.operatorFix
						_, err = cluster.Kube.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{})
					}
					if err != nil {
						t.Errorf("operator fix: %v", err)
					}
				}
			}
			go testharness.PlayFalco(ctx, t, cluster.Kube, ns, onDetected)

			run := h.Run(h.Drill(fmt.Sprintf(falcoDrill, ns, ns)))

			st := run.Status
			if st.Verdict != tc.wantVerdict || !strings.Contains(st.Reason, tc.wantReason) {
				t.Fatalf("verdict %s %q, want %s with %q", st.Verdict, st.Reason, tc.wantVerdict, tc.wantReason)
			}
			cm, err := cluster.Kube.CoreV1().ConfigMaps(ns).Get(context.Background(), "falco-rules", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if cm.Data["falco_rules.yaml"] != tc.wantRules || cm.Data["other.yaml"] != "untouched" {
				t.Errorf("rules now %q (other %q), want %q", cm.Data["falco_rules.yaml"], cm.Data["other.yaml"], tc.wantRules)
			}
			var undo corruptconfig.Undo
			if len(st.Journal) != 1 || jsonInto(st.Journal[0].Undo, &undo) != nil || undo.Original != originalRules || undo.ResourceVersion == "" {
				t.Errorf("journal does not hold the exact original bytes and resourceVersion: %s", localcluster.JSON(st.Journal))
			}
			if tc.wantVerdict != v1alpha1.VerdictPass {
				return
			}
			rpo, err1 := time.ParseDuration(st.RPO)
			rto, err2 := time.ParseDuration(st.RTO)
			if err1 != nil || err2 != nil || rpo <= 0 || rto < rpo || !strings.Contains(st.RPOSource, "detection") {
				t.Errorf("RTO %q RPO %q (%s)", st.RTO, st.RPO, st.RPOSource)
			}
			// Falco was restarted: its pods are new, Ready and never restarted.
			pods, err := cluster.Kube.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=falco"})
			if err != nil || len(pods.Items) == 0 {
				t.Fatalf("falco pods: %v", err)
			}
			for _, p := range pods.Items {
				for _, cs := range p.Status.ContainerStatuses {
					if !cs.Ready || cs.RestartCount != 0 {
						t.Errorf("pod %s: ready %v restarts %d", p.Name, cs.Ready, cs.RestartCount)
					}
				}
			}
		})
	}
}

func TestCorruptConfigRefusesNamespaceWithoutOptIn(t *testing.T) {
	h := testharness.New(t, cluster)
	ns := "falco-noopt-" + localcluster.RandomSuffix()
	testharness.Namespace(t, cluster, ns, nil)

	run := h.Run(h.Drill(fmt.Sprintf(falcoDrill, ns, ns)))

	if run.Status.Verdict != v1alpha1.VerdictFail || !strings.Contains(run.Status.Reason, "not opted in") {
		t.Fatalf("verdict %s %q", run.Status.Verdict, run.Status.Reason)
	}
	if w := h.TargetWrites(); len(w) > 0 {
		t.Errorf("refused drill wrote: %v", w)
	}
}

func jsonInto(raw []byte, v any) error { return json.Unmarshal(raw, v) }
