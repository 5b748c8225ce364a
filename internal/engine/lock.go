package engine

import (
	"context"
	"fmt"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationclient "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/utils/ptr"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
)

// TargetLocks is the cluster-wide one-run-per-target lock. Taking it must
// be atomic across processes (a list of runs followed by a create is not).
type TargetLocks interface {
	// Lock takes target for run. held says whether the run that holds it now
	// still counts (unfinished, or a fault may be active): then Lock returns
	// ErrTargetBusy.
	Lock(ctx context.Context, target, run string, held func(ctx context.Context, holder string) (bool, error)) error
	// Unlock releases target if run holds it.
	Unlock(ctx context.Context, target, run string) error
}

// LeaseLocks keeps one coordination.k8s.io Lease per target in drillbot's
// namespace, named after the target's hash, holding the run's name. A
// create is atomic; a Lease left by a finished run is taken over with an
// update that carries its resourceVersion, so two takers cannot both win.
type LeaseLocks struct {
	Client    coordinationclient.LeasesGetter
	Namespace string
}

var _ TargetLocks = LeaseLocks{}

// LeaseName is the Lease that locks a target.
func LeaseName(target string) string { return "drillbot-target-" + TargetHash(target) }

// Lock implements TargetLocks.
func (l LeaseLocks) Lock(ctx context.Context, target, run string, held func(context.Context, string) (bool, error)) error {
	leases := l.Client.Leases(l.Namespace)
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: LeaseName(target), Namespace: l.Namespace,
			Labels: map[string]string{v1alpha1.LabelTarget: TargetHash(target), "app.kubernetes.io/managed-by": "drillbot"}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(run)},
	}
	_, err := leases.Create(ctx, lease, metav1.CreateOptions{})
	if err == nil {
		return nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("lock target %s: %w", target, err)
	}
	cur, err := leases.Get(ctx, lease.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("lock target %s: %w", target, err)
	}
	holder := ptr.Deref(cur.Spec.HolderIdentity, "")
	if holder != "" {
		busy, err := held(ctx, holder)
		if err != nil {
			return fmt.Errorf("lock target %s: %w", target, err)
		}
		if busy {
			return fmt.Errorf("%w (%s)", ErrTargetBusy, holder)
		}
	}
	cur.Spec.HolderIdentity = ptr.To(run)
	if _, err := leases.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsConflict(err) {
			return fmt.Errorf("%w (taken by another drillbot at the same moment)", ErrTargetBusy)
		}
		return fmt.Errorf("lock target %s: %w", target, err)
	}
	return nil
}

// Unlock implements TargetLocks: it deletes the Lease only while run holds
// it (the delete carries the read resourceVersion).
func (l LeaseLocks) Unlock(ctx context.Context, target, run string) error {
	leases := l.Client.Leases(l.Namespace)
	cur, err := leases.Get(ctx, LeaseName(target), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("unlock target %s: %w", target, err)
	}
	if ptr.Deref(cur.Spec.HolderIdentity, "") != run {
		return nil
	}
	err = leases.Delete(ctx, cur.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &cur.ResourceVersion}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("unlock target %s: %w", target, err)
	}
	return nil
}
