package realstack_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"k8s.io/utils/clock"

	"github.com/drillbot-io/drillbot/internal/halt"
	"github.com/drillbot-io/drillbot/internal/kube"
	"github.com/drillbot-io/drillbot/internal/plan"
	"github.com/drillbot-io/drillbot/internal/scenarios"
	"github.com/drillbot-io/drillbot/test/realstack"
	"github.com/drillbot-io/drillbot/test/testharness"
)

// TestPlanKillKyverno: drillbot plan of kill-kyverno against the real
// Kyverno, as the drill's own least-privilege service account: it would
// run, every call allowed by the API server, and it says what the kill
// would hit (Kyverno's admission controller pod, the webhook
// configurations Kyverno registered, the ClusterPolicy that must stay
// Ready).
func TestPlanKillKyverno(t *testing.T) {
	s := kyverno(t)
	applyPolicy(t, s, "Fail", s.publicKey)
	h := testharness.New(t, cluster)
	def := h.Drill(fmt.Sprintf(killKyvernoDrill, probeNS, s.unsigned, kyvernoDenial, realstack.KyvernoWebhooks))
	ctx := context.Background()
	sa := h.ServiceAccount(ctx, def)
	c, err := kube.NewClients(cluster.REST)
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Build(ctx, plan.Config{
		Kinds:     scenarios.Registry(scenarios.Deps{Clients: c, Clock: clock.RealClock{}, Protected: []string{testharness.RunNamespace, "velero"}}),
		Namespace: testharness.RunNamespace, Reviewer: plan.SAR{Kube: c.Kube},
		Halt: halt.Switch{Kube: c.Kube, Namespace: testharness.RunNamespace},
	}, def, plan.ServiceAccount(testharness.RunNamespace, sa))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := plan.Write(&out, p, "table"); err != nil {
		t.Fatal(err)
	}
	t.Logf("drillbot plan kill-kyverno:\n%s", out.String())
	if p.Verdict != plan.WouldRun || p.Denied != 0 {
		t.Fatalf("verdict %s, %d denied, want WOULD RUN", p.Verdict, p.Denied)
	}
	hits := strings.Join(p.Hits, "\n")
	for _, want := range []string{kyvernoPods(t)[0], "webhook configurations watched (" + realstack.KyvernoWebhooks + ")", "required clusterpolicies: require-signed-images"} {
		if !strings.Contains(hits, want) {
			t.Errorf("the preview lacks %q:\n%s", want, hits)
		}
	}
}
