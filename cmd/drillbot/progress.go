package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/drillbot-io/drillbot/internal/engine"
)

// isTerminal reports whether w is a terminal: progress is then a status
// line redrawn in place; elsewhere (CI logs, pipes) it is plain lines.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// statusLine is a line at the bottom of a terminal, redrawn every tick
// with what status returns; lines printed through it go above it. Off a
// terminal it draws nothing and lines are printed as they are.
type statusLine struct {
	mu     sync.Mutex
	w      io.Writer
	tty    bool
	status func() string
	shown  bool
	done   chan struct{}
	wg     sync.WaitGroup
}

func newStatusLine(w io.Writer, status func() string) *statusLine {
	return newStatusLineOn(w, isTerminal(w), status)
}

func newStatusLineOn(w io.Writer, tty bool, status func() string) *statusLine {
	s := &statusLine{w: w, tty: tty, status: status, done: make(chan struct{})}
	if s.tty {
		s.wg.Go(func() {
			t := time.NewTicker(200 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-s.done:
					return
				case <-t.C:
					s.mu.Lock()
					s.draw()
					s.mu.Unlock()
				}
			}
		})
	}
	return s
}

// draw rewrites the status line; the caller holds mu.
func (s *statusLine) draw() {
	if line := s.status(); line != "" {
		fmt.Fprintf(s.w, "\r\033[K%s", line)
		s.shown = true
	}
}

// clear removes the status line; the caller holds mu.
func (s *statusLine) clear() {
	if s.shown {
		fmt.Fprint(s.w, "\r\033[K")
		s.shown = false
	}
}

// Printf prints a line above the status line.
func (s *statusLine) Printf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clear()
	fmt.Fprintf(s.w, format, args...)
	if s.tty {
		s.draw()
	}
}

// stop removes the status line for good.
func (s *statusLine) stop() {
	select {
	case <-s.done:
		return
	default:
		close(s.done)
	}
	s.wg.Wait()
	s.mu.Lock()
	s.clear()
	s.mu.Unlock()
}

// startProgress shows what a command is busy with while it takes long: a
// line with the elapsed time on a terminal, one plain line elsewhere.
func startProgress(w io.Writer, what string) (stop func()) {
	start := time.Now()
	s := newStatusLine(w, func() string {
		return fmt.Sprintf("%s %s", what, engine.FormatDuration(time.Since(start).Truncate(100*time.Millisecond)))
	})
	if !s.tty {
		fmt.Fprintln(w, what)
	}
	return s.stop
}

// progress prints a run's events as they happen (run --wait); on a
// terminal a status line below them shows the phase and the time since
// the run started.
type progress struct {
	mu    sync.Mutex
	start time.Time
	phase string
	line  *statusLine
}

func newProgress(w io.Writer) *progress {
	p := &progress{}
	p.line = newStatusLine(w, func() string {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.start.IsZero() {
			return "starting…"
		}
		return fmt.Sprintf("[%8s] %s…", engine.FormatDuration(time.Since(p.start).Truncate(100*time.Millisecond)), p.phase)
	})
	return p
}

func (p *progress) stop() { p.line.stop() }

func (p *progress) Observe(_ context.Context, ev engine.Event) {
	p.mu.Lock()
	if p.start.IsZero() && ev.Run.Status.StartedAt != nil {
		p.start = ev.Run.Status.StartedAt.Time
	}
	if ev.Type == engine.EventPhaseStarted {
		p.phase = string(ev.Phase)
	}
	at := fmt.Sprintf("[%8s]", engine.FormatDuration(time.Since(p.start)))
	p.mu.Unlock()
	switch ev.Type {
	case engine.EventPhaseStarted:
		p.line.Printf("%s %-11s started\n", at, ev.Phase)
	case engine.EventPhaseFinished:
		if ev.Err != nil {
			p.line.Printf("%s %-11s FAILED: %v\n", at, ev.Phase, ev.Err)
		} else {
			p.line.Printf("%s %-11s done\n", at, ev.Phase)
		}
	case engine.EventMilestone:
		p.line.Printf("%s   milestone %s\n", at, ev.Message)
	case engine.EventFinished:
		p.line.Printf("%s finished: %s\n", at, ev.Run.Status.Verdict)
		p.line.stop()
	}
}
