package podkill

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	ap "github.com/drillbot-io/drillbot/internal/scenarios/admissionprobe"
)

func TestProbeWindows(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	cases := []struct {
		name         string
		answers      []answer
		open, closed window
		masked       window
		total        int
	}{
		{name: "enforcing throughout", answers: []answer{{at(0), ap.Denied, ""}, {at(2), ap.Denied, ""}}, total: 2},
		{name: "fail-open for two probes", answers: []answer{{at(0), ap.Denied, ""}, {at(2), ap.Admitted, ""}, {at(4), ap.Admitted, ""}, {at(6), ap.Denied, ""}},
			open: window{count: 2, span: 4 * time.Second}, total: 4},
		{name: "fail-closed then open", answers: []answer{{at(0), ap.Unanswered, ""}, {at(1), ap.Admitted, ""}, {at(3), ap.Denied, ""}},
			open: window{count: 1, span: 2 * time.Second}, closed: window{count: 1, span: time.Second}, total: 3},
		{name: "still open at the last probe", answers: []answer{{at(0), ap.Admitted, ""}}, open: window{count: 1}, total: 1},
		{name: "denied by another control meanwhile", answers: []answer{{at(0), ap.Denied, ""}, {at(1), deniedOtherwise, "violates PodSecurity"}, {at(2), deniedOtherwise, ""}, {at(4), ap.Denied, ""}},
			masked: window{count: 2, span: 3 * time.Second}, total: 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := &probeLog{answers: tc.answers}
			open, closed, masked, total := l.windows()
			if open != tc.open || closed != tc.closed || masked != tc.masked || total != tc.total {
				t.Errorf("windows = %+v %+v %+v %d, want %+v %+v %+v %d", open, closed, masked, total, tc.open, tc.closed, tc.masked, tc.total)
			}
		})
	}
}

// TestVerifyMaskedProbes: on real Kyverno, with failurePolicy Ignore, Pod
// Security denied the probe while Kyverno was down (the attempt was not a
// restricted pod), and the drill said PASS with no fail-open window. A
// probe denied for another reason must keep the verdict from PASS.
func TestVerifyMaskedProbes(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	cases := []struct {
		name             string
		answers          []answer
		wantInconclusive string
		wantFailures     int
	}{
		{name: "masked by Pod Security", answers: []answer{{t0, deniedOtherwise, `pods "x" is forbidden: violates PodSecurity "restricted:latest"`}, {t0.Add(time.Second), ap.Denied, "signature"}},
			wantInconclusive: `1 of 2 probes while admission was down (1s) were denied for another reason than "signature", so a fail-open window may be hidden: pods "x" is forbidden: violates PodSecurity`},
		{name: "masked and open: FAIL", answers: []answer{{t0, deniedOtherwise, "violates PodSecurity"}, {t0.Add(time.Second), ap.Admitted, ""}, {t0.Add(2 * time.Second), ap.Denied, "signature"}},
			wantInconclusive: "denied for another reason", wantFailures: 1},
		{name: "enforcing throughout", answers: []answer{{t0, ap.Denied, "signature"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &scenario{params: Params{Admission: &Admission{ReasonContains: "signature", Attempt: ap.PodSpec{Image: "unsigned"}}},
				probes: probeLog{answers: tc.answers}, stop: func() {}}
			v, err := s.Verify(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(v.Inconclusive, tc.wantInconclusive) || (tc.wantInconclusive == "") != (v.Inconclusive == "") || len(v.Failures) != tc.wantFailures {
				t.Errorf("inconclusive %q failures %q, want %q and %d failures", v.Inconclusive, v.Failures, tc.wantInconclusive, tc.wantFailures)
			}
		})
	}
}

func TestValidateParams(t *testing.T) {
	sel := map[string]string{"app": "x"}
	cases := []struct {
		name     string
		selector map[string]string
		params   string
		want     string
	}{
		{"plain", sel, `{}`, ""},
		{"no selector", nil, `{}`, "spec.target.selector: Required"},
		{"admission without image", sel, `{"admission":{}}`, "spec.params.admission.attempt.image: Required"},
		{"interval too short", sel, `{"admission":{"attempt":{"image":"x"},"interval":"10ms"}}`, "spec.params.admission.interval"},
		{"required objects without resource", sel, `{"requiredObjects":{"version":"v1"}}`, "spec.params.requiredObjects"},
		{"webhook selector invalid", sel, `{"admission":{"attempt":{"image":"x"},"webhookConfigurations":"a in (b"}}`, "spec.params.admission.webhookConfigurations"},
		{"webhook selector selects everything", sel, `{"admission":{"attempt":{"image":"x"},"webhookConfigurations":" "}}`, "not every one"},
		{"webhook selector", sel, `{"admission":{"attempt":{"image":"x"},"webhookConfigurations":"webhook.kyverno.io/managed-by=kyverno"}}`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := v1alpha1.DrillSpec{Target: v1alpha1.Target{Namespace: "ns", Selector: tc.selector}, Params: []byte(tc.params)}
			err := Kind{}.ValidateParams(spec, field.NewPath("spec", "params")).ToAggregate()
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}
