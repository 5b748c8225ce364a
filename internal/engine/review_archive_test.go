package engine_test

// Adversarial review of the archive's engine side. The test here FAILS on
// the code as written; see /work/shared/EVIDENCE.md for the rule.

import (
	"context"
	"testing"
	"time"

	testingclock "k8s.io/utils/clock/testing"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/engine"
)

// TestReviewOnDemandRunPrunesUnarchivedRuns: only `drillbot serve
// --archive` sets KeepUnarchived (serve.go: cf.keepUnarchived =
// o.archive.url != ""). `drillbot run` builds its engine without it, and
// prunes the drill's history when its run ends, in the same cluster whose
// daemon archives. A run whose archive writes have been failing (status.
// archive: 3 attempts, the error) is its only record, and the on-demand
// run deletes it: the daemon's archiver never gets it.
// Rule 7 (never destroy what cannot be brought back): the cluster itself
// says the run is not archived yet; the process's flag should not decide.
func TestReviewOnDemandRunPrunesUnarchivedRuns(t *testing.T) {
	ctx := context.Background()
	store := newStore()
	clk := testingclock.NewFakeClock(t0)
	def := definition(5*time.Minute, 0)
	def.History.Successful, def.History.Failed = 1, 1
	// The daemon's runs: the first archived, the second not (the store
	// was down; the archiver retries it).
	daemon := engine.New(engine.Config{Store: store, Kinds: engine.Registry{"scripted": kind{&script{clk: clk}}}, Clock: clk, Holder: "daemon", KeepUnarchived: true})
	var names []string
	for i := range 2 {
		r, err := daemon.Run(ctx, def, engine.TriggerSchedule)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, r.Name)
		cur, _ := store.Get(ctx, r.Name)
		if i == 0 {
			cur.Status.Archive = &v1alpha1.ArchiveStatus{Object: "prod-eu/test-drill/0000000001.json", Digest: "sha256:aa", Seq: 1}
		} else {
			cur.Status.Archive = &v1alpha1.ArchiveStatus{Attempts: 3, LastError: "put prod-eu/test-drill/0000000002.json: connection refused"}
		}
		if _, err := store.UpdateStatus(ctx, cur); err != nil {
			t.Fatal(err)
		}
		clk.Step(time.Minute)
	}
	// drillbot run, as cmd/drillbot/run.go builds its engine.
	cli := engine.New(engine.Config{Store: store, Kinds: engine.Registry{"scripted": kind{&script{clk: clk}}}, Clock: clk, Holder: "laptop/4242"})
	if _, err := cli.Run(ctx, def, "cli"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Get(ctx, names[1]); err != nil {
		t.Errorf("run %s, not archived yet (3 failed writes on its status), was pruned by an on-demand run: %v", names[1], err)
	}
}
