// Package blockegress is the block-secrets-backend scenario: a NetworkPolicy
// cuts the External Secrets controller off from its backend (Azure Key
// Vault), except DNS and the API server. Existing Secrets must keep their
// data; the fault is detected when the ExternalSecrets stop syncing; after
// the block is lifted, recovery is every ExternalSecret Ready again with a
// newer refresh. A block that changes nothing is INCONCLUSIVE: the cluster's
// CNI may not enforce NetworkPolicies, and that is worth knowing.
//
// What a PASS rests on, rule by rule of EVIDENCE.md:
//
//  1. Positive evidence: the drill names its ExternalSecrets and the
//     controller's pods exist (else refused); an ExternalSecret seen failing
//     to sync during the block is the evidence the block took effect (none
//     within the window is INCONCLUSIVE, never PASS); each Secret's data
//     digest is compared before and during the outage.
//  2. This run: every ExternalSecret must be Ready before the block, and
//     recovery needs a refresh newer than the one recorded before it.
//  3. What happened: the ExternalSecrets' status and the Secrets' bytes,
//     not the NetworkPolicy's intent.
//  4. One clock: the engine's stamps; refresh times are only compared with
//     the same object's earlier refresh time.
//  5. Errors: an unreadable ExternalSecret is retried by the watch loop and
//     never counted as failing or Ready.
//  6. Scope: the named ExternalSecrets; the policy selects only the
//     controller's pods.
//  7. Nothing destroyed: only a policy labelled with the run is created, and
//     only it (UID precondition) is deleted.
//  8. Same on both sides: the same readiness and digest rules before and
//     after.
//  9. Visible safeguards: Secrets lost during the outage are a failure; a
//     policy left behind leaves the run RevertFailed.
package blockegress

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
)

// Name is the scenario kind.
const Name = "block-secrets-backend"

// PolicyName is the NetworkPolicy drillbot creates.
const PolicyName = "drillbot-block-egress"

// ExternalSecret versions, newest first.
var esVersions = []schema.GroupVersionResource{
	{Group: "external-secrets.io", Version: "v1", Resource: "externalsecrets"},
	{Group: "external-secrets.io", Version: "v1beta1", Resource: "externalsecrets"},
}

// Params are the drill's spec.params. The blocked pods are
// spec.target.selector in spec.target.namespace.
type Params struct {
	// ExternalSecrets to watch ("namespace/name").
	ExternalSecrets []string `json:"externalSecrets"`
	// Secrets the ExternalSecrets write, where a spec.target.name differs
	// from the ExternalSecret's own name ("namespace/name"). drillbot may
	// read Secrets only by these names and the ExternalSecrets' own: never
	// every Secret of a namespace.
	Secrets []string `json:"secrets,omitempty"`
	// DetectionWindow: no sync error within it makes the run INCONCLUSIVE
	// (default 5m).
	DetectionWindow v1alpha1.Duration `json:"detectionWindow,omitempty"`
}

// Deps are what the scenario needs.
type Deps struct {
	Kube      kubernetes.Interface
	Dynamic   dynamic.Interface
	Protected []string
}

// Kind is the scenario kind.
type Kind struct{ Deps Deps }

var _ engine.Kind = Kind{}

