package bench

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/drillbot-io/drillbot/internal/scenarios/failoverrestore"
	"github.com/drillbot-io/drillbot/internal/scenarios/namespacerestore"
)

// InventoryCost is what one inventory-and-compare cost.
type InventoryCost struct {
	Objects  int           `json:"objects"`
	Wall     time.Duration `json:"wall"`
	Requests int64         `json:"requests"`
	Bytes    int64         `json:"bytes"`
	// CPU is the measuring process's own CPU time (user and system) over
	// the measurement: drillbot's share of the wall time, the rest being
	// the API server's and etcd's (on the same machine here) and the wire.
	CPU time.Duration `json:"cpu"`
}

// InventoryScale is the scale-of-verification figure at each size, for
// drillbot (paginated, metadata-only) and the peer method (full objects,
// one unpaginated list per resource, as `kubectl get -o json` does).
type InventoryScale struct {
	Drillbot []InventoryCost `json:"drillbot"`
	Peer     []InventoryCost `json:"peer"`
	// Failover is failover-restore's comparison of the backup's resource
	// list with the copy, at the same sizes.
	Failover []InventoryCost `json:"failover,omitempty"`
}

// Fill creates n ConfigMaps in ns (about 1 KiB each), 16 at a time.
func Fill(ctx context.Context, c kubernetes.Interface, ns string, from, to int) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	data := strings.Repeat("x", 1024)
	for i := from; i < to; i++ {
		g.Go(func() error {
			_, err := c.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%05d", i), Labels: map[string]string{"app": "bench"}},
				Data:       map[string]string{"payload": data},
			}, metav1.CreateOptions{})
			return err
		})
	}
	return g.Wait()
}

// MeasureInventory takes the namespace-restore inventory of ns twice (before
// the disaster and after the restore) and compares them, the way the drill
// does, with a fresh, counted client.
func MeasureInventory(ctx context.Context, cfg *rest.Config, ns string, objects int) (InventoryCost, error) {
	return measureInventory(ctx, cfg, ns, objects, func(ctx context.Context, cfg *rest.Config) (namespacerestore.Inventory, error) {
		disc, err := discovery.NewDiscoveryClientForConfig(cfg)
		if err != nil {
			return nil, err
		}
		meta, err := metadata.NewForConfig(cfg)
		if err != nil {
			return nil, err
		}
		inv, _, err := namespacerestore.TakeInventory(ctx, disc, meta, ns)
		return inv, err
	})
}

// MeasurePeerInventory does the same with full objects and one unpaginated
// list per kind.
func MeasurePeerInventory(ctx context.Context, cfg *rest.Config, ns string, objects int) (InventoryCost, error) {
	return measureInventory(ctx, cfg, ns, objects, func(ctx context.Context, cfg *rest.Config) (namespacerestore.Inventory, error) {
		disc, err := discovery.NewDiscoveryClientForConfig(cfg)
		if err != nil {
			return nil, err
		}
		dyn, err := dynamic.NewForConfig(cfg)
		if err != nil {
			return nil, err
		}
		lists, err := disc.ServerPreferredNamespacedResources()
		if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
			return nil, err
		}
		inv := namespacerestore.Inventory{}
		for _, l := range lists {
			gv, _ := schema.ParseGroupVersion(l.GroupVersion)
			for _, r := range l.APIResources {
				if strings.Contains(r.Name, "/") || !slices.Contains(r.Verbs, "list") {
					continue
				}
				items, err := dyn.Resource(gv.WithResource(r.Name)).Namespace(ns).List(ctx, metav1.ListOptions{})
				if err != nil {
					continue
				}
				for _, it := range items.Items {
					inv[r.Name+"/"+it.GetName()] = namespacerestore.Item{}
				}
			}
		}
		return inv, nil
	})
}

