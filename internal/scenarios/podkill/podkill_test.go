package podkill

import (
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
		total        int
	}{
		{name: "enforcing throughout", answers: []answer{{at(0), ap.Denied}, {at(2), ap.Denied}}, total: 2},
		{name: "fail-open for two probes", answers: []answer{{at(0), ap.Denied}, {at(2), ap.Admitted}, {at(4), ap.Admitted}, {at(6), ap.Denied}},
			open: window{count: 2, span: 4 * time.Second}, total: 4},
		{name: "fail-closed then open", answers: []answer{{at(0), ap.Unanswered}, {at(1), ap.Admitted}, {at(3), ap.Denied}},
			open: window{count: 1, span: 2 * time.Second}, closed: window{count: 1, span: time.Second}, total: 3},
		{name: "still open at the last probe", answers: []answer{{at(0), ap.Admitted}}, open: window{count: 1}, total: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := &probeLog{answers: tc.answers}
			open, closed, total := l.windows()
			if open != tc.open || closed != tc.closed || total != tc.total {
				t.Errorf("windows = %+v %+v %d, want %+v %+v %d", open, closed, total, tc.open, tc.closed, tc.total)
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
