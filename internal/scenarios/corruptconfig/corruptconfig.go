// Package corruptconfig is the corrupt-falco-rules scenario (generic: any
// DaemonSet that loads rules from a ConfigMap). It saves the ConfigMap's
// exact bytes and resourceVersion in the journal, overwrites one key with
// corrupt rules, waits until the DaemonSet's pods show it (not Ready or
// restarting: detection), restores the original only if the ConfigMap
// still holds what drillbot wrote, restarts the DaemonSet and measures the
// time until it is fully Ready. RPO is the detection blind window.
//
// What a PASS rests on, rule by rule of EVIDENCE.md:
//
//  1. Positive evidence: the DaemonSet had pods, all Ready, in preflight;
//     detection is a pod seen not Ready or restarting after the corrupt
//     write (no detection within the phase is a FAIL, not a PASS); recovery
//     is the DaemonSet's own status, observedGeneration current, every pod
//     updated and Ready after the restart.
//  2. This run: restart counts are recorded per pod UID in preflight, and
//     only a rise above them counts. A pod failing for another reason in
//     the same window would be credited too: the residual risk, kept small
//     by requiring all pods Ready before.
//  3. What happened: the ConfigMap's bytes (it must hold the original
//     afterwards) and the pods' status, not the DaemonSet's spec.
//  4. One clock: the engine's stamps, from the journal to the milestones.
//  5. Errors: an unreadable ConfigMap in Verify is INCONCLUSIVE; someone
//     else's change to the rules is never overwritten (the undo fails,
//     loudly).
//  6. Scope: one ConfigMap key and the DaemonSet the drill names.
//  7. Nothing destroyed: the exact original bytes are in the journal before
//     the write.
//  8. Same on both sides: the same DaemonSet readiness rule before and after.
//  9. Visible safeguards: a refused or failed restore leaves the run
//     RevertFailed with the journal's original.
package corruptconfig

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
)

// Name is the scenario kind.
const Name = "corrupt-config"

// AnnotationCorruptedBy is set on the ConfigMap, in the same write as the
// corrupt rules, to the run's name, and removed once the DaemonSet was
// restarted on the restored rules. It tells an undo whether drillbot's
// write ever landed: without it, the ConfigMap holds nothing of drillbot's
// (the fault was never injected, or the inject conflicted) and nothing is
// restored or restarted.
const AnnotationCorruptedBy = "drillbot.io/corrupted-by"

// DefaultCorruptRules is not valid Falco rules YAML.
const DefaultCorruptRules = "# drillbot drill: corrupt rules\n- rule: drillbot corrupt rule\n  condition: [this is not a condition\n"

// Params are the drill's spec.params.
type Params struct {
	// ConfigMap holds the rules, in the target namespace.
	ConfigMap string `json:"configMap"`
	// Key is the data key to corrupt.
	Key string `json:"key"`
	// DaemonSet loads the rules, in the target namespace.
	DaemonSet string `json:"daemonSet"`
	// CorruptRules replaces the key's value (default: DefaultCorruptRules).
	CorruptRules string `json:"corruptRules,omitempty"`
}

// Deps are what the scenario needs.
type Deps struct {
	Kube      kubernetes.Interface
	Logger    *slog.Logger
	Protected []string
}

// Kind is the scenario kind.
type Kind struct{ Deps Deps }

var _ engine.Kind = Kind{}

// ValidateParams implements engine.Kind.
func (Kind) ValidateParams(spec v1alpha1.DrillSpec, path *field.Path) field.ErrorList {
	var p Params
	errs := drill.DecodeParams(spec.Params, &p, path)
	for name, v := range map[string]string{"configMap": p.ConfigMap, "key": p.Key, "daemonSet": p.DaemonSet} {
		if v == "" {
			errs = append(errs, field.Required(path.Child(name), ""))
		}
	}
	return errs
}

