package bench

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
)

// VolumeData is the volume-data figure: one volume of Size bytes backed up
// by Velero's node-agent (file-system backup, kopia) and restored by a
// namespace-restore drill on the real node, whose data check reads every
// restored byte; against a raw copy of the same bytes on the same disk,
// the physical limit.
type VolumeData struct {
	Size int64 `json:"size"`
	// RawCopy is copying the file to another file on the same disk and
	// syncing it (drillbot's clock).
	RawCopy time.Duration `json:"rawCopy"`
	// Backup and Restore are the PodVolumeBackup's and PodVolumeRestore's
	// own start to completion (Velero's clock, both ends).
	Backup  time.Duration `json:"backup"`
	Restore time.Duration `json:"restore"`
	// RTO and its shares are the drill's (drillbot's clock).
	RTO    time.Duration            `json:"rto"`
	Shares map[string]time.Duration `json:"shares"`
}

// WriteRandom writes size random bytes to path, synced, and returns their
// SHA-256.
func WriteRandom(path string, size int64) (string, error) {
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, size); err != nil {
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	if err := os.Chmod(path, 0o644); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// RawCopy copies src to a file beside dst's directory on the same disk,
// syncs it, removes it, and returns how long the copy and sync took.
func RawCopy(ctx context.Context, src, dstDir string) (time.Duration, error) {
	if err := os.MkdirAll(dstDir, 0o755); err != nil {
		return 0, err
	}
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	dst := filepath.Join(dstDir, filepath.Base(src)+".copy")
	defer os.Remove(dst)
	start := time.Now()
	out, err := os.Create(dst)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		return 0, err
	}
	if err := out.Sync(); err != nil {
		return 0, err
	}
	return time.Since(start), ctx.Err()
}

// Shares are a run's RTO shares by milestone, as the engine recorded them.
func Shares(run *v1alpha1.DrillRun) map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, p := range parts(run) {
		out[p.Name] = p.Duration
	}
	return out
}

func mibPerSecond(size int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(size) / (1 << 20) / d.Seconds()
}

// Rows are the figure's table rows.
func (v VolumeData) Rows() []Row {
	mib := v.Size >> 20
	raw := mibPerSecond(v.Size, v.RawCopy)
	restore, backup := mibPerSecond(v.Size, v.Restore), mibPerSecond(v.Size, v.Backup)
	check := v.Shares["data-verified"]
	return []Row{
		{Figure: fmt.Sprintf("volume data %d MiB: restore (Velero node-agent, kopia; PodVolumeRestore start -> completed)", mib),
			Drillbot:   fmt.Sprintf("%.1f MiB/s (%s), %.0f%% of the raw copy", restore, v.Restore.Round(time.Millisecond), 100*Ratio(restore, raw)),
			PeerMethod: "raw copy on the same disk (copy + fsync)", Peer: fmt.Sprintf("%.1f MiB/s (%s)", raw, v.RawCopy.Round(time.Millisecond)),
			Value: restore, Unit: "MiB/s"},
		{Figure: fmt.Sprintf("volume data %d MiB: backup (PodVolumeBackup start -> completed)", mib),
			Drillbot: fmt.Sprintf("%.1f MiB/s (%s), %.0f%% of the raw copy", backup, v.Backup.Round(time.Millisecond), 100*Ratio(backup, raw)),
			Value:    backup, Unit: "MiB/s"},
		{Figure: fmt.Sprintf("volume data %d MiB: drill RTO (namespace-terminated %s, restore-completed %s, workloads-ready %s, volumes-restored %s, data-verified %s)", mib,
			v.Shares["namespace-terminated"].Round(time.Millisecond), v.Shares["restore-completed"].Round(time.Millisecond), v.Shares["workloads-ready"].Round(time.Millisecond),
			v.Shares["volumes-restored"].Round(time.Millisecond), check.Round(time.Millisecond)),
			Drillbot: v.RTO.Round(time.Millisecond).String(), Value: v.RTO.Seconds(), Unit: "s"},
		{Figure: fmt.Sprintf("volume data %d MiB: the data check's share of the RTO (a Job reading every restored byte)", mib),
			Drillbot: fmt.Sprintf("%.1f%% (%s)", 100*Ratio(check.Seconds(), v.RTO.Seconds()), check.Round(time.Millisecond)),
			Value:    100 * Ratio(check.Seconds(), v.RTO.Seconds()), Unit: "%"},
	}
}
