package halt

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/drillbot-io/drillbot/internal/alerts"
	"github.com/drillbot-io/drillbot/internal/drill"
)

// PolicyName is the in-cluster policy's ConfigMap, beside the halt switch:
// the stop conditions, freeze windows and Alertmanager every drillbot
// process that runs or plans drills against this cluster obeys (serve,
// run, plan), whatever its own flags say. The chart creates it.
const PolicyName = "drillbot-policy"

// The policy ConfigMap's keys; any other key is refused (a typo would
// silently drop a stop condition).
const (
	// PolicyKey holds a DrillPolicy document (stop conditions, freeze
	// windows).
	PolicyKey = "policy.yaml"
	// AlertmanagerURLKey holds the Alertmanager (API v2) the stop
	// conditions are read from.
	AlertmanagerURLKey = "alertmanager-url"
	// AlertClusterLabelKey holds this cluster's label on the alerts
	// (label=value, as --alert-cluster-label): expected alerts count only
	// when they carry it.
	AlertClusterLabelKey = "alert-cluster-label"
)

// ClusterPolicy is what the policy ConfigMap declares. The zero value is
// "no ConfigMap".
type ClusterPolicy struct {
	// Source names the ConfigMap ("configmap NS/drillbot-policy").
	Source string
	// ResourceVersion is the ConfigMap's as read ("" when absent).
	ResourceVersion string
	Policy          drill.Policy
	AlertmanagerURL string
	// AlertClusterLabel is this cluster's identity on a shared
	// Alertmanager ("" when not declared).
	AlertClusterLabel alerts.Scope
}

// Declares reports whether the cluster declares anything.
func (p ClusterPolicy) Declares() bool {
	return len(p.Policy.StopWhen) > 0 || len(p.Policy.Freeze) > 0 || p.AlertmanagerURL != "" || !p.AlertClusterLabel.IsZero()
}

// Policies reads the in-cluster policy in Namespace.
type Policies struct {
	Kube      kubernetes.Interface
	Namespace string
}

// Source names the ConfigMap in errors and logs.
func (s Policies) Source() string { return "configmap " + s.Namespace + "/" + PolicyName }

// Load reads and validates the policy from the API server. No ConfigMap is
// no policy; any other error reading it is an error (the caller refuses to
// run rather than run without the cluster's stop conditions), and so is an
// invalid policy, named by key and field.
func (s Policies) Load(ctx context.Context) (ClusterPolicy, error) {
	cm, err := s.Kube.CoreV1().ConfigMaps(s.Namespace).Get(ctx, PolicyName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return ClusterPolicy{Source: s.Source()}, nil
	}
	if err != nil {
		return ClusterPolicy{}, fmt.Errorf("read the cluster's drill policy (%s): %w", s.Source(), err)
	}
	return s.parse(cm)
}

func (s Policies) parse(cm *corev1.ConfigMap) (ClusterPolicy, error) {
	p := ClusterPolicy{Source: s.Source(), ResourceVersion: cm.ResourceVersion}
	known := []string{PolicyKey, AlertmanagerURLKey, AlertClusterLabelKey}
	var errs []error
	for k := range cm.Data {
		if !slices.Contains(known, k) {
			errs = append(errs, fmt.Errorf("%s: unknown key %q (known: %s)", p.Source, k, strings.Join(known, ", ")))
		}
	}
	for k := range cm.BinaryData {
		errs = append(errs, fmt.Errorf("%s: binaryData key %q: the policy is text (data)", p.Source, k))
	}
	if doc := cm.Data[PolicyKey]; strings.TrimSpace(doc) != "" {
		pol, err := drill.ParsePolicy(p.Source+" ("+PolicyKey+")", []byte(doc))
		if err != nil {
			errs = append(errs, err)
		}
		p.Policy = pol
	}
	p.AlertmanagerURL = strings.TrimSpace(cm.Data[AlertmanagerURLKey])
	if v := strings.TrimSpace(cm.Data[AlertClusterLabelKey]); v != "" {
		scope, err := alerts.ParseScope(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", p.Source, AlertClusterLabelKey, err))
		}
		p.AlertClusterLabel = scope
	}
	if err := errors.Join(errs...); err != nil {
		return ClusterPolicy{}, err
	}
	return p, nil
}

// Watch calls onChange once the policy differs from loaded (changed,
// created or deleted since it was read), until ctx ends. A process that
// obeys the policy it loaded calls it to stop obeying a stale one.
func (s Policies) Watch(ctx context.Context, loaded ClusterPolicy, onChange func()) error {
	f := informers.NewSharedInformerFactoryWithOptions(s.Kube, 0, informers.WithNamespace(s.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", PolicyName).String()
		}))
	seen := func(obj any) {
		if cm, ok := obj.(*corev1.ConfigMap); ok && cm.ResourceVersion != loaded.ResourceVersion {
			onChange()
		}
	}
	if _, err := f.Core().V1().ConfigMaps().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: seen, UpdateFunc: func(_, obj any) { seen(obj) },
		DeleteFunc: func(any) { onChange() },
	}); err != nil {
		return err
	}
	f.Start(ctx.Done())
	synced := f.WaitForCacheSync(ctx.Done())
	if loaded.ResourceVersion != "" && ctx.Err() == nil {
		// Deleted between Load and the first list: no Delete event comes.
		for _, ok := range synced {
			if ok {
				if _, exists, _ := f.Core().V1().ConfigMaps().Informer().GetStore().GetByKey(s.Namespace + "/" + PolicyName); !exists {
					onChange()
				}
			}
		}
	}
	<-ctx.Done()
	f.Shutdown()
	return nil
}