// ValidateParams implements engine.Kind.
func (Kind) ValidateParams(spec v1alpha1.DrillSpec, path *field.Path) field.ErrorList {
	var p Params
	errs := drill.DecodeParams(spec.Params, &p, path)
	if len(spec.Target.Selector) == 0 {
		errs = append(errs, field.Required(field.NewPath("spec", "target", "selector"), "the pods to cut off (the External Secrets controller)"))
	}
	if len(p.ExternalSecrets) == 0 {
		errs = append(errs, field.Required(path.Child("externalSecrets"), "namespace/name of the ExternalSecrets to watch"))
	}
	for child, list := range map[string][]string{"externalSecrets": p.ExternalSecrets, "secrets": p.Secrets} {
		for i, es := range list {
			if ns, name, ok := strings.Cut(es, "/"); !ok || ns == "" || name == "" {
				errs = append(errs, field.Invalid(path.Child(child).Index(i), es, "namespace/name"))
			}
		}
	}
	if p.DetectionWindow != "" {
		if _, err := time.ParseDuration(string(p.DetectionWindow)); err != nil {
			errs = append(errs, field.Invalid(path.Child("detectionWindow"), p.DetectionWindow, "not a duration"))
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
	window := 5 * time.Minute
	if p.DetectionWindow != "" {
		window, _ = time.ParseDuration(string(p.DetectionWindow))
	}
	return &scenario{deps: k.Deps, p: p, ns: def.Spec.Target.Namespace, selector: def.Spec.Target.Selector, run: runName, window: window}, nil
}

type scenario struct {
	deps     Deps
	p        Params
	ns, run  string
	selector map[string]string
	window   time.Duration

	np        *networkingv1.NetworkPolicy // built in Preflight
	pods      int                         // pods it selects at Preflight
	gvr       schema.GroupVersionResource
	before    map[string]esState // per "ns/name"
	noEffect  bool
	lossFound []string
}

type esState struct {
	secret     string // target Secret "ns/name"
	dataSum    string
	refreshed  time.Time // status.refreshTime
	ready      bool
	syncFailed bool
}

// Undo is the journal data: the policy to delete.
type Undo struct {
	Namespace string `json:"namespace"`
	Policy    string `json:"policy"`
	// Run is the run that creates the policy (its drillbot.io/run label):
	// an undo deletes only that run's policy, never another run's of the
	// same name.
	Run string `json:"run,omitempty"`
}

// Preflight implements engine.Scenario.
func (s *scenario) Preflight(ctx context.Context) error {
	if err := namespacerestore.CheckOptIn(ctx, s.deps.Kube, s.ns, s.deps.Protected); err != nil {
		return err
	}
	pods, err := s.deps.Kube.CoreV1().Pods(s.ns).List(ctx, metav1.ListOptions{LabelSelector: metav1.FormatLabelSelector(&metav1.LabelSelector{MatchLabels: s.selector})})
	if err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	if len(pods.Items) == 0 {
		return engine.Refuse("no pods match %v in %s", s.selector, s.ns)
	}
	s.pods = len(pods.Items)
	if _, err := s.deps.Kube.NetworkingV1().NetworkPolicies(s.ns).Get(ctx, PolicyName, metav1.GetOptions{}); err == nil {
		return fmt.Errorf("NetworkPolicy %s/%s already exists (left by an earlier run?): refusing", s.ns, PolicyName)
	}
	if s.np, err = s.policy(ctx); err != nil {
		return err
	}
	if s.gvr, err = s.servedVersion(ctx); err != nil {
		return err
	}
	if s.before, err = s.snapshot(ctx); err != nil {
		return err
	}
	for key, st := range s.before {
		if !st.ready {
			return fmt.Errorf("ExternalSecret %s not Ready before the drill: refusing to break it further", key)
		}
		if st.dataSum == "" {
			return fmt.Errorf("ExternalSecret %s: its Secret %s does not exist", key, st.secret)
		}
	}
	return nil
}

func (s *scenario) servedVersion(ctx context.Context) (schema.GroupVersionResource, error) {
	ns, name, _ := strings.Cut(s.p.ExternalSecrets[0], "/")
	var errs []error
	for _, gvr := range esVersions {
		_, err := s.deps.Dynamic.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			return gvr, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", gvr.Version, err))
	}
	return schema.GroupVersionResource{}, fmt.Errorf("ExternalSecret %s: %w", s.p.ExternalSecrets[0], errors.Join(errs...))
}

// snapshot reads every ExternalSecret's status and its Secret's data hash.
func (s *scenario) snapshot(ctx context.Context) (map[string]esState, error) {
	out := map[string]esState{}
	for _, key := range s.p.ExternalSecrets {
		ns, name, _ := strings.Cut(key, "/")
		u, err := s.deps.Dynamic.Resource(s.gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("ExternalSecret %s: %w", key, err)
		}
		st := status(u)
		target, _, _ := unstructured.NestedString(u.Object, "spec", "target", "name")
		if target == "" {
			target = name
		}
		st.secret = ns + "/" + target
		if target != name && !slices.Contains(s.p.Secrets, st.secret) {
			return nil, engine.Refuse("ExternalSecret %s writes Secret %s: list it in spec.params.secrets (drillbot reads Secrets only by the names its drill grants)", key, st.secret)
		}
		sec, err := s.deps.Kube.CoreV1().Secrets(ns).Get(ctx, target, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("secret %s: %w", st.secret, err)
		}
		if err == nil {
			st.dataSum = dataSum(sec)
		}
		out[key] = st
	}
	return out, nil
}

func status(u *unstructured.Unstructured) esState {
	var st esState
	if r, _, _ := unstructured.NestedString(u.Object, "status", "refreshTime"); r != "" {
		st.refreshed, _ = time.Parse(time.RFC3339, r)
	}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Ready" {
			st.ready = m["status"] == "True"
			st.syncFailed = m["status"] == "False" || m["reason"] == "SecretSyncedError"
		}
	}
	return st
}

