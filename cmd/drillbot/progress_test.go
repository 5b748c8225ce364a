package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/engine"
)

// Off a terminal (CI logs, pipes), run --wait prints plain lines, one per
// event, and no control characters.
func TestProgressPlainLines(t *testing.T) {
	var out bytes.Buffer
	p := newProgress(&out)
	run := &v1alpha1.DrillRun{Status: v1alpha1.DrillRunStatus{StartedAt: &metav1.MicroTime{Time: time.Now()}, Verdict: v1alpha1.VerdictPass}}
	for _, ev := range []engine.Event{
		{Type: engine.EventPhaseStarted, Phase: v1alpha1.PhaseInjecting, Run: run},
		{Type: engine.EventMilestone, Message: "namespace-terminated", Run: run},
		{Type: engine.EventPhaseFinished, Phase: v1alpha1.PhaseRecovering, Err: errors.New("deadline"), Run: run},
		{Type: engine.EventFinished, Run: run},
	} {
		p.Observe(context.Background(), ev)
	}
	p.stop()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{"Injecting   started", "milestone namespace-terminated", "Recovering  FAILED: deadline", "finished: PASS"}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), out.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d %q lacks %q", i, lines[i], w)
		}
	}
	if strings.ContainsAny(out.String(), "\r\033") {
		t.Errorf("control characters off a terminal: %q", out.String())
	}
}

// On a terminal the status line is redrawn in place below the lines, and
// gone when the command stops.
func TestStatusLineOnATerminal(t *testing.T) {
	var out bytes.Buffer
	s := newStatusLineOn(&out, true, func() string { return "waiting for 2 run(s)" })
	s.Printf("halted\n")
	s.stop()
	got := out.String()
	if !strings.HasPrefix(got, "halted\n\r\033[Kwaiting for 2 run(s)") || !strings.HasSuffix(got, "\r\033[K") {
		t.Errorf("terminal output %q", got)
	}
	var plain bytes.Buffer
	stop := startProgress(&plain, "planning x: preflight")
	stop()
	if plain.String() != "planning x: preflight\n" {
		t.Errorf("off a terminal: %q", plain.String())
	}
}
