package main

// drillbot plan on the local cluster, for every scenario kind: a drill that
// would run (its service account holding exactly the derived RBAC, every
// SubjectAccessReview allowed by the real authorizer), the same drill on a
// namespace without the opt-in label (refused), and a service account with
// no RBAC (the fault's own call named as denied); plan itself writes
// nothing.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/drill"
	"github.com/drillbot-io/drillbot/internal/plan"
	"github.com/drillbot-io/drillbot/internal/scenarios"
	"github.com/drillbot-io/drillbot/test/localcluster"
	"github.com/drillbot-io/drillbot/test/testharness"
)

func admissionProbeSetup(t *testing.T, name, ns string) (string, func(*testing.T, bool)) {
	testharness.Namespace(t, cluster, ns, testharness.OptIn)
	return fmt.Sprintf(`apiVersion: drillbot.io/v1alpha1
kind: Drill
metadata: {name: %s}
spec:
  scenario: admission-probe
  objectives: {rto: 1m}
  target: {namespace: %s}
  params: {attempt: {image: registry.example/unsigned:1}}
`, name, ns), nil
}

func TestPlanEveryScenarioKind(t *testing.T) {
	localcluster.Require(t, cluster)
	kinds := []crashScenario{
		{"admission-probe", admissionProbeSetup},
		{"corrupt-config", crashFalco},
		{"pod-kill", crashPodKill},
		{"block-secrets-backend", crashBlockEgress},
		{"namespace-restore", crashNamespaceRestore},
	}
	testharness.New(t, cluster) // drillbot's namespace and CRD
	// A service account with no RBAC at all.
	nobody := "drillbot-plan-nobody"
	if _, err := cluster.Kube.CoreV1().ServiceAccounts(testharness.RunNamespace).Create(context.Background(),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: nobody}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			ctx := context.Background()
			name := "plan-" + localcluster.RandomSuffix()
			doc, _ := k.setup(t, name, name)
			file := drillFile(t, doc)
			h := testharness.New(t, cluster)
			sa := h.ServiceAccount(ctx, h.Drill(doc))

			// Would run: preflight passes, every call allowed for the drill's own service account.
			p, code, out := runPlan(t, file, "drillbot-system:"+sa)
			if code != 0 || p.Verdict != plan.WouldRun || p.Denied != 0 {
				t.Fatalf("exit %d, verdict %s, %d denied, want WOULD RUN with every call allowed:\n%s", code, p.Verdict, p.Denied, out)
			}
			if len(p.Hits) == 0 {
				t.Errorf("no preview of what the fault would hit")
			}
			if k.name != "admission-probe" && !slices.ContainsFunc(p.Calls, func(c plan.CallCheck) bool { return c.Mutating() && strings.Contains(c.Why, "THE FAULT") }) {
				t.Errorf("no call is the fault")
			}

			// Zero writes: plan in-process through a recorder.
			rec := &localcluster.WriteRecorder{}
			defs, err := drill.LoadPaths([]string{file}, scenarios.Registry(scenarios.Deps{}))
			if err != nil {
				t.Fatal(err)
			}
			cf := clusterFlags{protectedFlags: protectedFlags{namespace: testharness.RunNamespace, veleroNamespace: "velero"}, logLevel: "warn"}
			if _, err := buildPlan(ctx, rec.Config(cluster.REST), cf, defs[0], plan.ServiceAccount(testharness.RunNamespace, sa), io.Discard); err != nil {
				t.Fatal(err)
			}
			reqs, _ := rec.Requests(0)
			for _, r := range reqs {
				if r.Method == "GET" || strings.HasSuffix(r.URL.Path, "/subjectaccessreviews") || r.URL.Query().Get("dryRun") != "" {
					continue
				}
				t.Errorf("plan wrote: %s %s", r.Method, r.URL)
			}

			// A service account without the drill's RBAC: the fault's call is named as denied.
			p, code, out = runPlan(t, file, "drillbot-system:"+nobody)
			if code != exitFail || p.Verdict != plan.MissingPermissions {
				t.Fatalf("exit %d, verdict %s, want MISSING PERMISSIONS:\n%s", code, p.Verdict, out)
			}
			if want := fault(p); want != "" {
				for _, c := range p.Calls {
					if c.Why == want && c.Allowed {
						t.Errorf("the fault's call %s %s was allowed for a service account without RBAC", c.Verb, c.Resource)
					}
				}
			}

			// Not opted in: refused before anything would be touched.
			patch := `{"metadata":{"labels":{"` + v1alpha1.LabelAllowDisaster + `":null}}}`
			if _, err := cluster.Kube.CoreV1().Namespaces().Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
			p, code, out = runPlan(t, file, "drillbot-system:"+sa)
			if code != exitFail || p.Verdict != plan.WouldBeRefused || !strings.Contains(p.Preflight, "not opted in") {
				t.Fatalf("exit %d, verdict %s %q, want WOULD BE REFUSED for the missing opt-in:\n%s", code, p.Verdict, p.Preflight, out)
			}
			// The table says the same for people.
			var table, errOut bytes.Buffer
			if c := dispatch(ctx, "drillbot", []string{"plan", "-f", file, "--kubeconfig", cluster.Kubeconfig, "-n", testharness.RunNamespace, "--as", sa}, &table, &errOut); c != exitFail ||
				!strings.Contains(table.String(), "Verdict    WOULD BE REFUSED") {
				t.Errorf("table (exit %d):\n%s\n%s", c, table.String(), errOut.String())
			}
		})
	}
}

// runPlan runs drillbot plan -o json as a user would, and decodes it.
func runPlan(t *testing.T, file, as string) (*plan.Plan, int, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := dispatch(context.Background(), "drillbot", []string{"plan", "-f", file, "--kubeconfig", cluster.Kubeconfig,
		"-n", testharness.RunNamespace, "--as", as, "-o", "json"}, &out, &errOut)
	var p plan.Plan
	if err := json.Unmarshal(out.Bytes(), &p); err != nil {
		t.Fatalf("exit %d: %v\nstdout: %s\nstderr: %s", code, err, out.String(), errOut.String())
	}
	return &p, code, out.String() + errOut.String()
}

// fault is the Why of the plan's fault call ("" for a read-only kind).
func fault(p *plan.Plan) string {
	for _, c := range p.Calls {
		if strings.Contains(c.Why, "THE FAULT") {
			return c.Why
		}
	}
	return ""
}