func dataSum(s *corev1.Secret) string {
	keys := make([]string, 0, len(s.Data))
	for k := range s.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write(s.Data[k])
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Inject implements engine.Scenario.
func (s *scenario) Inject(ctx context.Context, j engine.Journal) error {
	if err := j.Record(ctx, "block-egress", fmt.Sprintf("NetworkPolicy %s/%s denies egress from %v except DNS and the API server; undo: delete it", s.ns, PolicyName, s.selector),
		Undo{Namespace: s.ns, Policy: PolicyName, Run: s.run}); err != nil {
		return err
	}
	if _, err := s.deps.Kube.NetworkingV1().NetworkPolicies(s.ns).Create(ctx, s.np, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create NetworkPolicy: %w", err)
	}
	return nil
}

// policy denies all egress from the selected pods but DNS and the API
// server.
func (s *scenario) policy(ctx context.Context) (*networkingv1.NetworkPolicy, error) {
	api, ports, err := APIServerPeers(ctx, s.deps.Kube)
	if err != nil {
		return nil, err
	}
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	dns := intstr.FromInt32(53)
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: PolicyName, Namespace: s.ns, Labels: map[string]string{v1alpha1.LabelRun: s.run, "app.kubernetes.io/managed-by": "drillbot"}},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: s.selector},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{
				{Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &dns}, {Protocol: &tcp, Port: &dns}}},
				{To: api, Ports: ports},
			},
		},
	}, nil
}

// APIServerPeers are the API server's addresses and ports as pods reach them
// after the kubernetes Service is resolved: the endpoints of
// default/kubernetes (EndpointSlices, else the Endpoints object). Without
// them the block would also cut the controller off the API server, so the
// drill refuses.
func APIServerPeers(ctx context.Context, c kubernetes.Interface) ([]networkingv1.NetworkPolicyPeer, []networkingv1.NetworkPolicyPort, error) {
	addrs := map[string]bool{}
	ports := map[int32]bool{}
	list, err := c.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=kubernetes"})
	if err != nil {
		return nil, nil, fmt.Errorf("find the API server's addresses: %w", err)
	}
	for _, sl := range list.Items {
		for _, ep := range sl.Endpoints {
			for _, a := range ep.Addresses {
				addrs[a] = true
			}
		}
		for _, p := range sl.Ports {
			if p.Port != nil {
				ports[*p.Port] = true
			}
		}
	}
	if len(addrs) == 0 {
		//nolint:staticcheck // v1 Endpoints is the fallback where slices are not mirrored.
		ep, err := c.CoreV1().Endpoints(metav1.NamespaceDefault).Get(ctx, "kubernetes", metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, nil, fmt.Errorf("find the API server's addresses: %w", err)
		}
		if err == nil {
			for _, ss := range ep.Subsets {
				for _, a := range ss.Addresses {
					addrs[a.IP] = true
				}
				for _, p := range ss.Ports {
					ports[p.Port] = true
				}
			}
		}
	}
	if len(addrs) == 0 || len(ports) == 0 {
		return nil, nil, engine.Refuse("no API server addresses in default/kubernetes: the block would cut the controller off the API server too")
	}
	var peers []networkingv1.NetworkPolicyPeer
	for _, a := range slices.Sorted(maps.Keys(addrs)) {
		cidr := a + "/32"
		if strings.Contains(a, ":") {
			cidr = a + "/128"
		}
		peers = append(peers, networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: cidr}})
	}
	tcp := corev1.ProtocolTCP
	var out []networkingv1.NetworkPolicyPort
	for _, p := range slices.Sorted(maps.Keys(ports)) {
		port := intstr.FromInt32(p)
		out = append(out, networkingv1.NetworkPolicyPort{Protocol: &tcp, Port: &port})
	}
	return peers, out, nil
}

// Recover implements engine.Scenario.
func (s *scenario) Recover(ctx context.Context, m engine.Milestones) error {
	detected, err := s.waitES(ctx, s.window, func(st map[string]esState) bool {
		for _, v := range st {
			if v.syncFailed {
				return true
			}
		}
		return false
	})
	if err != nil {
		return err
	}
	if !detected {
		s.noEffect = true
	} else {
		m.Mark("sync-failing")
		// Existing Secrets must survive the outage.
		now, err := s.snapshot(ctx)
		if err != nil {
			return err
		}
		s.lossFound = s.lost(now)
	}
	if err := DeletePolicy(ctx, s.deps.Kube, s.ns, PolicyName, s.run); err != nil {
		return err
	}
	m.Mark("unblocked")
	// Recovered: every ExternalSecret Ready with a refresh after the
	// block. When the block had no effect there is nothing to re-sync, and
	// a long refreshInterval would only stretch the phase, so Ready is
	// enough.
	if _, err := s.waitES(ctx, 0, func(st map[string]esState) bool {
		for k, v := range st {
			if !v.ready || (!s.noEffect && !v.refreshed.After(s.before[k].refreshed)) {
				return false
			}
		}
		return true
	}); err != nil {
		return fmt.Errorf("ExternalSecrets not synced again: %w", err)
	}
	m.Mark("synced")
	return nil
}

