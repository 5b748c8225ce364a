package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/evidence"
	"github.com/drillbot-io/drillbot/internal/report"
	"github.com/drillbot-io/drillbot/internal/scenarios"
)

// The archive figures' targets.
const (
	// ArchiveWriteTarget bounds the p95 of one run's archive write (the
	// record, its HTML page, the signature, the chain's head read and the
	// conditional create). The daemon archives right after each run
	// finishes and then every 30 s (--archive-interval), one run at a
	// time: a write well under a second keeps the archive within one pass
	// of the cluster even when several runs finish together, and a
	// loopback store under 1 s leaves room for the three round trips
	// (list, get, put) to a remote S3, tens of ms each.
	ArchiveWriteTarget = time.Second
	// ArchiveReportTarget bounds the report from an archive of 10,000
	// records (the target): verify every record, then build and
	// write the report.
	ArchiveReportTarget = 2 * time.Second
	// maxRecordBytes is the most evidence.S3Store.Get reads of one
	// record: a larger one could be written but never verified.
	maxRecordBytes = 16 << 20
	// parallelReaders is how many reads the parallel-read comparison
	// keeps in flight.
	parallelReaders = 16
)

// ArchiveCost is the evidence archive measured on a real S3 store.
type ArchiveCost struct {
	// Store is what the records went to (Object Lock mode included).
	Store string `json:"store"`
	// Write is one run's Archiver.Pass (record, page, signature, chain
	// head read, conditional create with retention), per run, as the
	// daemon archives them (a pass right after each run finishes);
	// WriteNoPage the same without the HTML page.
	Write       Summary `json:"write"`
	WriteNoPage Summary `json:"writeNoPage"`
	// RecordBytes and RecordBytesNoPage are the median stored envelope
	// sizes; PageBytes the median HTML page as rendered.
	RecordBytes       int `json:"recordBytes"`
	RecordBytesNoPage int `json:"recordBytesNoPage"`
	PageBytes         int `json:"pageBytes"`
	MaxRecordBytes    int `json:"maxRecordBytes"`
	// Archive is the large archive the report is built from.
	Archive ArchiveRead `json:"archive"`
}

// ArchiveRead is the report built from an archive of Records records
// (Drills chains): evidence.Verify, Verified.Runs, report.Build and
// report.Write (markdown), end to end, as `drillbot report --archive`.
type ArchiveRead struct {
	Records int `json:"records"`
	Drills  int `json:"drills"`
	// Fill is how long writing the archive took (Chain.Append, one
	// goroutine per drill). Append is, after the report, one more record
	// appended to each chain, one at a time as the daemon writes (the
	// chain's head read lists the whole chain).
	Fill   time.Duration `json:"fill"`
	Append Summary       `json:"appendAtChainEnd"`
	// StoredBytes is the archive's size (sum of the envelopes).
	StoredBytes int64 `json:"storedBytes"`
	// Wall is the report end to end; Verify the part reading and checking
	// the records.
	Wall   time.Duration `json:"wall"`
	Verify time.Duration `json:"verify"`
	// Reads is the part of Verify spent waiting for the store (its list
	// and its reads, one after the other).
	Reads time.Duration `json:"reads"`
	// ReadsParallel is the same list and reads (ReadsParallelN records)
	// with parallelReaders in flight: what reading concurrently would
	// take instead of Reads.
	ReadsParallel  time.Duration `json:"readsParallel"`
	ReadsParallelN int           `json:"readsParallelN"`
	// Requests and Bytes are the S3 requests and response bytes the
	// report made and read.
	Requests int64 `json:"requests"`
	Bytes    int64 `json:"bytes"`
	// ReportBytes is the markdown report's size; RunsRead the runs it was
	// built from.
	ReportBytes int `json:"reportBytes"`
	RunsRead    int `json:"runsRead"`
	// HeapInuse is the process's heap in use right after the report, the
	// verified records still held; Allocated what the report allocated.
	HeapInuse uint64 `json:"heapInuse"`
	Allocated uint64 `json:"allocated"`
}

