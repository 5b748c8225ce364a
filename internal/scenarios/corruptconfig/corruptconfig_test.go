package corruptconfig

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
)

// TestRevert: the undo restores only over what drillbot wrote, restarts
// the DaemonSet only when drillbot's rules were there, and raises an alert
// only when someone changed them after drillbot did.
func TestRevert(t *testing.T) {
	const run = "corrupt-falco-rules-1"
	u := Undo{Namespace: "falco", ConfigMap: "rules", Key: "r.yaml", DaemonSet: "falco", Original: "original\n", Written: sum(DefaultCorruptRules), Run: run}
	cases := []struct {
		name, current, want, wantErr string
		annotated                    bool // drillbot's annotation is on the ConfigMap
		wantWrite, wantRestart       bool
	}{
		{name: "corrupt is restored and the DaemonSet restarted", current: DefaultCorruptRules, annotated: true, want: "original\n", wantWrite: true, wantRestart: true},
		{name: "corrupt by an older drillbot (no annotation) is restored", current: DefaultCorruptRules, want: "original\n", wantWrite: true, wantRestart: true},
		{name: "restored, restart still owed", current: "original\n", annotated: true, want: "original\n", wantWrite: true, wantRestart: true},
		// A crash after the journal write: the fault never landed. A restart
		// would roll every Falco pod and open the blind window the drill measures.
		{name: "never injected: nothing written, no restart", current: "original\n", want: "original\n"},
		// The inject's update conflicted with someone's change: not an alert.
		{name: "inject conflicted with someone's change: left alone", current: "hotfix\n", want: "hotfix\n"},
		{name: "changed by someone after drillbot: refused with an alert", current: "hotfix\n", annotated: true, want: "hotfix\n", wantErr: "ALERT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "rules", Namespace: "falco"}, Data: map[string]string{"r.yaml": tc.current}}
			if tc.annotated {
				cm.Annotations = map[string]string{AnnotationCorruptedBy: run}
			}
			c := fake.NewClientset(cm, &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "falco", Namespace: "falco"}})
			raw, _ := json.Marshal(u)
			sc := &scenario{deps: Deps{Kube: c}}
			err := sc.Revert(context.Background(), v1alpha1.JournalEntry{ID: "1-corrupt-configmap", Undo: raw})
			if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("revert = %v, want %q", err, tc.wantErr)
			}
			got, _ := c.CoreV1().ConfigMaps("falco").Get(context.Background(), "rules", metav1.GetOptions{})
			if got.Data["r.yaml"] != tc.want {
				t.Errorf("data %q, want %q", got.Data["r.yaml"], tc.want)
			}
			if tc.wantErr == "" && got.Annotations[AnnotationCorruptedBy] != "" {
				t.Errorf("annotation left behind")
			}
			var wrote, restarted bool
			for _, a := range c.Actions() {
				wrote = wrote || (a.GetVerb() == "update" && a.GetResource().Resource == "configmaps")
				restarted = restarted || (a.GetVerb() == "patch" && a.GetResource().Resource == "daemonsets")
			}
			if wrote != tc.wantWrite || restarted != tc.wantRestart {
				t.Errorf("wrote %v restarted %v, want %v %v", wrote, restarted, tc.wantWrite, tc.wantRestart)
			}
		})
	}
}

// TestVerify: the rules ConfigMap must hold its original bytes after
// recovery. A ConfigMap gone is the cluster's own answer (FAIL), not an
// unknown: a verdict that says "could not verify" would hide it.
func TestVerify(t *testing.T) {
	p := Params{ConfigMap: "rules", Key: "r.yaml"}
	u := Undo{Original: "original\n"}
	for _, tc := range []struct {
		name        string
		objs        []runtime.Object
		wantFailure string
	}{
		{name: "original back", objs: []runtime.Object{&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "rules", Namespace: "falco"}, Data: map[string]string{"r.yaml": "original\n"}}}},
		{name: "other bytes", objs: []runtime.Object{&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "rules", Namespace: "falco"}, Data: map[string]string{"r.yaml": "other\n"}}},
			wantFailure: "does not hold its original content"},
		{name: "the ConfigMap is gone", wantFailure: "rules ConfigMap falco/rules not found after recovery"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := &scenario{deps: Deps{Kube: fake.NewClientset(tc.objs...)}, p: p, ns: "falco", undo: u}
			v, err := sc.Verify(context.Background())
			if err != nil {
				t.Fatalf("Verify error %v: the cluster answered", err)
			}
			if got := strings.Join(v.Failures, "; "); tc.wantFailure == "" && got != "" || !strings.Contains(got, tc.wantFailure) {
				t.Errorf("failures %q, want %q", got, tc.wantFailure)
			}
		})
	}
}
