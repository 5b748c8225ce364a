package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/engine"
)

// Kind says which moment a message reports.
type Kind string

// Message kinds.
const (
	KindStarted  Kind = "started"
	KindFinished Kind = "finished"
	// KindReverted: a run whose revert had failed (its FAIL message said
	// the fault may still be active) was reverted by a later retry.
	KindReverted Kind = "reverted"
	// KindArchiveFailed: the run's evidence could not be written to the
	// archive (said once, on the first failure; drillbot retries).
	KindArchiveFailed Kind = "archive-failed"
)

// Sink delivers one message. retry reports whether a failure is transient.
type Sink interface {
	Name() string
	Notify(ctx context.Context, run *v1alpha1.DrillRun, kind Kind) (retry bool, err error)
}

// RetryAfterError is a transient failure whose sender said when to retry
// (HTTP 429 Retry-After).
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string { return fmt.Sprintf("%v (retry after %s)", e.Err, e.After) }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// Redact removes URLs from an error: a webhook URL is a secret, and Go's HTTP
// client puts it in every transport error.
func Redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s request failed: %w", ue.Op, ue.Err)
	}
	return err
}

// Dispatcher sends run events to every sink, retrying transient failures.
// It is an engine.Observer.
type Dispatcher struct {
	Sinks  []Sink
	Logger *slog.Logger
	// NotifyStart also sends a message when a drill starts.
	NotifyStart bool
	// MaxAttempts bounds each delivery (default 5).
	MaxAttempts int
	// Backoff is the first retry delay, doubled each attempt up to MaxDelay
	// (defaults 1s and 1m).
	Backoff, MaxDelay time.Duration
	// MaxRetryAfter bounds the wait a Retry-After asks for (default 5m): up
	// to it the sender's word is honoured, beyond MaxDelay too; retrying
	// sooner would only be refused again.
	MaxRetryAfter time.Duration
	// AttemptTimeout bounds one attempt (default 15s).
	AttemptTimeout time.Duration
	// Sleep waits between attempts; tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
	// Failed is told of every delivery given up on (for the failures metric).
	Failed func(sink string)

	wg sync.WaitGroup
}

var _ engine.Observer = (*Dispatcher)(nil)

// Observe implements engine.Observer. It returns at once.
func (d *Dispatcher) Observe(ctx context.Context, ev engine.Event) {
	var kind Kind
	switch {
	case ev.Type == engine.EventFinished:
		kind = KindFinished
	case ev.Type == engine.EventRevertRetried && ev.Err == nil && ev.Run.Status.OpenFaults() == 0:
		// Only the retry that clears the fault: the failures in between
		// would repeat, every backoff, what the FAIL message already said.
		kind = KindReverted
	case ev.Type == engine.EventArchiveFailed && ev.Run.Status.Archive != nil && ev.Run.Status.Archive.Attempts == 1:
		// The first failure only: the retries are in the metrics, the
		// Events and the report.
		kind = KindArchiveFailed
	case d.NotifyStart && ev.Type == engine.EventPhaseStarted && ev.Phase == v1alpha1.PhasePreflight:
		kind = KindStarted
	default:
		return
	}
	ctx = context.WithoutCancel(ctx)
	for _, s := range d.Sinks {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.deliver(ctx, s, ev.Run, kind)
		}()
	}
}

// Wait waits for deliveries under way, at most until ctx ends.
func (d *Dispatcher) Wait(ctx context.Context) {
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

func (d *Dispatcher) deliver(ctx context.Context, s Sink, run *v1alpha1.DrillRun, kind Kind) {
	log := d.logger().With("sink", s.Name(), "run", run.Name, "kind", kind)
	attempts, delay := d.MaxAttempts, d.Backoff
	if attempts == 0 {
		attempts = 5
	}
	if delay == 0 {
		delay = time.Second
	}
	maxDelay, maxRetryAfter := d.MaxDelay, d.MaxRetryAfter
	if maxDelay == 0 {
		maxDelay = time.Minute
	}
	if maxRetryAfter == 0 {
		maxRetryAfter = 5 * time.Minute
	}
	var err error
	for attempt := 1; attempt <= attempts; attempt++ {
		var retry bool
		retry, err = d.attempt(ctx, s, run, kind)
		if err == nil {
			log.Debug("notification sent", "attempt", attempt)
			return
		}
		err = Redact(err)
		if !retry || attempt == attempts {
			break
		}
		wait := min(delay, maxDelay)
		var ra *RetryAfterError
		if errors.As(err, &ra) && ra.After > 0 {
			wait = min(ra.After, maxRetryAfter)
		}
		log.Info("notification failed, retrying", "attempt", attempt, "in", wait, "err", err)
		if serr := d.sleep(ctx, wait); serr != nil {
			err = errors.Join(err, serr)
			break
		}
		delay = min(2*delay, maxDelay)
	}
	log.Warn("notification not delivered", "err", err)
	if d.Failed != nil {
		d.Failed(s.Name())
	}
}

func (d *Dispatcher) attempt(ctx context.Context, s Sink, run *v1alpha1.DrillRun, kind Kind) (bool, error) {
	to := d.AttemptTimeout
	if to == 0 {
		to = 15 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, to)
	defer cancel()
	return s.Notify(ctx, run, kind)
}

func (d *Dispatcher) sleep(ctx context.Context, dur time.Duration) error {
	if d.Sleep != nil {
		return d.Sleep(ctx, dur)
	}
	t := time.NewTimer(dur)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (d *Dispatcher) logger() *slog.Logger {
	if d.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Logger
}
