package evidence

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
)

// Annotate adds an annotation to a finding of a run: a record of its own,
// appended to the run's drill chain and signed by whoever annotates (the
// chain's Signer); the run's record is never changed. The run is found by
// its ID or name among the chain's records that verify against trusted.
func Annotate(ctx context.Context, c *Chain, trusted *Keyring, cluster, drill, run string, a Annotation) (Appended, error) {
	v, err := Verify(ctx, c.Store, c.Layout, trusted, VerifyOptions{Chain: cluster + "/" + drill})
	if err != nil {
		return Appended{}, err
	}
	var target *Record
	for _, ch := range v.Chains {
		if ch.Cluster != cluster || ch.Drill != drill {
			continue
		}
		for i := range ch.Verified {
			r := &ch.Verified[i]
			if r.Kind == KindRun && r.Run != nil && (r.Run.ID == run || r.Run.Name == run) {
				target = r
			}
		}
	}
	if target == nil {
		return Appended{}, fmt.Errorf("no verified record of run %q in %s/%s", run, cluster, drill)
	}
	if a.Finding < 0 || a.Finding >= len(target.Run.Findings) {
		return Appended{}, fmt.Errorf("run %s has %d findings: no finding %d", target.Run.Name, len(target.Run.Findings), a.Finding)
	}
	if a.Owner == "" {
		return Appended{}, fmt.Errorf("an annotation needs an owner")
	}
	raw, err := c.Store.Get(ctx, c.Layout.Key(cluster, drill, target.Seq))
	if err != nil {
		return Appended{}, err
	}
	a.Run, a.RunRecord, a.FindingText = target.Run.ID, Digest(raw), target.Run.Findings[a.Finding]
	rec := Record{APIVersion: v1alpha1.APIVersion, Kind: KindAnnotation, Cluster: target.Cluster, Drill: drill, Annotation: &a}
	return c.Append(ctx, rec, nil)
}

const remediationPrefix = "remediation of finding "

// Runs are the verified run records' DrillRuns (as archived), oldest
// first, each with its annotations added to its findings as remediation
// lines and its cluster's name as label v1alpha1.LabelCluster (the report
// keeps the clusters of an archive apart by it), for the reports.
func (v Verified) Runs() []v1alpha1.DrillRun {
	var out []v1alpha1.DrillRun
	for _, ch := range v.Chains {
		byID := map[string]int{}
		start := len(out)
		for _, r := range ch.Verified {
			switch {
			case r.Kind == KindRun && r.Run != nil:
				d := r.Run.DrillRun // a shallow copy: what is changed below is copied first
				d.Labels = maps.Clone(d.Labels)
				if d.Labels == nil {
					d.Labels = map[string]string{}
				}
				d.Labels[v1alpha1.LabelCluster] = r.Cluster.Name
				d.Status.Findings = slices.Clip(d.Status.Findings)
				// As archived: the record's place and digest, whatever the
				// run said of its earlier attempts.
				at := metav1.NewMicroTime(r.ArchivedAt)
				d.Status.Archive = &v1alpha1.ArchiveStatus{Seq: r.Seq, Digest: r.digest, ArchivedAt: &at, Phase: d.Status.Phase}
				if i, ok := byID[r.Run.ID]; ok {
					// A later record of the run (archived again once a
					// failed revert succeeded) is the run; its remediation
					// lines stay.
					for _, f := range out[i].Status.Findings {
						if strings.HasPrefix(f, remediationPrefix) {
							d.Status.Findings = append(d.Status.Findings, f)
						}
					}
					out[i] = d
					continue
				}
				byID[r.Run.ID] = len(out)
				out = append(out, d)
			case r.Kind == KindAnnotation && r.Annotation != nil:
				a := r.Annotation
				if i, ok := byID[a.Run]; ok {
					line := fmt.Sprintf(remediationPrefix+"%d: owner %s", a.Finding+1, a.Owner)
					if a.Due != "" {
						line += ", due " + a.Due
					}
					if a.Note != "" {
						line += ": " + a.Note
					}
					if a.By != "" {
						line += " (annotated by " + a.By + ")"
					}
					out[i].Status.Findings = append(out[i].Status.Findings, line)
				}
			}
		}
		sort.SliceStable(out[start:], func(i, j int) bool {
			return finished(out[start+i]).Before(finished(out[start+j]))
		})
	}
	return out
}
