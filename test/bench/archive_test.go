package bench

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/drillbot-io/drillbot/test/localcluster"
)

// TestMeasureArchive runs the archive figures small (5 writes, a report
// from 50 records) on a real versitygw: they must run, count what they
// claim and leave nothing behind (the figures themselves are `make
// bench`'s).
func TestMeasureArchive(t *testing.T) {
	bin := os.Getenv("DRILLBOT_VERSITYGW")
	if bin == "" {
		if os.Getenv(localcluster.RequireEnv) != "" {
			t.Fatal("DRILLBOT_VERSITYGW unset")
		}
		t.Skip("DRILLBOT_VERSITYGW unset (make cluster-bins builds versitygw)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	before := benchStores(t)
	c, err := MeasureArchive(ctx, ArchiveConfig{VersityGW: bin, Writes: 5, Records: 50, Drills: 2, Repeat: 1})
	if err != nil {
		t.Fatal(err)
	}
	if c.Write.N != 5 || c.Write.Min <= 0 || c.WriteNoPage.N != 5 || c.WriteNoPage.Min <= 0 {
		t.Errorf("writes: %+v, without the page %+v", c.Write, c.WriteNoPage)
	}
	// The envelope holds the record base64-encoded: more than the page
	// it carries, and a record without the page is still a DrillRun.
	if c.PageBytes < 1000 || c.RecordBytes <= c.PageBytes || c.RecordBytesNoPage < 1000 || c.RecordBytesNoPage >= c.RecordBytes {
		t.Errorf("bytes: record %d (page %d), without the page %d", c.RecordBytes, c.PageBytes, c.RecordBytesNoPage)
	}
	if !strings.Contains(c.Store, "Object Lock COMPLIANCE") {
		t.Errorf("store %q: the writes were not retained", c.Store)
	}
	a := c.Archive
	if a.Records != 50 || a.RunsRead != 50 || a.Drills != 2 || a.Append.N != 2 || a.ReadsParallelN < 50 || a.ReadsParallel <= 0 || a.Wall <= 0 || a.Verify <= 0 || a.Verify > a.Wall || a.Reads <= 0 || a.Reads > a.Verify {
		t.Errorf("archive report: %+v", a)
	}
	// One list, then each chain's newest index (the chains hold 30 and
	// 20 records, each indexed to its end), which lists every run: more
	// than a record without its page per run; the records are stored whole.
	if a.Requests != 3 || a.Bytes < int64(50*500) || a.StoredBytes < int64(50*c.RecordBytesNoPage) || a.ReportBytes == 0 || a.HeapInuse == 0 {
		t.Errorf("archive report counted %d requests, %d bytes read of %d stored, report %d bytes, heap %d", a.Requests, a.Bytes, a.StoredBytes, a.ReportBytes, a.HeapInuse)
	}
	rows := c.Rows()
	for _, r := range rows {
		t.Logf("%s: %s", r.Figure, r.Drillbot)
	}
	if len(rows) != 6 || rows[0].Met == nil || rows[2].Met == nil || !*rows[2].Met || rows[4].Met == nil {
		t.Errorf("rows %+v", rows)
	}
	if after := benchStores(t); after != before {
		t.Errorf("%d store folders left behind", after-before)
	}
}

// benchStores counts the store folders StartS3 made that are still there.
func benchStores(t *testing.T) int {
	t.Helper()
	m, err := os.ReadDir(os.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range m {
		if strings.HasPrefix(e.Name(), "drillbot-bench-s3-") {
			n++
		}
	}
	return n
}

func TestArchiveRows(t *testing.T) {
	ms := time.Millisecond
	c := &ArchiveCost{
		Write:       Summary{N: 100, Median: 20 * ms, P95: 1200 * ms},
		WriteNoPage: Summary{N: 100, Median: 10 * ms, P95: 15 * ms},
		RecordBytes: 60 << 10, RecordBytesNoPage: 8 << 10, PageBytes: 30 << 10, MaxRecordBytes: maxRecordBytes,
		Archive: ArchiveRead{Records: 10000, Drills: 20, RunsRead: 10000, Append: Summary{N: 20, P95: 40 * ms},
			Wall: 1500 * ms, Verify: 1400 * ms, Requests: 10001, Bytes: 600 << 20},
	}
	rows := c.Rows()
	if len(rows) != 6 {
		t.Fatalf("%d rows", len(rows))
	}
	if *rows[0].Met || rows[0].Value != 1200 {
		t.Errorf("a p95 of 1.2s met the 1s target: %+v", rows[0])
	}
	if !*rows[1].Met || !*rows[2].Met || !*rows[4].Met || rows[4].Value != 1.5 {
		t.Errorf("rows %+v", rows)
	}
	// A report that read fewer runs than the archive holds is no figure.
	c.Archive.RunsRead = 9999
	if *c.Rows()[4].Met {
		t.Error("a report missing runs met its target")
	}
	c.RecordBytes = 0
	if *c.Rows()[2].Met {
		t.Error("zero bytes per record met the target")
	}
}