func (s *scenario) lost(now map[string]esState) []string {
	var out []string
	for k, v := range now {
		if v.dataSum != s.before[k].dataSum {
			out = append(out, s.before[k].secret)
		}
	}
	sort.Strings(out)
	return out
}

// waitES re-reads the ExternalSecrets on each change of any of them (by
// watch) until cond holds. With a window, it returns false when the window
// passes first.
func (s *scenario) waitES(ctx context.Context, window time.Duration, cond func(map[string]esState) bool) (bool, error) {
	wctx := ctx
	if window > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, window)
		defer cancel()
	}
	namespaces := map[string]bool{}
	for _, key := range s.p.ExternalSecrets {
		ns, _, _ := strings.Cut(key, "/")
		namespaces[ns] = true
	}
	changed := make(chan struct{}, 1)
	for ns := range namespaces {
		w, err := s.deps.Dynamic.Resource(s.gvr).Namespace(ns).Watch(wctx, metav1.ListOptions{})
		if err != nil {
			return false, fmt.Errorf("watch ExternalSecrets in %s: %w", ns, err)
		}
		defer w.Stop()
		go func() {
			for range w.ResultChan() {
				select {
				case changed <- struct{}{}:
				default:
				}
			}
		}()
	}
	for {
		st, err := s.snapshot(wctx)
		if err == nil && cond(st) {
			return true, nil
		}
		select {
		case <-wctx.Done():
			if ctx.Err() == nil && window > 0 {
				return false, nil // the window passed, not the phase
			}
			return false, context.Cause(ctx)
		case <-changed:
		case <-time.After(5 * time.Second): // a watch may close; re-read now and then
		}
	}
}

// Verify implements engine.Scenario.
func (s *scenario) Verify(ctx context.Context) (engine.Verification, error) {
	var v engine.Verification
	if s.noEffect {
		// Both causes were seen for real: a CNI without NetworkPolicy
		// support, and an enforcer that tracks connections (kube-router,
		// Calico) letting ESO's keep-alive connection to its backend through.
		v.Inconclusive = fmt.Sprintf("fault had no effect: NetworkPolicy may not be enforced by the cluster's CNI, "+
			"or the controller kept a connection to the backend it had open before the block (enforcers that track connections let established ones through) "+
			"(no ExternalSecret failed to sync within %s)", s.window)
	}
	if len(s.lossFound) > 0 {
		v.Failures = append(v.Failures, "Secrets lost or changed during the outage: "+strings.Join(s.lossFound, ", "))
	}
	now, err := s.snapshot(ctx)
	if err != nil {
		return v, err
	}
	if lost := s.lost(now); len(lost) > 0 {
		v.Findings = append(v.Findings, "Secrets differ after re-sync (the backend may have newer values): "+strings.Join(lost, ", "))
	}
	return v, nil
}

// Revert implements engine.Scenario: delete the policy (idempotent).
func (s *scenario) Revert(ctx context.Context, e v1alpha1.JournalEntry) error {
	return RevertPolicy(ctx, s.deps.Kube, e)
}

// RevertPolicy undoes an entry whose undo is an Undo: it deletes the run's
// policy (idempotent).
func RevertPolicy(ctx context.Context, c kubernetes.Interface, e v1alpha1.JournalEntry) error {
	var u Undo
	if err := json.Unmarshal(e.Undo, &u); err != nil {
		return fmt.Errorf("decode undo of %s: %w", e.ID, err)
	}
	if u.Namespace == "" || u.Policy == "" {
		return fmt.Errorf("undo of %s names no policy", e.ID)
	}
	return DeletePolicy(ctx, c, u.Namespace, u.Policy, u.Run)
}

// DeletePolicy deletes the run's policy and waits until it is gone. A
// policy of that name that another run created is left alone (the delete
// carries the UID of the policy whose run label was checked). An undo
// recorded by an older drillbot names no run: then any policy drillbot
// manages under that name is its.
func DeletePolicy(ctx context.Context, c kubernetes.Interface, ns, name, run string) error {
	pols := c.NetworkingV1().NetworkPolicies(ns)
	p, err := pols.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read NetworkPolicy %s/%s: %w", ns, name, err)
	}
	if owner := p.Labels[v1alpha1.LabelRun]; (run != "" && owner != run) || (run == "" && p.Labels["app.kubernetes.io/managed-by"] != "drillbot") {
		return nil // not this run's: nothing of ours to undo
	}
	uid := p.UID
	err = pols.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete NetworkPolicy %s/%s: %w", ns, name, err)
	}
	return wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		cur, err := pols.Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err) || (err == nil && cur.UID != uid), nil
	})
}

// Evidence implements engine.Evidencer: the secrets backend (Azure Key
// Vault behind External Secrets, in the plan) is cut off.
func (Kind) Evidence(v1alpha1.DrillSpec) (string, []string) {
	return engine.TestControlOutage, []string{"secrets backend (External Secrets' provider)"}
}
