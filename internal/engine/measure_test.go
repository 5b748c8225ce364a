package engine

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
)

func TestRPO(t *testing.T) {
	disaster := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	cases := []struct {
		name   string
		data   time.Time
		want   time.Duration
		wantOK bool
	}{
		{"marker 42m before the disaster", disaster.Add(-42 * time.Minute), 42 * time.Minute, true},
		{"marker at the disaster", disaster, 0, true},
		// A marker stamped over the restored data (or by a skewed clock) is
		// no measurement: never an RPO of 0.
		{"marker after the disaster is not measurable", disaster.Add(2 * time.Second), 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, why := RPO(disaster, tc.data)
			if got != tc.want || ok != tc.wantOK || (why == "") != tc.wantOK {
				t.Errorf("RPO = %v, %v, %q; want %v, %v", got, ok, why, tc.want, tc.wantOK)
			}
		})
	}
}

func TestBreakdownAddsUpToRTO(t *testing.T) {
	d := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	ms := []v1alpha1.Milestone{
		{Name: "namespace-terminated", At: metav1.NewMicroTime(d.Add(10300 * time.Millisecond))},
		{Name: "restore-completed", At: metav1.NewMicroTime(d.Add(25 * time.Second))},
		{Name: "workloads-ready", At: metav1.NewMicroTime(d.Add(40 * time.Second))},
	}
	recovered := d.Add(40*time.Second + 2*time.Millisecond)
	got := Breakdown(d, recovered, ms)
	want := []string{"10.3s", "14.7s", "15.002s"}
	var sum time.Duration
	for i, s := range got {
		if s.Duration != want[i] || s.Name != ms[i].Name {
			t.Errorf("span %d = %+v, want %s %s", i, s, ms[i].Name, want[i])
		}
		v, _ := time.ParseDuration(s.Duration)
		sum += v
	}
	if sum != recovered.Sub(d) {
		t.Errorf("spans add up to %v, RTO is %v", sum, recovered.Sub(d))
	}
	if one := Breakdown(d, recovered, nil); len(one) != 1 || one[0].Duration != "40.002s" {
		t.Errorf("no milestones: %+v", one)
	}
}

func TestDecideOrder(t *testing.T) {
	rto := func(d time.Duration) *time.Duration { return &d }
	cases := []struct {
		name string
		o    outcome
		want v1alpha1.Verdict
	}{
		{"failure beats inconclusive", outcome{failures: []string{"x"}, inconclusive: "y", rto: rto(time.Second)}, v1alpha1.VerdictFail},
		{"inconclusive beats pass", outcome{inconclusive: "y", rto: rto(time.Second)}, v1alpha1.VerdictInconclusive},
		{"pass", outcome{rto: rto(time.Second)}, v1alpha1.VerdictPass},
		{"exactly at target passes", outcome{rto: rto(time.Minute)}, v1alpha1.VerdictPass},
		{"a millisecond over fails", outcome{rto: rto(time.Minute + time.Millisecond)}, v1alpha1.VerdictFail},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got, reason := Decide(tc.o, time.Minute, 0); got != tc.want {
				t.Errorf("Decide = %s (%s), want %s", got, reason, tc.want)
			}
		})
	}
}