// ArchiveConfig sizes the archive figures.
type ArchiveConfig struct {
	// VersityGW is the versitygw binary the store is served with.
	VersityGW string
	// Writes is how many runs the write latency is measured over.
	Writes int
	// Records and Drills are the large archive: Records records over
	// Drills chains.
	Records, Drills int
	// Repeat is how many times the report is built (the median is kept).
	Repeat int
}

// MeasureArchive starts versitygw (posix backend, versions so Object Lock
// works) on loopback in a temporary folder, makes a bucket with Object
// Lock, and measures the archive's writes and the report from it. The
// store is stopped and its folder removed before it returns, on error too.
func MeasureArchive(ctx context.Context, cfg ArchiveConfig) (c *ArchiveCost, err error) {
	if cfg.Drills < 1 || cfg.Records < cfg.Drills || cfg.Writes < 1 {
		return nil, fmt.Errorf("archive figure: %d writes, %d records over %d drills", cfg.Writes, cfg.Records, cfg.Drills)
	}
	srv, err := StartS3(ctx, cfg.VersityGW)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, srv.Stop()) }()
	const bucket = "evidence"
	if err := srv.CreateLockedBucket(ctx, bucket); err != nil {
		return nil, err
	}
	priv, pub, err := evidence.GenerateKey()
	if err != nil {
		return nil, err
	}
	keyDir := filepath.Join(srv.dir, "keys")
	if err := os.MkdirAll(keyDir, 0o700); err != nil {
		return nil, err
	}
	privPath, pubPath := filepath.Join(keyDir, "key.pem"), filepath.Join(keyDir, "key.pub")
	if err := os.WriteFile(privPath, priv, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(pubPath, pub, 0o600); err != nil {
		return nil, err
	}
	signer, err := evidence.LoadSigner(privPath, nil)
	if err != nil {
		return nil, err
	}
	keys, err := evidence.LoadKeyring(pubPath)
	if err != nil {
		return nil, err
	}
	c = &ArchiveCost{MaxRecordBytes: maxRecordBytes}

	// 1. Write latency and bytes per record, with and without the page,
	// in an archive of their own.
	for _, withPage := range []bool{true, false} {
		store, err := srv.Open(ctx, bucket, fmt.Sprintf("writes-page-%v", withPage), nil)
		if err != nil {
			return nil, err
		}
		lock, err := store.ObjectLock(ctx)
		if err != nil {
			return nil, err
		}
		if lock == "" {
			return nil, fmt.Errorf("archive figure: the bucket has no Object Lock: the writes would lack retention")
		}
		w, sizes, pages, err := measureWrites(ctx, store, signer, cfg.Writes, withPage)
		if err != nil {
			return nil, err
		}
		if withPage {
			c.Store, c.Write, c.RecordBytes, c.PageBytes = store.Describe(), w, medianInt(sizes), medianInt(pages)
		} else {
			c.WriteNoPage, c.RecordBytesNoPage = w, medianInt(sizes)
		}
	}

	// 2. The large archive, and the report from it.
	store, err := srv.Open(ctx, bucket, "archive", nil)
	if err != nil {
		return nil, err
	}
	perDrill := cfg.Records / cfg.Drills
	first := time.Now().Add(-time.Duration(perDrill) * 6 * time.Hour)
	a := ArchiveRead{Records: perDrill * cfg.Drills, Drills: cfg.Drills}
	if a.Fill, a.StoredBytes, err = fillArchive(ctx, store, signer, cfg.Drills, perDrill, first); err != nil {
		return nil, err
	}
	read, err := MedianOf(max(1, cfg.Repeat), func() (ArchiveRead, error) {
		return measureArchiveReport(ctx, srv, bucket, keys, a)
	}, func(r ArchiveRead) time.Duration { return r.Wall })
	if err != nil {
		return nil, err
	}
	// The same reads, 16 in flight (through the report's transport).
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 100
	ps, err := srv.Open(ctx, bucket, "archive", &http.Client{Transport: tr})
	if err != nil {
		return nil, err
	}
	if read.ReadsParallel, read.ReadsParallelN, err = parallelReads(ctx, ps, parallelReaders); err != nil {
		return nil, err
	}
	// Then, the report measured, one more record per chain.
	if read.Append, err = appendAtChainEnd(ctx, store, signer, cfg.Drills, perDrill, first); err != nil {
		return nil, err
	}
	c.Archive = read
	return c, nil
}

