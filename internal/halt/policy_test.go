package halt

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

const clusterPolicy = `apiVersion: drillbot.io/v1alpha1
kind: DrillPolicy
metadata: {name: production}
spec:
  stopWhen: ['{severity="critical"}']
  freezeWindows:
    - {name: weekends, schedule: "0 18 * * 5", timeZone: Europe/Berlin, duration: 62h}
`

func policyMap(data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: PolicyName, Namespace: "drillbot-system", ResourceVersion: "7"}, Data: data}
}

// TestLoadPolicy: the cluster's policy is read from the API
// server; no ConfigMap is no policy, but an unreadable or invalid one is
// an error, never "no policy".
func TestLoadPolicy(t *testing.T) {
	for _, tc := range []struct {
		name     string
		objs     []runtime.Object
		getErr   error
		stop     int
		freeze   int
		url      string
		wantErr  []string
		declares bool
	}{
		{name: "none"},
		{name: "stop conditions, freeze windows and the Alertmanager", objs: []runtime.Object{policyMap(map[string]string{PolicyKey: clusterPolicy, AlertmanagerURLKey: "http://alertmanager.monitoring:9093"})},
			stop: 1, freeze: 1, url: "http://alertmanager.monitoring:9093", declares: true},
		{name: "only the Alertmanager", objs: []runtime.Object{policyMap(map[string]string{AlertmanagerURLKey: "http://am:9093"})}, url: "http://am:9093", declares: true},
		{name: "forbidden", getErr: errors.New(`configmaps "drillbot-policy" is forbidden`), wantErr: []string{"configmap drillbot-system/drillbot-policy", "forbidden"}},
		{name: "invalid policy", objs: []runtime.Object{policyMap(map[string]string{PolicyKey: strings.Replace(clusterPolicy, "timeZone: Europe/Berlin, ", "", 1)})},
			wantErr: []string{"configmap drillbot-system/drillbot-policy (policy.yaml)", "spec.freezeWindows[0].timeZone"}},
		{name: "the cluster's alert label", objs: []runtime.Object{policyMap(map[string]string{AlertClusterLabelKey: "cluster=prod-eu"})}, declares: true},
		{name: "an alert label that is not label=value", objs: []runtime.Object{policyMap(map[string]string{AlertClusterLabelKey: "prod-eu"})},
			wantErr: []string{"configmap drillbot-system/drillbot-policy (alert-cluster-label)", "want label=value"}},
		{name: "a misspelt key", objs: []runtime.Object{policyMap(map[string]string{"policy.yml": clusterPolicy})}, wantErr: []string{`unknown key "policy.yml"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fake.NewClientset(tc.objs...)
			if tc.getErr != nil {
				c.PrependReactor("get", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, tc.getErr })
			}
			p, err := Policies{Kube: c, Namespace: "drillbot-system"}.Load(context.Background())
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("no error; policy %+v", p)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error does not mention %q: %v", w, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Policy.StopWhen) != tc.stop || len(p.Policy.Freeze) != tc.freeze || p.AlertmanagerURL != tc.url || p.Declares() != tc.declares {
				t.Errorf("policy %+v", p)
			}
		})
	}
}

// TestWatchPolicy: a change, a deletion or a creation after Load is
// reported; the ConfigMap as loaded is not.
func TestWatchPolicy(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		exists bool
		change func(c *fake.Clientset) error
		want   bool
	}{
		{name: "unchanged", exists: true, change: func(*fake.Clientset) error { return nil }},
		{name: "absent, unchanged", change: func(*fake.Clientset) error { return nil }},
		{name: "changed", exists: true, want: true, change: func(c *fake.Clientset) error {
			cm := policyMap(map[string]string{PolicyKey: ""})
			cm.ResourceVersion = "8"
			_, err := c.CoreV1().ConfigMaps("drillbot-system").Update(ctx, cm, metav1.UpdateOptions{})
			return err
		}},
		{name: "deleted", exists: true, want: true, change: func(c *fake.Clientset) error {
			return c.CoreV1().ConfigMaps("drillbot-system").Delete(ctx, PolicyName, metav1.DeleteOptions{})
		}},
		{name: "created", want: true, change: func(c *fake.Clientset) error {
			_, err := c.CoreV1().ConfigMaps("drillbot-system").Create(ctx, policyMap(map[string]string{AlertmanagerURLKey: "http://am:9093"}), metav1.CreateOptions{})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var objs []runtime.Object
			if tc.exists {
				objs = append(objs, policyMap(map[string]string{AlertmanagerURLKey: "http://am:9093"}))
			}
			c := fake.NewClientset(objs...)
			s := Policies{Kube: c, Namespace: "drillbot-system"}
			loaded, err := s.Load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			wctx, cancel := context.WithCancel(ctx)
			defer cancel()
			var changed atomic.Bool
			done := make(chan struct{})
			go func() { _ = s.Watch(wctx, loaded, func() { changed.Store(true) }); close(done) }()
			// Let the informer list first, so the change is an event after it.
			time.Sleep(200 * time.Millisecond)
			if err := tc.change(c); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for tc.want && !changed.Load() && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if !tc.want {
				time.Sleep(300 * time.Millisecond)
			}
			if changed.Load() != tc.want {
				t.Errorf("changed %v, want %v", changed.Load(), tc.want)
			}
			cancel()
			<-done
		})
	}
}
