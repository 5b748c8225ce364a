// Package testharness is the drillbot that integration tests run: the real
// scenario registry and engine against the local cluster, with every
// mutating request recorded, Events on DrillRuns, and logs in the test log.
//
// Each drill runs as its own service account holding exactly the RBAC that
// drillbot derives for it (internal/rbac, the chart's rules), so every
// scenario test also proves that least privilege is enough.
package testharness

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/app"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/plan"
	"github.com/drillbot-io/drillbot/internal/rbac"
	"github.com/drillbot-io/drillbot/internal/scenarios"
	"github.com/drillbot-io/drillbot/test/localcluster"
)

// RunNamespace is where the harness records DrillRuns.
const RunNamespace = "drillbot-system"

// Harness is one test's drillbot.
type Harness struct {
	T       *testing.T
	cluster *localcluster.Cluster
	Writes  *localcluster.WriteRecorder
	log     *slog.Logger
	// Alerts, when set, is where runs read expected alerts and stop
	// conditions (the local cluster's Alertmanager), every AlertPoll.
	Alerts    engine.AlertSource
	AlertPoll time.Duration
	// Dial, when set, opens drillbot's own connections to workloads (from
	// inside a pod's network: localcluster.DialFrom), as drillbot's pod
	// would in a cluster.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// New builds a harness on cluster with the production wiring (app.New);
// it skips the test when there is no cluster.
func New(t *testing.T, cluster *localcluster.Cluster) *Harness {
	t.Helper()
	localcluster.Require(t, cluster)
	// The CRD and namespace are set up before recording starts, so the
	// recorder sees only what drills write.
	if _, err := app.New(context.Background(), cluster.REST, app.Options{Namespace: RunNamespace}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return &Harness{T: t, cluster: cluster, Writes: &localcluster.WriteRecorder{}, log: log}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// Drill parses a drill document through the real loader, as drillbot would.
func (h *Harness) Drill(doc string) drill.Definition {
	h.T.Helper()
	defs, err := drill.Parse(h.T.Name()+".yaml", []byte(doc), scenarios.Registry(scenarios.Deps{}))
	if err != nil {
		h.T.Fatal(err)
	}
	return defs[0]
}

// Run runs a drill as a service account with only the drill's RBAC, and
// returns the DrillRun as the cluster holds it.
func (h *Harness) Run(def drill.Definition) *v1alpha1.DrillRun {
	h.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cfg := h.leastPrivilege(ctx, def)
	a, err := app.New(ctx, h.Writes.Config(cfg), app.Options{Namespace: RunNamespace, Logger: h.log, Holder: h.T.Name(),
		Alerts: h.Alerts, AlertPoll: h.AlertPoll, Dial: h.Dial})
	if err != nil {
		h.T.Fatal(err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		a.Close(cctx)
	}()
	_, from := h.Writes.Requests(0)
	run, err := a.Engine.Run(ctx, def, "test")
	if err != nil {
		h.T.Fatal(err)
	}
	h.checkPlanned(def, from)
	stored, err := a.Store.Get(ctx, run.Name)
	if err != nil {
		h.T.Fatal(err)
	}
	h.T.Logf("run %s: %s %s (RTO %s, RPO %s from %s)", stored.Name, stored.Status.Verdict, stored.Status.Reason,
		stored.Status.RTO, stored.Status.RPO, stored.Status.RPOSource)
	return stored
}

// checkPlanned fails the test when the run sent a request that drillbot
// plan does not list for def (every integration test checks the plan).
func (h *Harness) checkPlanned(def drill.Definition, from int) {
	h.T.Helper()
	calls, err := plan.Calls(def, scenarios.Registry(scenarios.Deps{}), RunNamespace)
	if err != nil {
		h.T.Fatal(err)
	}
	reqs, _ := h.Writes.Requests(from)
	bad, err := Unplanned(reqs, calls)
	if err != nil {
		h.T.Fatal(err)
	}
	for _, b := range bad {
		h.T.Errorf("the run sent a request drillbot plan does not list: %s", b)
	}
}

// leastPrivilege creates a service account bound to the RBAC drillbot
// derives for def (rbac.Base and rbac.ForDrill) and returns a config that
// authenticates as it. Roles in namespaces that do not exist are skipped.
func (h *Harness) leastPrivilege(ctx context.Context, def drill.Definition) *rest.Config {
	h.T.Helper()
	name := h.ServiceAccount(ctx, def)
	tr, err := h.cluster.Kube.CoreV1().ServiceAccounts(RunNamespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		h.T.Fatal(err)
	}
	cfg := rest.AnonymousClientConfig(h.cluster.REST)
	cfg.BearerToken = tr.Status.Token
	return cfg
}

// ServiceAccount creates (once per test) a service account in
// RunNamespace bound to exactly the RBAC drillbot derives for def, waits
// until the authorizer applies it, and returns its name.
func (h *Harness) ServiceAccount(ctx context.Context, def drill.Definition) string {
	h.T.Helper()
	c := h.cluster.Kube
	sum := sha256.Sum256([]byte(h.T.Name()))
	name := "drillbot-test-" + hex.EncodeToString(sum[:6])
	if _, err := c.CoreV1().ServiceAccounts(RunNamespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		h.T.Fatal(err)
	}
	grants, err := rbac.ForDrill(def, scenarios.Registry(scenarios.Deps{}))
	if err != nil {
		h.T.Fatal(err)
	}
	objs, err := rbac.Merge(append(rbac.Base(RunNamespace), grants...)).Objects(name, rbac.Subject{Namespace: RunNamespace, ServiceAccount: name}, nil)
	if err != nil {
		h.T.Fatal(err)
	}
	var probes []authorizationv1.ResourceAttributes
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *rbacv1.ClusterRole:
			_, err = c.RbacV1().ClusterRoles().Create(ctx, o, metav1.CreateOptions{})
			probes = append(probes, attributes("", o.Rules))
			h.T.Cleanup(func() { _ = c.RbacV1().ClusterRoles().Delete(context.Background(), o.Name, metav1.DeleteOptions{}) })
		case *rbacv1.ClusterRoleBinding:
			_, err = c.RbacV1().ClusterRoleBindings().Create(ctx, o, metav1.CreateOptions{})
			h.T.Cleanup(func() {
				_ = c.RbacV1().ClusterRoleBindings().Delete(context.Background(), o.Name, metav1.DeleteOptions{})
			})
		case *rbacv1.Role:
			if _, err = c.RbacV1().Roles(o.Namespace).Create(ctx, o, metav1.CreateOptions{}); err == nil {
				probes = append(probes, attributes(o.Namespace, o.Rules))
			}
		case *rbacv1.RoleBinding:
			_, err = c.RbacV1().RoleBindings(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		}
		if apierrors.IsNotFound(err) || apierrors.IsAlreadyExists(err) {
			err = nil // the namespace does not exist (yet), or an earlier run of this test
		}
		if err != nil {
			h.T.Fatalf("RBAC for %s: %v", def.Name, err)
		}
	}
	// The authorizer sees new bindings after a moment: wait for them.
	user := "system:serviceaccount:" + RunNamespace + ":" + name
	for _, p := range probes {
		if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			r, err := c.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User: user, ResourceAttributes: &p}}, metav1.CreateOptions{})
			return err == nil && r.Status.Allowed, nil
		}); err != nil {
			h.T.Fatalf("RBAC for %s not in effect: %+v", def.Name, p)
		}
	}
	return name
}