// measureWrites archives n runs of five drills, one Archiver.Pass per run
// as the daemon does right after each run finishes, and returns each
// pass's latency, each stored envelope's size and each page's size.
func measureWrites(ctx context.Context, store evidence.Store, signer *evidence.Signer, n int, withPage bool) (Summary, []int, []int, error) {
	sized := &sizingStore{Store: store}
	runs := &memRuns{}
	var pages []int
	a := &evidence.Archiver{
		Runs: runs, Cluster: evidence.Cluster{Name: "bench", UID: "kube-system-uid"},
		Chain:    &evidence.Chain{Store: sized, Signer: signer, Retention: 400 * 24 * time.Hour},
		Classify: scenarios.Registry(scenarios.Deps{}).Evidence,
	}
	if withPage {
		a.Page = func(r v1alpha1.DrillRun) ([]byte, error) {
			p, err := report.RunPage(r)
			pages = append(pages, len(p))
			return p, err
		}
	}
	var failed error
	a.Observe = func(_ *v1alpha1.DrillRun, err error) { failed = err }
	start := time.Now().Add(-time.Duration(n) * 6 * time.Hour)
	lat := make([]time.Duration, 0, n)
	for i := range n {
		d := fleetDrills[i%len(fleetDrills)]
		r := SampleRun(d, i, start.Add(time.Duration(i)*6*time.Hour))
		runs.add(r)
		t0 := time.Now()
		pending, err := a.Pass(ctx)
		lat = append(lat, time.Since(t0))
		if err == nil && (pending != 0 || failed != nil) {
			err = fmt.Errorf("run %s not archived: %v", r.Name, failed)
		}
		if err != nil {
			return Summary{}, nil, nil, fmt.Errorf("archive write %d: %w", i, err)
		}
	}
	if got := runs.archived(); got != n {
		return Summary{}, nil, nil, fmt.Errorf("%d of %d runs say they were archived", got, n)
	}
	return Summarize(lat), sized.sizes(), pages, nil
}

// archiveWriter is the daemon's archiver over store, for records only
// (its pages rendered as the daemon renders them).
func archiveWriter(store evidence.Store, signer *evidence.Signer) *evidence.Archiver {
	return &evidence.Archiver{Cluster: evidence.Cluster{Name: "bench", UID: "kube-system-uid"},
		Chain:    &evidence.Chain{Store: store, Signer: signer, Retention: 400 * 24 * time.Hour},
		Classify: scenarios.Registry(scenarios.Deps{}).Evidence, Page: report.RunPage}
}

// largeArchiveRun is the i-th run of the large archive's drill d.
func largeArchiveRun(d, i int, first time.Time) v1alpha1.DrillRun {
	name := fmt.Sprintf("%s-%02d", fleetDrills[d%len(fleetDrills)], d)
	return SampleRun(name, i, first.Add(time.Duration(i)*6*time.Hour+time.Duration(d)*time.Minute))
}

// chainLen is how many records chain d of the large archive holds:
// perDrill on average, half the chains 5 more and half 5 fewer, so that
// each chain ends 5 places after its newest index (evidence.IndexEvery
// is 10), the records the report reads one by one.
func chainLen(d, drills, perDrill int) int {
	switch {
	case drills%2 == 1 && d == drills-1:
		return perDrill
	case d%2 == 0:
		return perDrill + 5
	default:
		return perDrill - 5
	}
}

