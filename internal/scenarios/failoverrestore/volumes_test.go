package failoverrestore

import (
	"context"
	"strings"
	"testing"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/engine"
)

// The copy's volume data is never read: a claim of the backup the drill
// does not name as unchecked makes the run INCONCLUSIVE (a restore drill
// is not PASS until its data is verified); named, the PASS is on the
// objects and a finding says so.
func TestVolumeDataIsNotAPassUnlessNamed(t *testing.T) {
	list := map[string][]string{
		"v1/PersistentVolumeClaim": {"shop/data", "shop/cache", "other/data"},
		"apps/v1/StatefulSet":      {"shop/db"},
	}
	cases := []struct {
		name         string
		list         map[string][]string
		unchecked    []string
		before       string
		inconclusive string
		finding      string
	}{
		{name: "no claims", list: map[string][]string{"apps/v1/Deployment": {"shop/web"}}},
		{name: "claims not named", list: list, inconclusive: "the restored data of 2 PVCs was not read (cache, data)", finding: "has 2 PVCs (cache, data)"},
		{name: "one named", list: list, unchecked: []string{"cache"}, inconclusive: "the restored data of 1 PVCs was not read (data)"},
		{name: "all named", list: list, unchecked: []string{"data", "cache"}, finding: "the verdict is on the objects"},
		{name: "an earlier reason is kept", list: list, before: "nothing compared", inconclusive: "nothing compared; the restored data of 2 PVCs"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &scenario{params: Params{SourceNamespace: "shop", UncheckedVolumes: tc.unchecked}, list: tc.list,
				backup: &velerov1.Backup{ObjectMeta: metav1.ObjectMeta{Name: "shop-daily-1"}}}
			s.deps.Kube = fake.NewClientset()
			v := engine.Verification{Inconclusive: tc.before}
			if err := s.volumeData(context.Background(), &v); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(v.Inconclusive, tc.inconclusive) || (tc.inconclusive == "" && v.Inconclusive != "") {
				t.Errorf("inconclusive %q, want %q", v.Inconclusive, tc.inconclusive)
			}
			if f := strings.Join(v.Findings, "\n"); !strings.Contains(f, tc.finding) || (tc.list["v1/PersistentVolumeClaim"] == nil && f != "") {
				t.Errorf("findings %q, want %q", f, tc.finding)
			}
		})
	}
}

func TestValidateUncheckedVolumes(t *testing.T) {
	spec := v1alpha1.DrillSpec{Scenario: Name, Target: v1alpha1.Target{Namespace: "copy"}, Objectives: v1alpha1.Objectives{RTO: "30m", RPO: "24h"},
		Params: []byte(`{"sourceNamespace":"shop","storageLocation":"dr","uncheckedVolumes":["data","data","Not_A_Name"]}`)}
	errs := Kind{}.ValidateParams(spec, field.NewPath("spec", "params"))
	got := errs.ToAggregate().Error()
	for _, want := range []string{"spec.params.uncheckedVolumes[1]: Duplicate", "spec.params.uncheckedVolumes[2]: Invalid"} {
		if !strings.Contains(got, want) {
			t.Errorf("errors %q, want %q", got, want)
		}
	}
}