// measureInventory times take twice and the comparison, counting requests
// and bytes through a fresh client.
func measureInventory(ctx context.Context, cfg *rest.Config, ns string, objects int,
	take func(context.Context, *rest.Config) (namespacerestore.Inventory, error)) (InventoryCost, error) {
	var cnt Counter
	ccfg := cnt.Config(cfg)
	start, cpu0 := time.Now(), selfCPU()
	before, err := take(ctx, ccfg)
	if err != nil {
		return InventoryCost{}, err
	}
	after, err := take(ctx, ccfg)
	if err != nil {
		return InventoryCost{}, err
	}
	if missing := before.Missing(after); len(missing) > 0 {
		return InventoryCost{}, fmt.Errorf("inventory of %s changed: %d missing", ns, len(missing))
	}
	if len(before) < objects {
		return InventoryCost{}, fmt.Errorf("inventory of %s has %d objects, want at least %d", ns, len(before), objects)
	}
	return InventoryCost{Objects: objects, Wall: time.Since(start), Requests: cnt.Requests(), Bytes: cnt.Bytes(), CPU: selfCPU() - cpu0}, nil
}

// selfCPU is this process's CPU time so far (user and system).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Rows: the largest size against its target, and the growth from the
// middle size to the largest (linear is 1.0 per object).
func (s *InventoryScale) Rows(target time.Duration) []Row {
	if len(s.Drillbot) == 0 {
		return nil
	}
	last, peer := s.Drillbot[len(s.Drillbot)-1], s.Peer[len(s.Peer)-1]
	rows := []Row{{
		Figure:   fmt.Sprintf("inventory+compare, %d objects: wall time (drillbot's own CPU)", last.Objects),
		Drillbot: fmt.Sprintf("%s (%s)", last.Wall.Round(time.Millisecond), last.CPU.Round(time.Millisecond)), PeerMethod: "full objects, unpaginated",
		Peer: peer.Wall.Round(time.Millisecond).String(), Ratio: Ratio(float64(peer.Wall), float64(last.Wall)),
		Target: "< " + target.String(), Met: Met(last.Wall < target),
		Value: float64(last.Wall) / float64(time.Millisecond), Unit: "ms",
	}, {
		Figure:   fmt.Sprintf("inventory+compare, %d objects: bytes read (requests)", last.Objects),
		Drillbot: fmt.Sprintf("%.2f MiB (%d)", float64(last.Bytes)/(1<<20), last.Requests), PeerMethod: "full objects, unpaginated",
		Peer:  fmt.Sprintf("%.2f MiB (%d)", float64(peer.Bytes)/(1<<20), peer.Requests),
		Ratio: Ratio(float64(peer.Bytes), float64(last.Bytes)), Value: float64(last.Bytes), Unit: "bytes",
	}}
	rows = append(rows, growthRows("inventory", s.Drillbot)...)
	if n := len(s.Failover); n > 0 {
		f := s.Failover[n-1]
		rows = append(rows, Row{
			Figure:   fmt.Sprintf("failover-restore comparison with the backup's resource list, %d objects: wall time (drillbot's own CPU; requests, bytes)", f.Objects),
			Drillbot: fmt.Sprintf("%s (%s; %d, %.2f MiB)", f.Wall.Round(time.Millisecond), f.CPU.Round(time.Millisecond), f.Requests, float64(f.Bytes)/(1<<20)),
			Target:   "< " + target.String(), Met: Met(f.Wall < target), Value: float64(f.Wall) / float64(time.Millisecond), Unit: "ms",
		})
		rows = append(rows, growthRows("failover comparison", s.Failover)...)
	}
	return rows
}

