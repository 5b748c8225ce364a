package corruptconfig

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestRestoreOnlyOverWhatDrillbotWrote(t *testing.T) {
	u := Undo{Namespace: "falco", ConfigMap: "rules", Key: "r.yaml", Original: "original\n", Written: sum(DefaultCorruptRules)}
	cases := []struct {
		name, current, want, wantErr string
		wantWrite                    bool
	}{
		{name: "corrupt is restored", current: DefaultCorruptRules, want: "original\n", wantWrite: true},
		{name: "already original: no write", current: "original\n", want: "original\n"},
		{name: "changed by someone else: refused", current: "hotfix\n", want: "hotfix\n", wantErr: "refusing to overwrite"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := fake.NewClientset(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "rules", Namespace: "falco"}, Data: map[string]string{"r.yaml": tc.current}})
			err := restore(context.Background(), c, u)
			if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("restore = %v, want %q", err, tc.wantErr)
			}
			cm, _ := c.CoreV1().ConfigMaps("falco").Get(context.Background(), "rules", metav1.GetOptions{})
			if cm.Data["r.yaml"] != tc.want {
				t.Errorf("data %q, want %q", cm.Data["r.yaml"], tc.want)
			}
			wrote := false
			for _, a := range c.Actions() {
				wrote = wrote || a.GetVerb() == "update"
			}
			if wrote != tc.wantWrite {
				t.Errorf("wrote %v, want %v", wrote, tc.wantWrite)
			}
		})
	}
}
