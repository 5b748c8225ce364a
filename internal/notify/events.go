package notify

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/engine"
)

// Events records a Kubernetes Event on the DrillRun for each phase, milestone
// and the verdict, so `kubectl describe drillrun` tells the story. It is an
// engine.Observer.
type Events struct{ Recorder record.EventRecorder }

var _ engine.Observer = Events{}

// NewEventRecorder returns a recorder that writes Events through c, and a
// function that flushes and stops it.
func NewEventRecorder(c kubernetes.Interface) (record.EventRecorder, func()) {
	b := record.NewBroadcaster()
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.CoreV1().Events("")})
	return b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "drillbot"}), b.Shutdown
}

// Observe implements engine.Observer.
func (e Events) Observe(_ context.Context, ev engine.Event) {
	r := ev.Run
	ref := &corev1.ObjectReference{APIVersion: v1alpha1.APIVersion, Kind: "DrillRun", Namespace: r.Namespace, Name: r.Name, UID: r.UID}
	switch ev.Type {
	case engine.EventPhaseStarted:
		e.Recorder.Eventf(ref, corev1.EventTypeNormal, string(ev.Phase), "%s started", ev.Phase)
	case engine.EventPhaseFinished:
		if ev.Err != nil {
			e.Recorder.Eventf(ref, corev1.EventTypeWarning, string(ev.Phase)+"Failed", "%s failed: %v", ev.Phase, ev.Err)
		} else {
			e.Recorder.Eventf(ref, corev1.EventTypeNormal, string(ev.Phase)+"Done", "%s done", ev.Phase)
		}
	case engine.EventMilestone:
		e.Recorder.Eventf(ref, corev1.EventTypeNormal, "Milestone", "recovery milestone: %s", ev.Message)
	case engine.EventRevertRetried:
		if ev.Err != nil {
			e.Recorder.Eventf(ref, corev1.EventTypeWarning, "RevertFailed", "revert retried (attempt %d) and failed again: fault may still be active: %v", r.Status.RevertAttempts, ev.Err)
		} else {
			e.Recorder.Eventf(ref, corev1.EventTypeNormal, "Reverted", "revert retried (attempt %d): every fault reverted", r.Status.RevertAttempts)
		}
	case engine.EventArchived:
		e.Recorder.Eventf(ref, corev1.EventTypeNormal, "Archived", "evidence archived: %s (place %d of the drill's chain, %s)", r.Status.Archive.Object, r.Status.Archive.Seq, r.Status.Archive.Digest)
	case engine.EventArchiveFailed:
		e.Recorder.Eventf(ref, corev1.EventTypeWarning, "ArchiveFailed", "evidence not archived (attempt %d, retried): %v", r.Status.Archive.Attempts, ev.Err)
	case engine.EventFinished:
		typ := corev1.EventTypeNormal
		if r.Status.Verdict != v1alpha1.VerdictPass {
			typ = corev1.EventTypeWarning
		}
		e.Recorder.Event(ref, typ, string(r.Status.Verdict), fmt.Sprintf("%s: %s (RTO %s, RPO %s)", r.Status.Verdict, r.Status.Reason, orNA(r.Status.RTO), orNA(r.Status.RPO)))
	}
}

func orNA(s string) string {
	if s == "" {
		return "n/a"
	}
	return s
}