// New implements engine.Kind.
func (k Kind) New(def drill.Definition, runName string) (engine.Scenario, error) {
	var p Params
	if err := drill.Params(def.Spec, &p); err != nil {
		return nil, err
	}
	if p.CorruptRules == "" {
		p.CorruptRules = DefaultCorruptRules
	}
	d := k.Deps
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return &scenario{deps: d, p: p, ns: def.Spec.Target.Namespace, run: runName,
		log: d.Logger.With("scenario", Name, "namespace", def.Spec.Target.Namespace, "run", runName)}, nil
}

type scenario struct {
	deps    Deps
	p       Params
	ns, run string
	log     *slog.Logger

	restarts     map[types.UID]int32 // container restarts per pod before the drill
	originalSize int                 // the key's size before the drill
	undo         Undo
}

// Undo is the journal data: the key's exact original value and where it was.
type Undo struct {
	Namespace string `json:"namespace"`
	ConfigMap string `json:"configMap"`
	Key       string `json:"key"`
	DaemonSet string `json:"daemonSet"`
	// Original is the key's value before the drill, byte for byte.
	Original string `json:"original"`
	// ResourceVersion is the ConfigMap's before the drill.
	ResourceVersion string `json:"resourceVersion"`
	// Written is the SHA-256 of what drillbot wrote: the original is restored
	// only over exactly that.
	Written string `json:"written"`
	Run     string `json:"run"`
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// Preflight implements engine.Scenario.
func (s *scenario) Preflight(ctx context.Context) error {
	if err := namespacerestore.CheckOptIn(ctx, s.deps.Kube, s.ns, s.deps.Protected); err != nil {
		return err
	}
	cm, err := s.deps.Kube.CoreV1().ConfigMaps(s.ns).Get(ctx, s.p.ConfigMap, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("rules ConfigMap: %w", err)
	}
	if _, ok := cm.Data[s.p.Key]; !ok {
		return fmt.Errorf("rules ConfigMap %s has no key %q", s.p.ConfigMap, s.p.Key)
	}
	s.originalSize = len(cm.Data[s.p.Key])
	ds, err := s.deps.Kube.AppsV1().DaemonSets(s.ns).Get(ctx, s.p.DaemonSet, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("daemonset: %w", err)
	}
	if !dsReady(ds) {
		return fmt.Errorf("daemonset %s not Ready before the drill (%d/%d): refusing to break it further", ds.Name, ds.Status.NumberReady, ds.Status.DesiredNumberScheduled)
	}
	pods, err := s.pods(ctx, ds)
	if err != nil {
		return err
	}
	s.restarts = map[types.UID]int32{}
	for _, p := range pods {
		s.restarts[p.UID] = restarts(p)
	}
	return nil
}

func (s *scenario) pods(ctx context.Context, ds *appsv1.DaemonSet) ([]*corev1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil {
		return nil, err
	}
	list, err := s.deps.Kube.CoreV1().Pods(s.ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, fmt.Errorf("list daemonset pods: %w", err)
	}
	out := make([]*corev1.Pod, len(list.Items))
	for i := range list.Items {
		out[i] = &list.Items[i]
	}
	return out, nil
}

func restarts(p *corev1.Pod) int32 {
	var n int32
	for _, c := range p.Status.ContainerStatuses {
		n += c.RestartCount
	}
	return n
}

func ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func dsReady(ds *appsv1.DaemonSet) bool {
	st := ds.Status
	return st.ObservedGeneration >= ds.Generation && st.DesiredNumberScheduled > 0 &&
		st.UpdatedNumberScheduled == st.DesiredNumberScheduled && st.NumberReady == st.DesiredNumberScheduled &&
		st.NumberUnavailable == 0
}

// Inject implements engine.Scenario.
func (s *scenario) Inject(ctx context.Context, j engine.Journal) error {
	cm, err := s.deps.Kube.CoreV1().ConfigMaps(s.ns).Get(ctx, s.p.ConfigMap, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("rules ConfigMap: %w", err)
	}
	s.undo = Undo{Namespace: s.ns, ConfigMap: cm.Name, Key: s.p.Key, DaemonSet: s.p.DaemonSet, Original: cm.Data[s.p.Key],
		ResourceVersion: cm.ResourceVersion, Written: sum(s.p.CorruptRules), Run: s.run}
	if err := j.Record(ctx, "corrupt-configmap", fmt.Sprintf("overwrite %s/%s key %s with corrupt rules; undo: restore its %d original bytes",
		s.ns, cm.Name, s.p.Key, len(s.undo.Original)), s.undo); err != nil {
		return err
	}
	cm.Data[s.p.Key] = s.p.CorruptRules // the Update carries the read resourceVersion: a concurrent change conflicts
	if cm.Annotations == nil {
		cm.Annotations = map[string]string{}
	}
	cm.Annotations[AnnotationCorruptedBy] = s.run
	if _, err := s.deps.Kube.CoreV1().ConfigMaps(s.ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("corrupt rules ConfigMap: %w", err)
	}
	return nil
}

// Recover implements engine.Scenario: detection, restore, restart, Ready.
func (s *scenario) Recover(ctx context.Context, m engine.Milestones) error {
	if err := s.waitPods(ctx, "the corrupt rules to show (a pod not Ready or restarting)", func(pods []*corev1.Pod, _ *appsv1.DaemonSet) bool {
		for _, p := range pods {
			if !ready(p) || restarts(p) > s.restarts[p.UID] {
				return true
			}
		}
		return false
	}); err != nil {
		return fmt.Errorf("corrupt rules never detected: %w", err)
	}
	m.Mark("detected")
	if _, err := restore(ctx, s.deps.Kube, s.undo); err != nil {
		return err
	}
	m.Mark("rules-restored")
	if err := restart(ctx, s.deps.Kube, s.undo); err != nil {
		return err
	}
	if err := release(ctx, s.deps.Kube, s.undo); err != nil {
		return err
	}
	if err := s.waitPods(ctx, "the daemonset to be Ready with the restored rules", func(_ []*corev1.Pod, ds *appsv1.DaemonSet) bool {
		return dsReady(ds)
	}); err != nil {
		return err
	}
	m.Mark("ready")
	return nil
}

// waitPods watches the DaemonSet and its pods until cond holds.
func (s *scenario) waitPods(ctx context.Context, what string, cond func([]*corev1.Pod, *appsv1.DaemonSet) bool) error {
	ctx, cancel := context.WithCancel(ctx)
	f := informers.NewSharedInformerFactoryWithOptions(s.deps.Kube, 0, informers.WithNamespace(s.ns))
	pods, dss := f.Core().V1().Pods(), f.Apps().V1().DaemonSets()
	changed := make(chan struct{}, 1)
	h := cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { signal(changed) }, UpdateFunc: func(any, any) { signal(changed) }, DeleteFunc: func(any) { signal(changed) },
	}
	for _, inf := range []cache.SharedIndexInformer{pods.Informer(), dss.Informer()} {
		if _, err := inf.AddEventHandler(h); err != nil {
			cancel()
			return err
		}
	}
	f.Start(ctx.Done())
	defer func() { cancel(); f.Shutdown() }()
	f.WaitForCacheSync(ctx.Done())
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("waiting for %s: %w", what, context.Cause(ctx))
		}
		ds, err := dss.Lister().DaemonSets(s.ns).Get(s.p.DaemonSet)
		if err == nil {
			sel, _ := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
			ps, _ := pods.Lister().Pods(s.ns).List(sel)
			if cond(ps, ds) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
		case <-changed:
		}
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// restore puts the original bytes back, but only over exactly what drillbot
// wrote: anything else means someone changed the rules since, and
// overwriting their change could be worse than the drill. It says whether
// drillbot's fault was (or still is) in the ConfigMap, so the DaemonSet
// needs a restart: false when drillbot's write never landed.
func restore(ctx context.Context, c kubernetes.Interface, u Undo) (faulted bool, err error) {
	cm, err := c.CoreV1().ConfigMaps(u.Namespace).Get(ctx, u.ConfigMap, metav1.GetOptions{})
	if err != nil {
		return false, fmt.Errorf("read rules ConfigMap to restore it: %w", err)
	}
	cur := cm.Data[u.Key]
	ours := cm.Annotations[AnnotationCorruptedBy] == u.Run
	switch {
	case sum(cur) == u.Written:
		// drillbot's corrupt rules: restore them below (an entry of an older
		// drillbot has no annotation, and this still holds).
	case !ours:
		// drillbot's write never landed (a crash after the journal, a
		// conflict on inject), or its undo finished: nothing of drillbot's
		// is there, and a restart would roll every pod for nothing.
		return false, nil
	case cur == u.Original:
		return true, nil // restored; the restart may still be owed
	default:
		return true, fmt.Errorf("ALERT: %s/%s key %s was changed by someone else since drillbot corrupted it; refusing to overwrite: restore it by hand from the DrillRun journal (resourceVersion before the drill: %s)",
			u.Namespace, u.ConfigMap, u.Key, u.ResourceVersion)
	}
	cm.Data[u.Key] = u.Original
	if _, err := c.CoreV1().ConfigMaps(u.Namespace).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		return true, fmt.Errorf("restore rules ConfigMap: %w", err)
	}
	return true, nil
}

