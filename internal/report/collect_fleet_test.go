package report

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// TestCollectFleetReadsAFewClustersAtATime: ten clusters are read at most
// four at a time (memory bounded, and each read's timeout runs
// while it has the CPU), and every one is reported, here as unreachable
// with its own error.
func TestCollectFleetReadsAFewClustersAtATime(t *testing.T) {
	var mu sync.Mutex
	now, most := 0, 0
	var targets []Target
	for i := range 10 {
		name := fmt.Sprintf("cluster-%02d", i)
		targets = append(targets, Target{Name: name, Config: func() (*rest.Config, error) {
			mu.Lock()
			now++
			most = max(most, now)
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
			mu.Lock()
			now--
			mu.Unlock()
			return nil, fmt.Errorf("%s: no credentials", name)
		}})
	}
	f := CollectFleet(context.Background(), targets, "drillbot-system", nil, Options{Now: time.Now(), WindowDays: 30}, time.Minute)
	// Four: the bound drillbot report documents (docs/results.md).
	if most > 4 || most < 2 {
		t.Errorf("%d clusters read at once, want 2..4", most)
	}
	if len(f.Unreachable) != 10 {
		t.Fatalf("unreachable %v, want all 10", f.Unreachable)
	}
	for _, r := range f.Rows {
		if r.Status != "UNREACHABLE: "+r.Cluster+": no credentials" {
			t.Errorf("row %+v: not its own error", r)
		}
	}
}