// growthRows: linearity from what is deterministic, the marginal bytes
// read per object between the two largest sizes over that between the two
// smallest (about 1 when the cost grows linearly). Wall time is fitted as
// fixed cost (discovery) plus a cost per object.
func growthRows(what string, cs []InventoryCost) []Row {
	if len(cs) < 3 {
		return nil
	}
	a, b, c := cs[len(cs)-3], cs[len(cs)-2], cs[len(cs)-1]
	slope := func(x, y InventoryCost) float64 { return float64(y.Bytes-x.Bytes) / float64(y.Objects-x.Objects) }
	growth := Ratio(slope(b, c), slope(a, b))
	fixed, perObject := fit(cs)
	return []Row{{
		Figure: fmt.Sprintf("%s growth: marginal bytes per object %d->%d vs %d->%d", what, b.Objects, c.Objects, a.Objects, b.Objects),
		Drillbot: fmt.Sprintf("%.2f (%.0f B/object; time: %s fixed + %.1f us/object)", growth, slope(b, c),
			fixed.Round(time.Millisecond), perObject/1e3),
		Target: "<= 1.5 (linear)", Met: Met(growth <= 1.5), Value: growth, Unit: "ratio",
	}}
}

// fit is the least-squares line wall = fixed + perObject*objects (perObject
// in nanoseconds).
func fit(cs []InventoryCost) (fixed time.Duration, perObject float64) {
	var n, sx, sy, sxx, sxy float64
	for _, c := range cs {
		x, y := float64(c.Objects), float64(c.Wall)
		n, sx, sy, sxx, sxy = n+1, sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0, 0
	}
	perObject = (n*sxy - sx*sy) / d
	return time.Duration((sy - perObject*sx) / n), perObject
}

// Median runs measure three times and keeps the run with the median wall
// time.
func Median(measure func() (InventoryCost, error)) (InventoryCost, error) {
	return MedianOf(3, measure, func(c InventoryCost) time.Duration { return c.Wall })
}

// MedianOf measures n times and returns the run of median wall time.
func MedianOf[T any](n int, measure func() (T, error), wall func(T) time.Duration) (T, error) {
	var runs []T
	for range n {
		c, err := measure()
		if err != nil {
			var zero T
			return zero, err
		}
		runs = append(runs, c)
	}
	slices.SortFunc(runs, func(x, y T) int { return cmp.Compare(wall(x), wall(y)) })
	return runs[len(runs)/2], nil
}

// MeasureFailoverCompare is failover-restore's comparison of a backup's
// resource list with the copy, over the objects of ns: the list names
// every ConfigMap Fill made (and the namespace's own), the copy is ns
// itself, with a fresh, counted client. The namespace's kube-root-ca.crt
// is published by a controller some time after the namespace is created;
// a backup lists it only once it exists, so the figure waits for it (on an
// uncounted client) before the clock starts.
func MeasureFailoverCompare(ctx context.Context, cfg *rest.Config, ns string, objects int) (InventoryCost, error) {
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return InventoryCost{}, err
	}
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := kube.CoreV1().ConfigMaps(ns).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	}); err != nil {
		return InventoryCost{}, fmt.Errorf("waiting for %s/kube-root-ca.crt: %w", ns, err)
	}
	list := map[string][]string{"v1/ConfigMap": {ns + "/kube-root-ca.crt"}, "v1/Namespace": {ns}}
	for i := range objects {
		list["v1/ConfigMap"] = append(list["v1/ConfigMap"], fmt.Sprintf("%s/cm-%05d", ns, i))
	}
	var cnt Counter
	ccfg := cnt.Config(cfg)
	start, cpu0 := time.Now(), selfCPU()
	disc, err := discovery.NewDiscoveryClientForConfig(ccfg)
	if err != nil {
		return InventoryCost{}, err
	}
	md, err := metadata.NewForConfig(ccfg)
	if err != nil {
		return InventoryCost{}, err
	}
	checked, missing, err := failoverrestore.CompareCopy(ctx, disc, md, list, ns, ns, "bench")
	if err != nil {
		return InventoryCost{}, err
	}
	if len(missing) > 0 || checked < objects {
		return InventoryCost{}, fmt.Errorf("comparison of %s: %d checked, %d missing, want %d checked", ns, checked, len(missing), objects)
	}
	return InventoryCost{Objects: objects, Wall: time.Since(start), Requests: cnt.Requests(), Bytes: cnt.Bytes(), CPU: selfCPU() - cpu0}, nil
}