// release removes drillbot's annotation once the DaemonSet runs on the
// restored rules: from then on nothing is owed.
func release(ctx context.Context, c kubernetes.Interface, u Undo) error {
	cm, err := c.CoreV1().ConfigMaps(u.Namespace).Get(ctx, u.ConfigMap, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("read rules ConfigMap: %w", err)
	}
	if cm.Annotations[AnnotationCorruptedBy] != u.Run {
		return nil
	}
	delete(cm.Annotations, AnnotationCorruptedBy)
	if _, err := c.CoreV1().ConfigMaps(u.Namespace).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("remove %s from rules ConfigMap: %w", AnnotationCorruptedBy, err)
	}
	return nil
}

// restart rolls the DaemonSet, as kubectl rollout restart does, with the
// run's name as the stamp (idempotent on retry).
func restart(ctx context.Context, c kubernetes.Interface, u Undo) error {
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{"drillbot.io/restarted-by": u.Run}}}}})
	if _, err := c.AppsV1().DaemonSets(u.Namespace).Patch(ctx, u.DaemonSet, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("restart daemonset %s: %w", u.DaemonSet, err)
	}
	return nil
}

// Verify implements engine.Scenario.
func (s *scenario) Verify(ctx context.Context) (engine.Verification, error) {
	v := engine.Verification{RPOMilestone: "detected", RPOSource: "detection blind window (disaster to the first failing pod)"}
	cm, err := s.deps.Kube.CoreV1().ConfigMaps(s.ns).Get(ctx, s.p.ConfigMap, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		// The cluster's answer, not an unknown: the rules are gone.
		v.Failures = append(v.Failures, fmt.Sprintf("rules ConfigMap %s/%s not found after recovery", s.ns, s.p.ConfigMap))
		return v, nil
	}
	if err != nil {
		return v, fmt.Errorf("read rules ConfigMap %s/%s: %w", s.ns, s.p.ConfigMap, err)
	}
	if cm.Data[s.p.Key] != s.undo.Original {
		v.Failures = append(v.Failures, "rules ConfigMap does not hold its original content")
	}
	return v, nil
}

// Revert implements engine.Scenario: restore the original (only over what
// drillbot wrote) and restart the DaemonSet so it loads it; nothing at all
// when drillbot's write never landed.
func (s *scenario) Revert(ctx context.Context, e v1alpha1.JournalEntry) error {
	var u Undo
	if err := json.Unmarshal(e.Undo, &u); err != nil {
		return fmt.Errorf("decode undo of %s: %w", e.ID, err)
	}
	faulted, err := restore(ctx, s.deps.Kube, u)
	if err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("rules ConfigMap %s/%s is gone: %w", u.Namespace, u.ConfigMap, err)
		}
		return err
	}
	if !faulted {
		return nil
	}
	if err := restart(ctx, s.deps.Kube, u); err != nil {
		return err
	}
	return release(ctx, s.deps.Kube, u)
}
