package kube

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apiextensionsclientv1 "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset/typed/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// Clients are the API clients drillbot uses.
type Clients struct {
	Config    *rest.Config
	Kube      kubernetes.Interface
	Dynamic   dynamic.Interface
	Metadata  metadata.Interface
	Discovery discovery.CachedDiscoveryInterface
}

// RESTConfig loads a kubeconfig: the named file, else $KUBECONFIG or
// ~/.kube/config, else the in-cluster service account.
func RESTConfig(kubeconfig, context string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	cfg.UserAgent = "drillbot"
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	return cfg, nil
}

// NewClients builds every client from one config.
func NewClients(cfg *rest.Config) (*Clients, error) {
	k, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	d, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	m, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("metadata client: %w", err)
	}
	return &Clients{Config: cfg, Kube: k, Dynamic: d, Metadata: m, Discovery: memory.NewMemCacheClient(k.Discovery())}, nil
}

// EnsureCRD creates the CRD unless it exists and waits until it is
// Established. An existing CRD is left as it is (the chart owns upgrades).
// MissingFields lists the fields (as .spec.x.y paths, per version) that
// want's schema has and installed's does not.
func MissingFields(installed, want *apiextensionsv1.CustomResourceDefinition) []string {
	have := map[string]*apiextensionsv1.JSONSchemaProps{}
	for i := range installed.Spec.Versions {
		if v := installed.Spec.Versions[i]; v.Schema != nil {
			have[v.Name] = v.Schema.OpenAPIV3Schema
		}
	}
	var missing []string
	for _, v := range want.Spec.Versions {
		if v.Schema == nil {
			continue
		}
		h, ok := have[v.Name]
		if !ok {
			missing = append(missing, "version "+v.Name)
			continue
		}
		missing = append(missing, missingProps(v.Name, "", h, v.Schema.OpenAPIV3Schema)...)
	}
	sort.Strings(missing)
	return missing
}

func missingProps(version, path string, have, want *apiextensionsv1.JSONSchemaProps) []string {
	if want == nil || have == nil || have.XPreserveUnknownFields != nil && *have.XPreserveUnknownFields {
		return nil
	}
	var out []string
	for name, w := range want.Properties {
		h, ok := have.Properties[name]
		if !ok {
			out = append(out, version+" "+path+"."+name)
			continue
		}
		out = append(out, missingProps(version, path+"."+name, &h, &w)...)
	}
	if want.Items != nil && want.Items.Schema != nil && have.Items != nil && have.Items.Schema != nil {
		out = append(out, missingProps(version, path+"[]", have.Items.Schema, want.Items.Schema)...)
	}
	return out
}

func EnsureCRD(ctx context.Context, cfg *rest.Config, manifest []byte) error {
	crd, crds, err := crdClient(cfg, manifest)
	if err != nil {
		return err
	}
	// Read first: where the chart installed the CRD, drillbot needs no right
	// to create CRDs, and an existing one is not written to.
	installed, err := crds.Get(ctx, crd.Name, metav1.GetOptions{})
	if err == nil {
		// An older CRD would prune the fields it lacks from every DrillRun
		// written: evidence lost without a word. Refuse instead.
		if missing := MissingFields(installed, crd); len(missing) > 0 {
			return fmt.Errorf("CRD %s in the cluster is older than this drillbot: it lacks %s, which the API server would drop from every run; apply the CRD shipped with this version (drillbot crd apply; the chart's upgrade hook does it unless crds.upgradeHook=false)",
				crd.Name, strings.Join(missing, ", "))
		}
	}
	if apierrors.IsNotFound(err) {
		_, err = crds.Create(ctx, crd, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("CRD %s: %w", crd.Name, err)
	}
	return waitEstablished(ctx, crds, crd.Name)
}

// CRDFieldManager is the field manager of drillbot's server-side apply of
// its CRD (drillbot crd apply).
const CRDFieldManager = "drillbot"

// ApplyCRD applies the CRD with server-side apply (field manager
// CRDFieldManager, forced: the fields an older chart's install owns are
// taken over) and waits until it is Established. It is what makes an
// upgrade carry the CRD (the chart's pre-install/pre-upgrade hook runs it):
// EnsureCRD never writes to an existing CRD. It refuses a CRD in the
// cluster with fields the manifest lacks (a newer drillbot's): applying it
// would make the API server drop them from every DrillRun. It needs get
// and patch on the CRD by name; creating it through apply is authorized as
// create with the name, so that verb can be limited by name too.
func ApplyCRD(ctx context.Context, cfg *rest.Config, manifest []byte) error {
	crd, crds, err := crdClient(cfg, manifest)
	if err != nil {
		return err
	}
	body, err := yaml.YAMLToJSON(manifest)
	if err != nil {
		return fmt.Errorf("decode CRD: %w", err)
	}
	installed, err := crds.Get(ctx, crd.Name, metav1.GetOptions{})
	switch {
	case err == nil:
		if newer := MissingFields(crd, installed); len(newer) > 0 {
			return fmt.Errorf("CRD %s in the cluster is newer than this drillbot: it has %s, which applying this drillbot's CRD would make the API server drop from every run; not applied",
				crd.Name, strings.Join(newer, ", "))
		}
	case !apierrors.IsNotFound(err):
		return fmt.Errorf("read CRD %s: %w", crd.Name, err)
	}
	if _, err := crds.Patch(ctx, crd.Name, types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: CRDFieldManager, Force: ptr.To(true)}); err != nil {
		return fmt.Errorf("apply CRD %s: %w", crd.Name, err)
	}
	return waitEstablished(ctx, crds, crd.Name)
}

// waitEstablished waits until the CRD is Established (its API served).
func waitEstablished(ctx context.Context, crds apiextensionsclientv1.CustomResourceDefinitionInterface, name string) error {
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err := crds.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cond := range got.Status.Conditions {
			if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("CRD %s not established: %w", name, err)
	}
	return nil
}

// crdClient decodes a CRD manifest strictly and returns it with the client
// of the cluster's CRDs.
func crdClient(cfg *rest.Config, manifest []byte) (*apiextensionsv1.CustomResourceDefinition, apiextensionsclientv1.CustomResourceDefinitionInterface, error) {
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(manifest, &crd); err != nil {
		return nil, nil, fmt.Errorf("decode CRD: %w", err)
	}
	c, err := apiextensions.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("apiextensions client: %w", err)
	}
	return &crd, c.ApiextensionsV1().CustomResourceDefinitions(), nil
}
