package helm_test

// Installs the chart into the real local cluster, whose node is real:
// drillbot's own image (hack/image) runs as two pods under Pod Security
// restricted. Checks with SubjectAccessReviews what its service account may
// and may not do, runs drillbot as separate processes with that service
// account's token, then watches the in-cluster daemon (realnode_test.go).

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/test/localcluster"
	"github.com/drillbot-io/drillbot/test/testharness"
)

var cluster *localcluster.Cluster

func TestMain(m *testing.M) { os.Exit(localcluster.RunRealNodeTests(m, &cluster)) }

const (
	release   = "dr"
	releaseNS = "drillbot-system"
	sa        = "dr-drillbot"
)

func TestInstallIntoCluster(t *testing.T) {
	localcluster.Require(t, cluster)
	ctx := context.Background()
	// The catalog's admission drills target drill-demo: opted in, and
	// enforcing Pod Security restricted, so the privileged pod is denied
	// by the API server's own admission.
	if _, err := cluster.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "drill-demo",
		Labels: map[string]string{v1alpha1.LabelAllowDisaster: "true", "pod-security.kubernetes.io/enforce": "restricted"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e2e := setUpInClusterDrills(ctx, t)
	kc := "--kubeconfig=" + cluster.Kubeconfig
	helm(t, "install", release, "drillbot", kc, "--namespace", releaseNS, "--wait", "--timeout", "3m",
		"--values", e2e.values, "--set", "drills.privileged-pod-restricted.enabled=true")
	t.Cleanup(func() {
		_, _ = helmErr("uninstall", release, kc, "--namespace", releaseNS, "--wait")
		e2e.checkNothingLeft(t)
	})

	t.Run("service account permissions", func(t *testing.T) {
		cases := []struct {
			verb, group, resource, ns, name string
			want                            bool
		}{
			{"create", "", "pods", "drill-demo", "", true},
			{"get", "", "namespaces", "", "drill-demo", true},
			{"create", "drillbot.io", "drillruns", releaseNS, "", true},
			{"get", "apiextensions.k8s.io", "customresourcedefinitions", "", "drillruns.drillbot.io", true},
			{"create", "", "pods", "kube-system", "", false},
			{"create", "", "pods", "default", "", false},
			{"delete", "", "namespaces", "", "kube-system", false},
			{"delete", "", "namespaces", "", "drill-demo", false}, // namespace-restore is not enabled
			{"get", "", "secrets", releaseNS, "", false},
			{"list", "", "secrets", "", "", false},
			{"delete", "", "pods", "drill-demo", "", false},
			{"create", "rbac.authorization.k8s.io", "clusterrolebindings", "", "", false},
			{"escalate", "rbac.authorization.k8s.io", "clusterroles", "", "", false},
			{"impersonate", "", "users", "", "", false},
			{"get", "apiextensions.k8s.io", "customresourcedefinitions", "", "other.example.com", false},
			{"update", "apiextensions.k8s.io", "customresourcedefinitions", "", "drillruns.drillbot.io", false},
		}
		for _, tc := range cases {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User:               "system:serviceaccount:" + releaseNS + ":" + sa,
				Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + releaseNS, "system:authenticated"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: tc.verb, Group: tc.group, Resource: tc.resource, Namespace: tc.ns, Name: tc.name},
			}}
			got, err := cluster.Kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got.Status.Allowed != tc.want {
				t.Errorf("%s %s.%s %s/%s: allowed=%v, want %v", tc.verb, tc.resource, tc.group, tc.ns, tc.name, got.Status.Allowed, tc.want)
			}
		}
	})

	t.Run("every rendered manifest passes the API server's strict validation", func(t *testing.T) {
		// All drills enabled, CRDs included; each object is applied with a
		// server-side dry run and strict field validation, so an unknown or
		// misplaced field fails. (ServiceMonitor and PrometheusRule need the
		// Prometheus operator's CRDs, which the local cluster does not have.)
		out := helm(t, append([]string{"template", "dr", "drillbot", "--namespace", releaseNS, "--include-crds"}, allDrills(t)...)...)
		if n := applyYAML(ctx, t, out, true); n < 20 {
			t.Errorf("only %d objects validated", n)
		}
	})

	saKubeconfig := serviceAccountKubeconfig(t)
	bin := testharness.Binary(t)

	t.Run("serve with the Deployment's arguments", func(t *testing.T) {
		dep, err := cluster.Kube.AppsV1().Deployments(releaseNS).Get(ctx, "dr-drillbot", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cm, err := cluster.Kube.CoreV1().ConfigMaps(releaseNS).Get(ctx, "dr-drillbot-drills", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		drills := t.TempDir()
		for k, v := range cm.Data {
			if err := os.WriteFile(filepath.Join(drills, k), []byte(v), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		addr := freeAddr(t)
		args := deploymentArgs(t, dep, map[string]string{"--drills": drills, "--listen": addr})
		cmd := exec.Command(bin, append(args, "--kubeconfig", saKubeconfig)...)
		logs := &strings.Builder{}
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := http.Get("http://" + addr + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("serve as the service account never got ready:\n%s", logs)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})

	t.Run("drillbot runs in the cluster", e2e.testPods)
	t.Run("the chart's NetworkPolicy is enforced", e2e.testNetworkPolicy)
	t.Run("the in-cluster daemon runs a scheduled pod-kill on real containers", e2e.testScheduledPodKill)
	t.Run("metrics through the Service", e2e.testMetricsService)
	t.Run("leader pod killed mid-fault", e2e.testLeaderKilledMidFault)

	t.Run("a drill as the service account", func(t *testing.T) {
		out, err := exec.Command(bin, "run", "-f", "../../drills/privileged-pod-restricted.yaml", "--kubeconfig", saKubeconfig,
			"--namespace", releaseNS, "--output", "json").Output()
		var run v1alpha1.DrillRun
		if jerr := json.Unmarshal(out, &run); jerr != nil {
			t.Fatalf("run: %v %v\n%s", err, jerr, out)
		}
		if run.Status.Verdict != v1alpha1.VerdictPass {
			t.Errorf("verdict %s %q, want PASS (exit %v)", run.Status.Verdict, run.Status.Reason, err)
		}
	})
}

// serviceAccountKubeconfig writes a kubeconfig holding a token for the
// chart's service account (TokenRequest).
func serviceAccountKubeconfig(t *testing.T) string {
	t.Helper()
	tr, err := cluster.Kube.CoreV1().ServiceAccounts(releaseNS).CreateToken(context.Background(), sa,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["local"] = &clientcmdapi.Cluster{Server: cluster.REST.Host, InsecureSkipTLSVerify: true}
	kc.AuthInfos["sa"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	kc.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "sa"}
	kc.CurrentContext = "local"
	path := filepath.Join(t.TempDir(), "sa.kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// deploymentArgs are the container's args with the flags in replace
// pointed elsewhere (paths and ports of the pod).
func deploymentArgs(t *testing.T, dep *appsv1.Deployment, replace map[string]string) []string {
	t.Helper()
	var out []string
	for _, a := range dep.Spec.Template.Spec.Containers[0].Args {
		flag, _, _ := strings.Cut(a, "=")
		if v, ok := replace[flag]; ok {
			a = flag + "=" + v
			delete(replace, flag)
		}
		out = append(out, a)
	}
	if len(replace) > 0 {
		t.Fatalf("the Deployment has no %v flags: %v", replace, out)
	}
	return out
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprintf("127.0.0.1:%d", l.Addr().(*net.TCPAddr).Port)
}