// attributes is a probe of the first resource rule of rules.
func attributes(ns string, rules []rbacv1.PolicyRule) authorizationv1.ResourceAttributes {
	r := rules[0]
	for _, x := range rules {
		if len(x.Resources) > 0 {
			r = x
			break
		}
	}
	a := authorizationv1.ResourceAttributes{Namespace: ns, Group: r.APIGroups[0], Resource: r.Resources[0], Verb: r.Verbs[0]}
	if len(r.ResourceNames) > 0 {
		a.Name = r.ResourceNames[0]
	}
	return a
}

// Namespace creates a namespace with labels, deleted when the test ends.
func Namespace(t *testing.T, c *localcluster.Cluster, name string, labels map[string]string) *corev1.Namespace {
	t.Helper()
	created, err := c.Kube.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Kube.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{}) })
	return created
}

// TargetWrites are the mutating requests the drills sent, less drillbot's
// own records in RunNamespace: DrillRuns, their Events, and the Leases that
// lock targets (one run per namespace).
func (h *Harness) TargetWrites() []string {
	return h.Writes.Writes("/drillruns", "/namespaces/"+RunNamespace+"/events", "/namespaces/"+RunNamespace+"/leases")
}

// Deployment creates a Deployment of replicas pods labelled labels (kwok
// runs them) and waits until they are all Ready.
func Deployment(t *testing.T, c *localcluster.Cluster, ns, name string, labels map[string]string, replicas int32) {
	t.Helper()
	ctx := context.Background()
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(replicas), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: name, Image: "registry.example/" + name + ":1"}}}}}}
	if _, err := c.Kube.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		got, err := c.Kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		return err == nil && got.Status.ReadyReplicas == replicas, nil
	}); err != nil {
		t.Fatalf("deployment %s/%s not Ready: %v", ns, name, err)
	}
}