// fillArchive writes perDrill run records (with pages) into each of
// drills chains, one goroutine per drill, each chain appended in order as
// the daemon does. It returns how long that took and the bytes stored.
func fillArchive(ctx context.Context, store evidence.Store, signer *evidence.Signer, drills, perDrill int, first time.Time) (time.Duration, int64, error) {
	sized := &sizingStore{Store: store}
	a := archiveWriter(sized, signer)
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	for d := range drills {
		g.Go(func() error {
			for i := range chainLen(d, drills, perDrill) {
				run := largeArchiveRun(d, i, first)
				rec, err := a.Record(run)
				if err != nil {
					return err
				}
				app, err := a.Chain.Append(gctx, rec, nil)
				if err != nil {
					return fmt.Errorf("%s place %d: %w", run.Spec.Drill, i+1, err)
				}
				if app.Seq != int64(i+1) {
					return fmt.Errorf("%s: record %d took place %d", run.Spec.Drill, i+1, app.Seq)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, 0, fmt.Errorf("fill the archive: %w", err)
	}
	var total int64
	for _, s := range sized.sizes() {
		total += int64(s)
	}
	return time.Since(start), total, nil
}

// appendAtChainEnd appends one more run record to each of the large
// archive's chains, one at a time as the daemon does, and returns each
// append's latency (Record with its page, then Chain.Append: the chain's
// list, its head read, the create).
func appendAtChainEnd(ctx context.Context, store evidence.Store, signer *evidence.Signer, drills, perDrill int, first time.Time) (Summary, error) {
	a := archiveWriter(store, signer)
	var lat []time.Duration
	for d := range drills {
		n := chainLen(d, drills, perDrill)
		run := largeArchiveRun(d, n, first)
		t0 := time.Now()
		rec, err := a.Record(run)
		if err != nil {
			return Summary{}, err
		}
		app, err := a.Chain.Append(ctx, rec, nil)
		lat = append(lat, time.Since(t0))
		if err != nil {
			return Summary{}, err
		}
		if app.Seq != int64(n+1) {
			return Summary{}, fmt.Errorf("%s: appended at place %d, want %d", run.Spec.Drill, app.Seq, n+1)
		}
	}
	return Summarize(lat), nil
}

// parallelReads lists the archive and reads every record, n at a time:
// what the store allows a reader that does not wait for one read before
// the next.
func parallelReads(ctx context.Context, store evidence.Store, n int) (time.Duration, int, error) {
	start := time.Now()
	keys, err := store.List(ctx, "")
	if err != nil {
		return 0, 0, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(n)
	for _, k := range keys {
		g.Go(func() error {
			_, err := store.Get(gctx, k)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return 0, 0, err
	}
	return time.Since(start), len(keys), nil
}

// measureArchiveReport builds the report from the archive as `drillbot
// report --archive` does, with a store opened afresh whose requests are
// counted.
func measureArchiveReport(ctx context.Context, srv *S3Server, bucket string, keys *evidence.Keyring, a ArchiveRead) (ArchiveRead, error) {
	var cnt Counter
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 100
	store, err := srv.Open(ctx, bucket, "archive", &http.Client{Transport: &countingRT{rt: tr, c: &cnt}})
	if err != nil {
		return a, err
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	out, timed := &countingWriter{}, &timingStore{Store: store}
	start := time.Now()
	v, err := evidence.Verify(ctx, timed, evidence.Layout{}, keys, evidence.VerifyOptions{UseIndex: true})
	if err != nil {
		return a, err
	}
	a.Verify, a.Reads = time.Since(start), timed.spent
	runs := v.Runs()
	rep := report.Build(runs, report.Options{Now: time.Now(), WindowDays: 30, LastN: 5})
	if err := report.Write(out, rep, "markdown"); err != nil {
		return a, err
	}
	a.Wall = time.Since(start)
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(v)
	a.HeapInuse, a.Allocated = after.HeapInuse, after.TotalAlloc-before.TotalAlloc
	a.Requests, a.Bytes, a.ReportBytes, a.RunsRead = cnt.Requests(), cnt.Bytes(), out.n, len(runs)
	switch {
	case v.Problems != 0:
		return a, fmt.Errorf("the archive has %d problems: %+v", v.Problems, v.Chains[0].Problems)
	case len(runs) != a.Records || len(v.Chains) != a.Drills:
		return a, fmt.Errorf("verify read %d runs in %d chains, want %d in %d", len(runs), len(v.Chains), a.Records, a.Drills)
	case rep.TotalDrills != a.Drills || a.ReportBytes == 0:
		return a, fmt.Errorf("the report has %d drills (%d bytes), want %d", rep.TotalDrills, a.ReportBytes, a.Drills)
	}
	return a, nil
}

// Rows: the write latency against its target, the bytes per record with
// and without the page, and the report from the large archive against
// its target.
func (c *ArchiveCost) Rows() []Row {
	kib := func(n int) string { return fmt.Sprintf("%.1f KiB", float64(n)/1024) }
	a := c.Archive
	return []Row{
		{
			Figure:   fmt.Sprintf("archive write per run (record + HTML page, signed, chain head read, create with Object Lock; %d runs, S3 on loopback)", c.Write.N),
			Drillbot: fmt.Sprintf("p95 %s (median %s; without the page: p95 %s, median %s)", ms(c.Write.P95), ms(c.Write.Median), ms(c.WriteNoPage.P95), ms(c.WriteNoPage.Median)),
			Target:   "p95 < " + ArchiveWriteTarget.String(), Met: Met(c.Write.N > 0 && c.Write.P95 < ArchiveWriteTarget),
			Value: float64(c.Write.P95) / float64(time.Millisecond), Unit: "ms",
		},
		{
			Figure:   fmt.Sprintf("archive write per run at place %d of a chain (record + page, signed; the chain head read lists the whole chain; %d runs)", a.Records/max(1, a.Drills)+1, a.Append.N),
			Drillbot: fmt.Sprintf("p95 %s (median %s)", ms(a.Append.P95), ms(a.Append.Median)),
			Target:   "p95 < " + ArchiveWriteTarget.String(), Met: Met(a.Append.N > 0 && a.Append.P95 < ArchiveWriteTarget),
			Value: float64(a.Append.P95) / float64(time.Millisecond), Unit: "ms",
		},
		{
			Figure:   "bytes per archived record (stored DSSE envelope, with the run's HTML page)",
			Drillbot: fmt.Sprintf("%s (the page %s as rendered)", kib(c.RecordBytes), kib(c.PageBytes)),
			Target:   "< " + kib(c.MaxRecordBytes) + " (the most verify reads)", Met: Met(c.RecordBytes > 0 && c.RecordBytes < c.MaxRecordBytes),
			Value: float64(c.RecordBytes), Unit: "B",
		},
		{
			Figure:   "bytes per archived record without the page",
			Drillbot: kib(c.RecordBytesNoPage),
			Value:    float64(c.RecordBytesNoPage), Unit: "B",
		},
		{
			Figure: fmt.Sprintf("report from an archive of %d records (%d drills): verify each chain's newest index and the records after it, build, write markdown", a.Records, a.Drills),
			Drillbot: fmt.Sprintf("%s (verify %s, of which waiting for the store %s: %d requests, %.1f MiB read, summed over verify's readers; the same reads %d at a time, nothing else done: %s)",
				a.Wall.Round(time.Millisecond), a.Verify.Round(time.Millisecond), a.Reads.Round(time.Millisecond), a.Requests, float64(a.Bytes)/(1<<20),
				parallelReaders, a.ReadsParallel.Round(time.Millisecond)),
			Target: "< " + ArchiveReportTarget.String(), Met: Met(a.RunsRead == a.Records && a.Wall < ArchiveReportTarget),
			Value: a.Wall.Seconds(), Unit: "s",
		},
		{
			Figure:   fmt.Sprintf("report from an archive of %d records: heap in use after (records held)", a.Records),
			Drillbot: fmt.Sprintf("%.1f MiB (%.1f MiB allocated)", float64(a.HeapInuse)/(1<<20), float64(a.Allocated)/(1<<20)),
			Value:    float64(a.HeapInuse) / (1 << 20), Unit: "MiB",
		},
	}
}

// SampleRun is a finished namespace-restore run of drill, the i-th, that
// started at start, as the engine records one: its phases, milestones,
// the RTO's breakdown, findings, the journal of the namespace it deleted,
// and the definition it ran.
func SampleRun(drill string, i int, start time.Time) v1alpha1.DrillRun {
	at := func(d time.Duration) metav1.MicroTime { return metav1.NewMicroTime(start.Add(d)) }
	ptr := func(t metav1.MicroTime) *metav1.MicroTime { return &t }
	ns := "shop-" + drill
	name := fmt.Sprintf("%s-%s", drill, start.UTC().Format("20060102-150405"))
	backup, restore := fmt.Sprintf("%s-%d", ns, i), name
	spec := v1alpha1.DrillSpec{
		Scenario: "namespace-restore", Schedule: "CRON_TZ=UTC 0 */6 * * *",
		Objectives: v1alpha1.Objectives{RTO: "30m", RPO: "1h"},
		Timeouts:   v1alpha1.Timeouts{Preflight: "3m", Recover: "5m"},
		Target:     v1alpha1.Target{Namespace: ns},
		Params:     json.RawMessage(`{"backup":{"create":true}}`),
	}
	undo, _ := json.Marshal(map[string]string{"namespace": ns, "veleroNamespace": "velero", "backup": backup, "restore": restore, "uid": fmt.Sprintf("ns-uid-%d", i)})
	verdict, reason := v1alpha1.VerdictPass, "namespace restored within the RTO objective; 212 of 212 objects back"
	if i%7 == 6 {
		verdict, reason = v1alpha1.VerdictFail, "workloads not Ready within the recover timeout (5m)"
	}
	return v1alpha1.DrillRun{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "drillbot-system", UID: types.UID(fmt.Sprintf("uid-%s-%06d", drill, i)),
			CreationTimestamp: metav1.NewTime(start),
			Labels:            map[string]string{v1alpha1.LabelDrill: drill, v1alpha1.LabelScenario: "namespace-restore", v1alpha1.LabelTarget: ns},
		},
		Spec: v1alpha1.DrillRunSpec{
			Drill: drill, Scenario: "namespace-restore", Trigger: engine.TriggerSchedule, Source: "configmap drillbot-system/drillbot-drills",
			Snapshot: spec, DefinitionDigest: engine.DefinitionDigest(spec), StartedBy: &v1alpha1.Initiator{Kind: v1alpha1.InitiatorSchedule},
		},
		Status: v1alpha1.DrillRunStatus{
			Phase: v1alpha1.PhaseCompleted, Verdict: verdict, Reason: reason, Holder: "drillbot-5d9c7b8f4-x2x9q",
			StartedAt: ptr(at(0)), DisasterAt: ptr(at(31 * time.Second)), RecoveredAt: ptr(at(43 * time.Second)), FinishedAt: ptr(at(47 * time.Second)),
			RTO: "11.777s", RPO: "4m2s", RTOTarget: "30m", RPOTarget: "1h", RPOSource: "restored RPO marker",
			Steps: []v1alpha1.Step{
				{Phase: v1alpha1.PhasePreflight, StartedAt: at(0), FinishedAt: ptr(at(29 * time.Second))},
				{Phase: v1alpha1.PhaseInjecting, StartedAt: at(29 * time.Second), FinishedAt: ptr(at(31 * time.Second))},
				{Phase: v1alpha1.PhaseRecovering, StartedAt: at(31 * time.Second), FinishedAt: ptr(at(43 * time.Second))},
				{Phase: v1alpha1.PhaseVerifying, StartedAt: at(43 * time.Second), FinishedAt: ptr(at(45 * time.Second))},
				{Phase: v1alpha1.PhaseReverting, StartedAt: at(45 * time.Second), FinishedAt: ptr(at(47 * time.Second))},
			},
			Milestones: []v1alpha1.Milestone{
				{Name: "namespace-terminated", At: at(35 * time.Second)},
				{Name: "restore-completed", At: at(42 * time.Second)},
				{Name: "workloads-ready", At: at(42777 * time.Millisecond)},
			},
			Breakdown: []v1alpha1.Span{{Name: "namespace-terminated", Duration: "4s"}, {Name: "restore-completed", Duration: "7s"}, {Name: "workloads-ready", Duration: "777ms"}},
			Findings: []string{
				fmt.Sprintf("212 application objects compared with the inventory taken before the disaster: 212 back by Velero restore %s, 0 back made by something else", restore),
				fmt.Sprintf("velero restore %s finished with 2 warnings", restore),
				"inventory did not cover 2 kinds drillbot may not list (RBAC): secrets, serviceaccounts/token",
			},
			Journal: []v1alpha1.JournalEntry{{
				ID: name + "-1", Action: "delete-namespace", Undo: undo, State: v1alpha1.JournalReverted,
				Description: fmt.Sprintf("delete namespace %s; undo: Velero restore %s from backup %s", ns, restore, backup),
				RecordedAt:  at(30 * time.Second), ExpiresAt: ptr(at(2 * time.Hour)), RevertedAt: ptr(at(46 * time.Second)),
			}},
		},
	}
}

// memRuns is the cluster's DrillRuns for the archiver, in memory: the
// write figure is the archive's, not the API server's (the drill overhead
// figures measure that).
type memRuns struct {
	mu   sync.Mutex
	runs []v1alpha1.DrillRun
}

func (m *memRuns) add(r v1alpha1.DrillRun) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.runs = append(m.runs, r)
}

func (m *memRuns) archived() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for i := range m.runs {
		if m.runs[i].Status.Archived() {
			n++
		}
	}
	return n
}

func (m *memRuns) List(context.Context, string) ([]v1alpha1.DrillRun, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.runs), nil
}

func (m *memRuns) Get(_ context.Context, name string) (*v1alpha1.DrillRun, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.runs {
		if m.runs[i].Name == name {
			r := m.runs[i]
			return &r, nil
		}
	}
	return nil, fmt.Errorf("drillrun %s not found", name)
}

func (m *memRuns) UpdateStatus(_ context.Context, run *v1alpha1.DrillRun) (*v1alpha1.DrillRun, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.runs {
		if m.runs[i].Name == run.Name {
			m.runs[i].Status = run.Status
			r := m.runs[i]
			return &r, nil
		}
	}
	return nil, fmt.Errorf("drillrun %s not found", run.Name)
}

// timingStore adds up the time its reads and lists take (summed over
// Verify's concurrent readers).
type timingStore struct {
	evidence.Store
	mu    sync.Mutex
	spent time.Duration
}

func (s *timingStore) add(t0 time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.spent += time.Since(t0)
}

func (s *timingStore) Get(ctx context.Context, key string) ([]byte, error) {
	defer s.add(time.Now())
	return s.Store.Get(ctx, key)
}

func (s *timingStore) List(ctx context.Context, prefix string) ([]string, error) {
	defer s.add(time.Now())
	return s.Store.List(ctx, prefix)
}

// sizingStore records the size of every object it creates.
type sizingStore struct {
	evidence.Store
	mu      sync.Mutex
	created []int
}

func (s *sizingStore) Create(ctx context.Context, key string, body []byte, until time.Time) error {
	err := s.Store.Create(ctx, key, body, until)
	if err == nil {
		s.mu.Lock()
		s.created = append(s.created, len(body))
		s.mu.Unlock()
	}
	return err
}

func (s *sizingStore) sizes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.created)
}

func medianInt(v []int) int {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

type countingWriter struct{ n int }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	return len(p), nil
}

// S3Server is versitygw serving a temporary folder on loopback.
type S3Server struct {
	// URL is the endpoint; Access and Secret the credentials.
	URL, Access, Secret string
	dir                 string
	cmd                 *exec.Cmd
	done                chan struct{}
	waitErr             error
}

// StartS3 starts versitygw (posix backend, with a versions folder so a
// bucket can have Object Lock) on a free loopback port, its data in a new
// temporary folder, and waits until it answers. Stop ends it and removes
// the folder; it also dies with this process.
func StartS3(ctx context.Context, bin string) (*S3Server, error) {
	if bin == "" {
		return nil, errors.New("no versitygw binary (DRILLBOT_VERSITYGW; make cluster-bins builds it)")
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("versitygw: %w", err)
	}
	dir, err := os.MkdirTemp("", "drillbot-bench-s3-")
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a port found free may be taken before versitygw binds it
		s, err := startS3(ctx, bin, dir)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	_ = os.RemoveAll(dir)
	return nil, lastErr
}

func startS3(ctx context.Context, bin, dir string) (*S3Server, error) {
	root, versions := filepath.Join(dir, "s3"), filepath.Join(dir, "s3-versions")
	for _, d := range []string{root, versions} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	logf, err := os.OpenFile(filepath.Join(dir, "versitygw.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	s := &S3Server{URL: "http://" + addr, Access: "drillbot-bench", Secret: "drillbot-bench-secret", dir: dir, done: make(chan struct{})}
	s.cmd = exec.Command(bin, "--access", s.Access, "--secret", s.Secret, "--port", addr, "posix", "--versioning-dir", versions, root)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start versitygw: %w", err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		logf.Close()
		close(s.done)
	}()
	client := s.client(nil)
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-s.done:
			tail, _ := os.ReadFile(filepath.Join(dir, "versitygw.log"))
			return nil, fmt.Errorf("versitygw exited: %v: %s", s.waitErr, tail[max(0, len(tail)-2048):])
		default:
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := client.ListBuckets(cctx, &s3.ListBucketsInput{})
		cancel()
		if err == nil {
			return s, nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			s.kill()
			return nil, fmt.Errorf("versitygw on %s not answering: %w", addr, errors.Join(ctx.Err(), err))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *S3Server) client(hc *http.Client) *s3.Client {
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(s.Access, s.Secret, "")}
	if hc != nil {
		cfg.HTTPClient = hc
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) { o.BaseEndpoint, o.UsePathStyle = aws.String(s.URL), true })
}

// CreateLockedBucket makes a bucket with Object Lock enabled.
func (s *S3Server) CreateLockedBucket(ctx context.Context, bucket string) error {
	_, err := s.client(nil).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket), ObjectLockEnabledForBucket: aws.Bool(true)})
	if err != nil {
		return fmt.Errorf("create bucket %s with Object Lock: %w", bucket, err)
	}
	return nil
}

// Open opens the archive at prefix of bucket as drillbot does
// (evidence.OpenS3), through hc when it is not nil.
func (s *S3Server) Open(ctx context.Context, bucket, prefix string, hc *http.Client) (*evidence.S3Store, error) {
	return evidence.OpenS3(ctx, fmt.Sprintf("s3://%s/%s?endpoint=%s", bucket, prefix, s.URL),
		evidence.S3Options{AccessKey: s.Access, SecretKey: s.Secret, HTTPClient: hc})
}

// Dir is the store's folder (removed by Stop).
func (s *S3Server) Dir() string { return s.dir }

// Running says whether versitygw has not exited.
func (s *S3Server) Running() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

func (s *S3Server) kill() {
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
}

// Stop ends versitygw (SIGTERM, SIGKILL after 5 s) and removes its folder.
func (s *S3Server) Stop() error {
	if s.Running() {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			s.kill()
		}
	}
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("remove the store's folder: %w", err)
	}
	return nil
}
