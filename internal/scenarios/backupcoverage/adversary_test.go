package backupcoverage

// Written as the adversary would.

import (
	"strings"
	"testing"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
)

// TestExcludingWhatVeleroNeverRestoresIsNoGap: a backup that excludes
// only what Velero never restores (nodes, its own backups and restores,
// events) holds everything of the namespace a restore can bring back: the
// namespace is covered (EVIDENCE rule 8), not FAIL.
func TestExcludingWhatVeleroNeverRestoresIsNoGap(t *testing.T) {
	rw := location("default", true, velerov1.BackupStorageLocationPhaseAvailable)
	spec := velerov1.BackupSpec{IncludedNamespaces: []string{"*"}, ExcludedResources: []string{"nodes", "events", "events.events.k8s.io",
		"backups.velero.io", "restores.velero.io", "resticrepositories.velero.io", "csinodes.storage.k8s.io", "volumeattachments.storage.k8s.io",
		"backuprepositories.velero.io"}}
	v := runCheck(t, production, world{kube: []runtime.Object{shop()}, velero: []any{&rw, ptr.To(schedule("hourly", false, spec)),
		ptr.To(held("hourly-1", "hourly", "default", 10*time.Minute, spec))}})
	if len(v.Failures) > 0 || v.Posture == nil || v.Posture.Compliant != 1 {
		t.Fatalf("failures %q, posture %+v: want shop compliant", v.Failures, v.Posture)
	}
}

// TestScheduleThatFailedValidationBacksNothingUp: a Schedule Velero found
// invalid (phase FailedValidation) never makes a backup; a fresh backup
// from before it broke is no evidence the namespace goes on being backed
// up. It is not the namespace's schedule.
func TestScheduleThatFailedValidationBacksNothingUp(t *testing.T) {
	rw := location("default", true, velerov1.BackupStorageLocationPhaseAvailable)
	all := velerov1.BackupSpec{IncludedNamespaces: []string{"*"}}
	broken := schedule("hourly", false, all)
	broken.Status.Phase = velerov1.SchedulePhaseFailedValidation
	broken.Status.ValidationErrors = []string{"invalid schedule: expected exactly 5 fields"}
	v := runCheck(t, production, world{kube: []runtime.Object{shop()}, velero: []any{&rw, &broken,
		ptr.To(held("hourly-1", "hourly", "default", 10*time.Minute, all))}})
	want := "namespace shop: no unpaused Velero Schedule includes it; failed Velero's validation, so make no backup: schedule hourly (invalid schedule: expected exactly 5 fields)"
	if !strings.Contains(strings.Join(v.Failures, "\n"), want) {
		t.Fatalf("failures %q, want %q; findings %q", v.Failures, want, v.Findings)
	}
	// Beside a valid schedule it is only named.
	v = runCheck(t, production, world{kube: []runtime.Object{shop()}, velero: []any{&rw, &broken, ptr.To(schedule("daily", false, all)),
		ptr.To(held("hourly-1", "hourly", "default", 10*time.Minute, all))}})
	if len(v.Failures) > 0 || !strings.Contains(strings.Join(v.Findings, "\n"), "failed Velero's validation, so make no backup: schedule hourly") {
		t.Fatalf("beside a valid schedule: failures %q, findings %q", v.Failures, v.Findings)
	}
}
