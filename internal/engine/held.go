package engine

import (
	"context"
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
)

// newRun is the DrillRun a run of def starts as: its name, labels, the
// drill as it is now and its digest, and who started it.
func (e *Engine) newRun(def drill.Definition, trigger, key string, opts []RunOption) *v1alpha1.DrillRun {
	now := e.clock.Now()
	run := &v1alpha1.DrillRun{
		ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("%s-%s-%s", def.Name, now.UTC().Format("20060102-150405"), utilrand.String(4)),
			Labels: map[string]string{
				v1alpha1.LabelDrill:    def.Name,
				v1alpha1.LabelScenario: def.Spec.Scenario,
				v1alpha1.LabelTarget:   TargetHash(key),
			},
		},
		Spec: v1alpha1.DrillRunSpec{Drill: def.Name, Scenario: def.Spec.Scenario, Trigger: trigger, Source: def.Source,
			Snapshot: def.Spec, DefinitionDigest: DefinitionDigest(def.Spec)},
	}
	for _, o := range opts {
		o(&run.Spec)
	}
	if run.Spec.StartedBy == nil {
		run.Spec.StartedBy = &v1alpha1.Initiator{Kind: trigger}
	}
	run.Spec.StartedBy.Holder = e.holder
	return run
}

// heldBusy answers a run whose target is busy. A scheduled run is recorded
// (created is the record when it exists already) as held: Completed,
// INCONCLUSIVE, stop TargetBusy, nothing touched, so the schedule's slot
// has its evidence; the error still says the target was busy. Any other
// run's record goes, and the error is all the caller gets.
func (e *Engine) heldBusy(ctx context.Context, run *v1alpha1.DrillRun, trigger string, created *v1alpha1.DrillRun, cause error) (*v1alpha1.DrillRun, error) {
	err := fmt.Errorf("drill %s: %w", run.Spec.Drill, cause)
	if trigger != TriggerSchedule || !errors.Is(cause, ErrTargetBusy) {
		if created != nil {
			if derr := e.store.Delete(context.WithoutCancel(ctx), created.Name); derr != nil {
				e.log.Warn("run record of a busy target not deleted", "run", created.Name, "err", derr)
			}
		}
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.persistTO)
	defer cancel()
	if created == nil {
		var cerr error
		if created, cerr = e.store.Create(ctx, run); cerr != nil {
			return nil, errors.Join(err, fmt.Errorf("held run not recorded: %w", cerr))
		}
	}
	now := metav1.NewMicroTime(e.clock.Now())
	stop := v1alpha1.Stop{Kind: v1alpha1.StopTargetBusy, Before: true, At: &now, Detail: cause.Error()}
	created.Status = v1alpha1.DrillRunStatus{
		Phase: v1alpha1.PhaseCompleted, Verdict: v1alpha1.VerdictInconclusive, Reason: StopReason(stop),
		Holder: e.holder, StartedAt: &now, FinishedAt: &now, Stop: &stop,
		RTOTarget: string(run.Spec.Snapshot.Objectives.RTO), RPOTarget: string(run.Spec.Snapshot.Objectives.RPO),
	}
	updated, uerr := e.store.UpdateStatus(ctx, created)
	if uerr != nil {
		return nil, errors.Join(err, fmt.Errorf("held run %s not recorded: %w", created.Name, uerr))
	}
	updated.Status = created.Status
	e.log.Warn("scheduled drill held: target busy", "drill", run.Spec.Drill, "run", updated.Name, "err", cause)
	for _, o := range e.observers {
		o.Observe(ctx, Event{Type: EventFinished, Run: updated.DeepCopy(), Phase: v1alpha1.PhaseCompleted})
	}
	return updated, err
}
