package podkill

import (
	"context"
	"log/slog"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/drillbot-io/drillbot/internal/engine"
)

type recordedJournal struct{ undos []any }

func (j *recordedJournal) Record(_ context.Context, _, _ string, undo any) error {
	j.undos = append(j.undos, undo)
	return nil
}

// On a real kubelet a deleted pod lingers for its grace period: a pod-kill
// that started then (right after a rollout, an eviction or an earlier
// drill) once killed it again and waited for a replacement that never
// comes, until its recovery timed out (a false FAIL). Only live pods are
// killed and counted; with none, the drill refuses before any write.
func TestInjectLeavesTerminatingPodsAlone(t *testing.T) {
	now := metav1.Now()
	pod := func(name string, leaving bool) runtime.Object {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "app", Labels: map[string]string{"app": "web"}}}
		if leaving {
			p.DeletionTimestamp = &now
			p.Finalizers = []string{"example.com/hold"} // the fake tracker keeps it
		}
		return p
	}
	cases := []struct {
		name       string
		pods       []runtime.Object
		wantKilled []string
		refused    bool
	}{
		{"live and terminating", []runtime.Object{pod("a", false), pod("b", true), pod("c", false)}, []string{"a", "c"}, false},
		{"all terminating", []runtime.Object{pod("b", true)}, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := fake.NewClientset(tc.pods...)
			var deleted []string
			c.PrependReactor("delete", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
				deleted = append(deleted, a.(k8stesting.DeleteAction).GetName())
				return true, nil, nil
			})
			s := &scenario{deps: Deps{Kube: c}, ns: "app", selector: "app=web", log: slog.New(slog.DiscardHandler)}
			j := &recordedJournal{}
			err := s.Inject(context.Background(), j)
			if tc.refused {
				if !engine.IsRefused(err) || len(j.undos) != 0 || len(deleted) != 0 {
					t.Fatalf("want a refusal with no write, got err %v, %d undos, deleted %v", err, len(j.undos), deleted)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(deleted)
			if !slices.Equal(deleted, tc.wantKilled) || !slices.Equal(s.killed, tc.wantKilled) {
				t.Errorf("deleted %v, killed %v, want %v", deleted, s.killed, tc.wantKilled)
			}
			if u, ok := j.undos[0].(Undo); !ok || !slices.Equal(u.Pods, tc.wantKilled) {
				t.Errorf("journal %+v, want pods %v", j.undos, tc.wantKilled)
			}
		})
	}
}
