// Package app wires drillbot together: clients, the DrillRun CRD and
// namespace, the scenario registry, the engine and its observers (Events on
// DrillRuns, notifications). The CLI and the integration tests both use it,
// so the tests run the wiring that ships.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	"github.com/drillbot-io/drillbot/internal/alerts"
	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/halt"
	"github.com/drillbot-io/drillbot/internal/kube"
	"github.com/drillbot-io/drillbot/internal/notify"
	"github.com/drillbot-io/drillbot/internal/scenarios"
)

// Options configure an App.
type Options struct {
	// Namespace holds DrillRuns; it is never a drill target.
	Namespace string
	// VeleroNamespace is Velero's; it is never a drill target either
	// (default velero).
	VeleroNamespace string
	Logger          *slog.Logger
	// Holder identifies this process on its runs (default host/pid).
	Holder string
	// NotifyStart also notifies when a drill starts.
	NotifyStart bool
	// NotificationFailed is told of every notification given up on.
	NotificationFailed func(sink string)
	// Observers are added to the engine's (progress, metrics).
	Observers []engine.Observer
	// Heartbeat is how often runs renew their heartbeat (engine default).
	Heartbeat time.Duration
	// RevertBackoff is the first wait before a failed revert is retried
	// (engine default).
	RevertBackoff time.Duration
	// Failpoint is the engine's crash-test hook.
	Failpoint func(step string)
	// Alerts, StopWhen, Freeze and AlertPoll are the engine's (expected
	// alerts, stop conditions, freeze windows).
	Alerts    engine.AlertSource
	StopWhen  []alerts.Matchers
	Freeze    engine.Freezer
	AlertPoll time.Duration
	// Dial opens drillbot's own connections to workloads (nil: a
	// net.Dialer's); tests dial from inside a pod's network.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// AlertScope is this cluster's identity on the alerts (zero: none).
	AlertScope alerts.Scope
	// KeepUnarchived keeps runs the archive has not taken from pruning.
	KeepUnarchived bool
}

// App is a wired drillbot.
type App struct {
	Clients *kube.Clients
	Engine  *engine.Engine
	Store   *engine.KubeStore
	// Halt is the halt switch the engine checks before every run and fault.
	Halt halt.Switch
	// Sinks name where notifications go (slack, or log).
	Sinks []string
	// observers are the engine's: Observe tells them of what happens to
	// a run outside the engine (its archiving).
	observers []engine.Observer
	close     func(ctx context.Context)
}

// Observe tells every observer of the engine (Events, notifications,
// metrics, progress) of ev.
func (a *App) Observe(ctx context.Context, ev engine.Event) {
	for _, o := range a.observers {
		o.Observe(ctx, ev)
	}
}

// New connects with cfg, makes sure the DrillRun CRD and drillbot's
// namespace exist, and builds the engine. Notifications go to Slack when
// DRILLBOT_SLACK_* is set, else to the log.
func New(ctx context.Context, cfg *rest.Config, o Options) (*App, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Holder == "" {
		o.Holder = DefaultHolder()
	}
	clients, err := kube.NewClients(cfg)
	if err != nil {
		return nil, err
	}
	if err := kube.EnsureCRD(ctx, cfg, v1alpha1.DrillRunCRD); err != nil {
		return nil, err
	}
	if err := ensureNamespace(ctx, clients, o.Namespace); err != nil {
		return nil, err
	}
	slackSink, err := notify.SlackFromEnv()
	if err != nil {
		return nil, err
	}
	var sink notify.Sink = notify.Log{Logger: o.Logger}
	if slackSink != nil {
		slackSink.Logger = o.Logger
		sink = slackSink
	}
	dispatcher := &notify.Dispatcher{Sinks: []notify.Sink{sink}, Logger: o.Logger, NotifyStart: o.NotifyStart, Failed: o.NotificationFailed}
	recorder, stopEvents := notify.NewEventRecorder(clients.Kube)
	observers := append(append([]engine.Observer{}, o.Observers...), notify.Events{Recorder: recorder}, dispatcher)

	if o.VeleroNamespace == "" {
		o.VeleroNamespace = "velero"
	}
	kinds := scenarios.Registry(scenarios.Deps{Clients: clients, Clock: clock.RealClock{}, Logger: o.Logger, Protected: []string{o.Namespace, o.VeleroNamespace}, Dial: o.Dial})
	store := &engine.KubeStore{Client: clients.Dynamic, Namespace: o.Namespace}
	sw := halt.Switch{Kube: clients.Kube, Namespace: o.Namespace}
	e := engine.New(engine.Config{Store: store, Kinds: kinds, Logger: o.Logger, Holder: o.Holder, Observers: observers, Gate: sw,
		Heartbeat: o.Heartbeat, RevertBackoff: o.RevertBackoff, Failpoint: o.Failpoint,
		Alerts: o.Alerts, StopWhen: o.StopWhen, Freeze: o.Freeze, AlertPoll: o.AlertPoll, AlertScope: o.AlertScope, KeepUnarchived: o.KeepUnarchived, Locks: engine.LeaseLocks{Client: clients.Kube.CoordinationV1(), Namespace: o.Namespace}})
	// Every drillbot process, daemon or CLI, stops its runs when the halt
	// switch is turned on: they are cancelled and revert their faults.
	wctx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		if err := sw.Watch(wctx, func(reason string) {
			if n := e.HaltAll(reason); n > 0 {
				o.Logger.Warn("halted: runs cancelled, their faults revert; nothing runs until drillbot resume", "reason", reason, "runs", n)
			}
		}); err != nil {
			o.Logger.Error("halt switch not watched", "err", err)
		}
	}()
	return &App{Clients: clients, Engine: e, Store: store, Halt: sw, Sinks: []string{sink.Name()}, observers: observers, close: func(ctx context.Context) {
		stopWatch()
		<-watched
		dispatcher.Wait(ctx)
		stopEvents()
	}}, nil
}

// DefaultHolder identifies this process: host/pid.
func DefaultHolder() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d", host, os.Getpid())
}

// Close flushes notifications and Events, waiting at most until ctx ends.
func (a *App) Close(ctx context.Context) { a.close(ctx) }

func ensureNamespace(ctx context.Context, c *kube.Clients, ns string) error {
	_, err := c.Kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = c.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("drillbot namespace %s: %w", ns, err)
	}
	return nil
}
