package halt

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func TestSwitch(t *testing.T) {
	ctx := context.Background()
	s := Switch{Kube: fake.NewClientset(), Namespace: "drillbot-system"}
	now := time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)
	steps := []struct {
		name   string
		do     func() error
		halted bool
		reason string
	}{
		{"off by default", func() error { return nil }, false, ""},
		{"halt", func() error { return s.Halt(ctx, "incident 1", "oncall", now) }, true, "incident 1 (by oncall at 2026-11-24T03:00:00Z)"},
		{"halt again updates the reason", func() error { return s.Halt(ctx, "incident 2", "oncall", now) }, true, "incident 2"},
		{"resume", func() error { return s.Resume(ctx) }, false, ""},
		{"resume twice is fine", func() error { return s.Resume(ctx) }, false, ""},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		reason, halted, err := s.Halted(ctx)
		if err != nil || halted != st.halted || !strings.Contains(reason, st.reason) {
			t.Errorf("%s: Halted = %q %v %v, want %v %q", st.name, reason, halted, err, st.halted, st.reason)
		}
	}
}

func TestUnreadableSwitchIsAnError(t *testing.T) {
	c := fake.NewClientset()
	c.PrependReactor("get", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("forbidden")
	})
	if _, _, err := (Switch{Kube: c, Namespace: "x"}).Halted(context.Background()); err == nil {
		t.Error("an unreadable switch read as off")
	}
}
