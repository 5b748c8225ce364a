package bench

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// PodFootprint is drillbot's own footprint as a pod on the real node, from
// the kubelet's resource metrics (cAdvisor): per pod, the largest memory
// working set seen and the CPU used over the window.
type PodFootprint struct {
	Drills int           `json:"drills"`
	Window time.Duration `json:"window"`
	// WorkingSet and CPU per pod name.
	WorkingSet map[string]float64 `json:"workingSetBytes"`
	CPU        map[string]float64 `json:"cpuSeconds"`
}

// KubeletGet reads a path from the kubelet.
type KubeletGet func(ctx context.Context, path string) ([]byte, error)

// MeasurePodFootprint samples /metrics/resource every 5 s for window and
// keeps the containers named container in namespace ns.
func MeasurePodFootprint(ctx context.Context, get KubeletGet, ns, container string, window time.Duration) (*PodFootprint, error) {
	f := &PodFootprint{Window: window, WorkingSet: map[string]float64{}, CPU: map[string]float64{}}
	first := map[string]float64{}
	deadline := time.Now().Add(window)
	for {
		body, err := get(ctx, "/metrics/resource")
		if err != nil {
			return nil, err
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("kubelet resource metrics: %w", err)
		}
		for name, fam := range families {
			for _, m := range fam.GetMetric() {
				l := map[string]string{}
				for _, lp := range m.GetLabel() {
					l[lp.GetName()] = lp.GetValue()
				}
				if l["namespace"] != ns || l["container"] != container {
					continue
				}
				pod := l["pod"]
				switch name {
				case "container_memory_working_set_bytes":
					f.WorkingSet[pod] = max(f.WorkingSet[pod], m.GetGauge().GetValue())
				case "container_cpu_usage_seconds_total":
					v := m.GetCounter().GetValue()
					if _, ok := first[pod]; !ok {
						first[pod] = v
					}
					f.CPU[pod] = v - first[pod]
				}
			}
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(5 * time.Second):
		}
	}
	if len(f.WorkingSet) == 0 {
		return nil, fmt.Errorf("no %s container of namespace %s in the kubelet's resource metrics", container, ns)
	}
	return f, nil
}

// Rows are the figure's table rows: the largest pod's.
func (f *PodFootprint) Rows(limit float64) []Row {
	var ws, cpu float64
	for _, v := range f.WorkingSet {
		ws = max(ws, v)
	}
	for _, v := range f.CPU {
		cpu = max(cpu, v)
	}
	mib := ws / (1 << 20)
	return []Row{
		{Figure: fmt.Sprintf("drillbot pod on the real node, %d drills: memory working set (kubelet, max of %d pods)", f.Drills, len(f.WorkingSet)),
			Drillbot: fmt.Sprintf("%.1f MiB", mib), Target: fmt.Sprintf("< %.0f MiB", limit/(1<<20)), Met: Met(ws < limit), Value: mib, Unit: "MiB"},
		{Figure: fmt.Sprintf("drillbot pod on the real node: CPU over %s (kubelet)", f.Window),
			Drillbot: fmt.Sprintf("%.3fs (%.2f%% of a core)", cpu, 100*cpu/f.Window.Seconds()), Value: cpu, Unit: "s"},
	}
}
