package podsecurityaudit

import (
	"context"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/version"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	psaapi "k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"
	"k8s.io/utils/ptr"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
)

func namespace(name string, labels map[string]string) *corev1.Namespace {
	l := map[string]string{"env": "production"}
	for k, v := range labels {
		l[k] = v
	}
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}
}

// Restricted is a pod spec Pod Security restricted admits.
func restricted() corev1.PodSpec {
	return corev1.PodSpec{SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
		Containers: []corev1.Container{{Name: "app", Image: "app:1", SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false),
			Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}}}}
}

func pod(ns, name string, spec corev1.PodSpec, phase corev1.PodPhase) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: spec, Status: corev1.PodStatus{Phase: phase}}
}

func TestAudit(t *testing.T) {
	root := corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}}
	privileged := restricted()
	privileged.Containers[0].SecurityContext.Privileged = ptr.To(true)
	cases := []struct {
		name     string
		params   string
		objs     []runtime.Object
		failures []string
		findings []string
		none     bool
	}{
		{name: "enforced and compliant", objs: []runtime.Object{namespace("shop", map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}),
			pod("shop", "web", restricted(), corev1.PodRunning)},
			findings: []string{"Pod Security compliance: 1 of 1 namespaces", "namespace shop: enforces restricted, 1 pods, 0 violating restricted"}},
		{name: "unlabelled namespace", objs: []runtime.Object{namespace("shop", nil), pod("shop", "web", restricted(), corev1.PodRunning)},
			failures: []string{"namespace shop enforces no Pod Security level"}},
		{name: "baseline is less", objs: []runtime.Object{namespace("shop", map[string]string{"pod-security.kubernetes.io/enforce": "baseline"})},
			failures: []string{"namespace shop enforces baseline, less than restricted"}},
		{name: "a pod admitted before the label", objs: []runtime.Object{namespace("shop", map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}),
			pod("shop", "legacy", root, corev1.PodRunning), pod("shop", "done", root, corev1.PodSucceeded)},
			failures: []string{"namespace shop: 1 of 1 pods violate restricted: legacy: allowPrivilegeEscalation != false"}},
		{name: "staging: enforce baseline, audit restricted", params: `{"namespaces":{"matchLabels":{"env":"production"}},"enforce":"baseline","audit":"restricted"}`,
			objs:     []runtime.Object{namespace("shop", map[string]string{"pod-security.kubernetes.io/enforce": "baseline"}), pod("shop", "legacy", root, corev1.PodRunning)},
			failures: []string{"namespace shop: 1 of 1 pods violate restricted"}},
		{name: "baseline audit passes a root pod but not a privileged one", params: `{"namespaces":{"matchLabels":{"env":"production"}},"enforce":"baseline"}`,
			objs: []runtime.Object{namespace("shop", map[string]string{"pod-security.kubernetes.io/enforce": "baseline"}),
				pod("shop", "root", root, corev1.PodRunning), pod("shop", "priv", privileged, corev1.PodRunning)},
			failures: []string{"namespace shop: 1 of 2 pods violate baseline: priv: privileged"}},
		{name: "pinned version", objs: []runtime.Object{namespace("shop", map[string]string{"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "v1.22"})},
			failures: []string{"namespace shop pins restricted to v1.22"},
			findings: []string{"namespace shop pins the enforced level to Kubernetes v1.22"}},
		{name: "another environment is not audited", objs: []runtime.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "dev", Labels: map[string]string{"env": "dev"}}}}, none: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			params := tc.params
			if params == "" {
				params = `{"namespaces":{"matchLabels":{"env":"production"}}}`
			}
			kube := fake.NewClientset(tc.objs...)
			kube.Discovery().(*fakediscovery.FakeDiscovery).FakedServerVersion = &version.Info{GitVersion: "v1.33.0"}
			def := drill.Definition{Name: "psa", Spec: v1alpha1.DrillSpec{Scenario: Name, Objectives: v1alpha1.Objectives{RTO: "1m"}, Params: []byte(params)}}
			if errs := (Kind{}).ValidateParams(def.Spec, field.NewPath("spec", "params")); len(errs) > 0 {
				t.Fatal(errs.ToAggregate())
			}
			sc, err := Kind{Deps: Deps{Kube: kube}}.New(def, "run-1")
			if err != nil {
				t.Fatal(err)
			}
			if err := sc.Recover(context.Background(), marks{}); err != nil {
				t.Fatal(err)
			}
			v, _ := sc.Verify(context.Background())
			fails, finds := strings.Join(v.Failures, "\n"), strings.Join(v.Findings, "\n")
			if tc.none {
				if v.Inconclusive == "" {
					t.Errorf("no namespace matched, verdict parts %+v", v)
				}
				return
			}
			if len(tc.failures) == 0 && fails != "" {
				t.Errorf("failures %q", fails)
			}
			for _, w := range tc.failures {
				if !strings.Contains(fails, w) {
					t.Errorf("failures %q, want %q", fails, w)
				}
			}
			for _, w := range tc.findings {
				if !strings.Contains(finds, w) {
					t.Errorf("findings %q, want %q", finds, w)
				}
			}
			for _, a := range kube.Actions() {
				if a.GetVerb() != "list" && (a.GetVerb() != "get" || a.GetResource().Resource != "version") {
					t.Errorf("the audit did %s %s", a.GetVerb(), a.GetResource().Resource)
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for params, want := range map[string]string{
		`{}`: "spec.params.namespaces: Required",
		`{"namespaces":{"matchLabels":{"env":"production"}},"enforce":"strict"}`: `spec.params.enforce: Unsupported value: "strict"`,
	} {
		errs := (Kind{}).ValidateParams(v1alpha1.DrillSpec{Params: []byte(params)}, field.NewPath("spec", "params"))
		if agg := errs.ToAggregate(); agg == nil || !strings.Contains(agg.Error(), want) {
			t.Errorf("%s: %v, want %q", params, agg, want)
		}
	}
}

type marks struct{}

func (marks) Mark(string) {}

// TestPinnedVersion is the adversary's case: a namespace labelled
// enforce=restricted, no pod violating anything, all green, but pinned with
// enforce-version to a release whose restricted level lacks checks the API
// server enforces at latest: it admits pods the audit (at latest) names as
// violations, so it is not compliant.
func TestPinnedVersion(t *testing.T) {
	restrictedNS := func(version string) *corev1.Namespace {
		l := map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}
		if version != "" {
			l["pod-security.kubernetes.io/enforce-version"] = version
		}
		return namespace("shop", l)
	}
	baselineNS := func(version string) *corev1.Namespace {
		return namespace("shop", map[string]string{"pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/enforce-version": version})
	}
	cases := []struct {
		name     string
		params   string
		ns       *corev1.Namespace
		server   string // the API server's gitVersion; "" = /version fails
		failures []string
		findings []string
		inconc   string
	}{
		{name: "pinned to v1.22 on a v1.33 API server", ns: restrictedNS("v1.22"), server: "v1.33.2",
			failures: []string{"namespace shop pins restricted to v1.22 (pod-security.kubernetes.io/enforce-version): the API server (v1.33) does not enforce runAsUser (since v1.23) there"},
			findings: []string{"Pod Security compliance: 0 of 1 namespaces"}},
		{name: "pinned below the library's latest", ns: restrictedNS("v1.33"), server: "v1.34.1",
			failures: []string{"does not enforce hostProbesAndHostLifecycle (since v1.34)"}},
		{name: "pinned to the API server's version", ns: restrictedNS("v1.33"), server: "v1.33.2-gke.100",
			findings: []string{"Pod Security compliance: 1 of 1 namespaces", "namespace shop pins the enforced level to Kubernetes v1.33"}},
		{name: "pinned newer than the API server", ns: restrictedNS("v1.34"), server: "v1.30.0",
			findings: []string{"Pod Security compliance: 1 of 1 namespaces"}},
		{name: "pinned to latest", ns: restrictedNS("latest"), server: "v1.34.0", findings: []string{"Pod Security compliance: 1 of 1 namespaces"}},
		{name: "baseline pinned where its checks were only loosened since", params: `{"namespaces":{"matchLabels":{"env":"production"}},"enforce":"baseline"}`,
			ns: baselineNS("v1.28"), server: "v1.33.0", findings: []string{"Pod Security compliance: 1 of 1 namespaces"}},
		{name: "baseline pinned before a check was tightened", params: `{"namespaces":{"matchLabels":{"env":"production"}},"enforce":"baseline"}`,
			ns: baselineNS("v1.18"), server: "v1.33.0", failures: []string{"seccompProfile_baseline as revised in v1.19"}},
		{name: "not a version", ns: restrictedNS("v1.22.3"), server: "v1.33.0",
			failures: []string{`namespace shop: pod-security.kubernetes.io/enforce-version="v1.22.3" is not a version`}},
		{name: "the API server's version unreadable", ns: restrictedNS("v1.22"), server: "",
			inconc: "whether namespace shop's pin to v1.22 leaves checks unenforced is unknown: the API server's version"},
		{name: "an API server newer than drillbot's Pod Security library", ns: restrictedNS("v1.34"), server: "v1.36.0",
			inconc: "drillbot's Pod Security library knows checks up to v1.34"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			params := tc.params
			if params == "" {
				params = `{"namespaces":{"matchLabels":{"env":"production"}}}`
			}
			kube := fake.NewClientset(tc.ns, pod("shop", "web", restricted(), corev1.PodRunning))
			if tc.server != "" {
				kube.Discovery().(*fakediscovery.FakeDiscovery).FakedServerVersion = &version.Info{GitVersion: tc.server}
			} else {
				kube.PrependReactor("get", "version", func(k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, apierrors.NewServiceUnavailable("the server is currently unable to handle the request")
				})
			}
			def := drill.Definition{Name: "psa", Spec: v1alpha1.DrillSpec{Scenario: Name, Objectives: v1alpha1.Objectives{RTO: "1m"}, Params: []byte(params)}}
			sc, err := Kind{Deps: Deps{Kube: kube}}.New(def, "run-1")
			if err != nil {
				t.Fatal(err)
			}
			if err := sc.Recover(context.Background(), marks{}); err != nil {
				t.Fatal(err)
			}
			v, _ := sc.Verify(context.Background())
			fails, finds := strings.Join(v.Failures, "\n"), strings.Join(v.Findings, "\n")
			if len(tc.failures) == 0 && fails != "" {
				t.Errorf("failures %q", fails)
			}
			for _, w := range tc.failures {
				if !strings.Contains(fails, w) {
					t.Errorf("failures %q, want %q", fails, w)
				}
			}
			for _, w := range tc.findings {
				if !strings.Contains(finds, w) {
					t.Errorf("findings %q, want %q", finds, w)
				}
			}
			if !strings.Contains(v.Inconclusive, tc.inconc) || (tc.inconc == "" && v.Inconclusive != "") {
				t.Errorf("inconclusive %q, want %q", v.Inconclusive, tc.inconc)
			}
			for _, a := range kube.Actions() {
				if a.GetVerb() != "list" && (a.GetVerb() != "get" || a.GetResource().Resource != "version") {
					t.Errorf("the audit did %s %s", a.GetVerb(), a.GetResource().Resource)
				}
			}
		})
	}
}

// TestRevisionsClassified: every revision of a check in the library is
// known to loosen it (loosened) or to tighten it (here), so that a library
// update with a new revision is read before a pin across it is trusted.
func TestRevisionsClassified(t *testing.T) {
	tightened := map[psapolicy.CheckID][]psaapi.Version{
		// 1.19: the seccompProfile field checked, not only the annotations.
		"seccompProfile_baseline": {psaapi.MajorMinorVersion(1, 19)},
	}
	seen := map[string]bool{}
	for _, c := range psapolicy.DefaultChecks() {
		for _, rev := range c.Versions[1:] {
			v := rev.MinimumVersion
			seen[string(c.ID)+"@"+v.String()] = true
			if slices.Contains(loosened[c.ID], v) == slices.Contains(tightened[c.ID], v) {
				t.Errorf("revision %s of %s: classify it as loosened or tightened (read the library's check)", v, c.ID)
			}
		}
	}
	for _, m := range []map[psapolicy.CheckID][]psaapi.Version{loosened, tightened} {
		for id, vs := range m {
			for _, v := range vs {
				if !seen[string(id)+"@"+v.String()] {
					t.Errorf("%s has no revision %s in the library", id, v)
				}
			}
		}
	}
}