// OptIn are the labels of an opted-in target namespace.
var OptIn = map[string]string{v1alpha1.LabelAllowDisaster: "true"}

// Binary builds the drillbot command once per test and returns its path,
// for tests that run drillbot as separate processes.
func Binary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "drillbot")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/drillbot-io/drillbot/cmd/drillbot").CombinedOutput(); err != nil {
		t.Fatalf("build drillbot: %v\n%s", err, out)
	}
	return bin
}

// ExternalSecretCRD is the ExternalSecret API (external-secrets.io/v1) as
// tests install it: the real group, names and status subresource, with an
// open schema (no External Secrets controller runs in the local cluster).
const ExternalSecretCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: externalsecrets.external-secrets.io}
spec:
  group: external-secrets.io
  scope: Namespaced
  names: {kind: ExternalSecret, plural: externalsecrets, singular: externalsecret, listKind: ExternalSecretList}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`

// Story is a run's reason and findings on one line, for assertions and
// logs.
func Story(st v1alpha1.DrillRunStatus) string {
	return st.Reason + " | " + strings.Join(st.Findings, " | ")
}

// Milestones are a run's milestone names in order, comma-separated.
func Milestones(st v1alpha1.DrillRunStatus) string {
	names := make([]string, 0, len(st.Milestones))
	for _, m := range st.Milestones {
		names = append(names, m.Name)
	}
	return strings.Join(names, ",")
}

// BoundVolume makes a PVC in ns bound to a static hostPath volume of 1Gi
// (reclaim policy Retain) whose directory holds a file "data" with data,
// as a database's claim would be; the PV is deleted when the test ends.
// It returns the bound claim and the volume's directory.
func BoundVolume(t *testing.T, c *localcluster.Cluster, ns, name string, data []byte) (*corev1.PersistentVolumeClaim, string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "data"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	size := resource.MustParse("1Gi")
	pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv-" + ns + "-" + name},
		Spec: corev1.PersistentVolumeSpec{Capacity: corev1.ResourceList{corev1.ResourceStorage: size},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir}},
			ClaimRef:                      &corev1.ObjectReference{Namespace: ns, Name: name}}}
	if _, err := c.Kube.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Kube.CoreV1().PersistentVolumes().Delete(context.Background(), pv.Name, metav1.DeleteOptions{})
	})
	claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, StorageClassName: ptr.To(""),
			VolumeName: pv.Name, Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}}}}
	if _, err := c.Kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, claim, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var bound *corev1.PersistentVolumeClaim
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		var err error
		bound, err = c.Kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
		return err == nil && bound.Status.Phase == corev1.ClaimBound, err
	}); err != nil {
		t.Fatalf("PVC %s/%s not bound: %v", ns, name, err)
	}
	return bound, dir
}
