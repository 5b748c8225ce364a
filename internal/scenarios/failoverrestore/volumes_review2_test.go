package failoverrestore

// Second adversarial review of failover-restore's volume data rule (commit
// 1efbdd4: volumeData also counts the copy's own claims). Every
// TestReview2* below fails on the change as reviewed.

import (
	"context"
	"strings"
	"testing"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/drillbot-io/drillbot/internal/engine"
)

// TestReview2FailoverEphemeralClaimOfTheCopyCannotBeNamed: volumeData now
// counts every PVC in the copy. A Deployment whose pod has a generic
// ephemeral volume (spec.volumes[].ephemeral: scratch space, made by the
// ephemeral-volume controller when the pod starts, owned by the pod and
// deleted with it) gets, in the copy, a claim named <pod>-<volume>, with
// the pod's random name: web-6d4cf56db6-x7k2p-scratch this run, another
// next run. Its data is nothing any backup holds or any restore brings
// back, yet the run is INCONCLUSIVE "restored data ... was not read", and
// params.uncheckedVolumes cannot name it (the name changes every run):
// the drill can never PASS for a copy whose every object came back.
// A verdict worse than the truth, for good (EVIDENCE rule 8), on a claim
// the restore did not make (rule 3: what happened: the pod's controller
// made it, empty by design).
func TestReview2FailoverEphemeralClaimOfTheCopyCannotBeNamed(t *testing.T) {
	pod := "web-6d4cf56db6-x7k2p"
	scratch := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: pod + "-scratch", Namespace: "shop-copy",
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: pod, UID: "pod-uid",
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}},
		Spec:   corev1.PersistentVolumeClaimSpec{VolumeName: "pvc-1c2d"},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound}}
	s := &scenario{params: Params{SourceNamespace: "shop"}, copy: "shop-copy",
		list:   map[string][]string{"v1/Namespace": {"shop"}, "apps/v1/Deployment": {"shop/web"}, "v1/ConfigMap": {"shop/prices"}},
		backup: &velerov1.Backup{ObjectMeta: metav1.ObjectMeta{Name: "shop-daily-1"}}}
	s.deps.Kube = fake.NewClientset(scratch)
	var v engine.Verification
	if err := s.volumeData(context.Background(), &v); err != nil {
		t.Fatal(err)
	}
	if v.Inconclusive != "" {
		t.Fatalf("INCONCLUSIVE on a pod's generic ephemeral claim, which no backup holds and no uncheckedVolumes entry can name (its name is the pod's, new each run): %s", v.Inconclusive)
	}
	if f := strings.Join(v.Findings, "\n"); strings.Contains(f, "was not read") {
		t.Errorf("findings %q", f)
	}
}
