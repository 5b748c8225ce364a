package helm_test

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	psaapi "k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"
)

// archiveValues enable the evidence archive with every required value.
var archiveValues = []string{
	"--set", "archive.enabled=true",
	"--set-string", "archive.url=s3://dr-evidence/prod?endpoint=http://minio.minio:9000&region=eu-west-1",
	"--set", "archive.clusterName=prod-eu",
	"--set", "archive.credentialsSecret=drillbot-archive-s3",
	"--set", "archive.keySecret=drillbot-evidence-key",
}

// drillbotPod renders the chart and returns its pod template and
// drillbot's container.
func drillbotPod(t *testing.T, args ...string) (corev1.PodTemplateSpec, corev1.Container) {
	t.Helper()
	docs := render(t, args...)
	if len(docs["Deployment"]) != 1 {
		t.Fatalf("%d Deployments", len(docs["Deployment"]))
	}
	dep := decode[appsv1.Deployment](t, docs["Deployment"][0])
	return dep.Spec.Template, dep.Spec.Template.Spec.Containers[0]
}

func envNamed(c corev1.Container, name string) *corev1.EnvVar {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}
	return nil
}

// TestChartArchive: the archive's serve flags, its credentials (from the
// Secret, by key) and its signing key (a read-only file) are rendered only
// when it is enabled.
func TestChartArchive(t *testing.T) {
	tool(t, "DRILLBOT_HELM", "helm")
	t.Run("disabled renders no archive flag", func(t *testing.T) {
		pod, c := drillbotPod(t)
		for _, a := range c.Args {
			if strings.HasPrefix(a, "--archive") || strings.HasPrefix(a, "--cluster-name") {
				t.Errorf("archive flag without the archive: %s", a)
			}
		}
		for _, e := range c.Env {
			if strings.HasPrefix(e.Name, "AWS_") || strings.HasPrefix(e.Name, "DRILLBOT_ARCHIVE") {
				t.Errorf("archive env without the archive: %s", e.Name)
			}
		}
		for _, v := range pod.Spec.Volumes {
			if v.Name == "archive-key" {
				t.Error("archive key volume without the archive")
			}
		}
	})

	t.Run("enabled renders the flags, the credentials and the key", func(t *testing.T) {
		pod, c := drillbotPod(t, append(slices.Clone(archiveValues), "--set", "slack.existingSecret=drillbot-slack")...)
		for _, want := range []string{
			"--archive=s3://dr-evidence/prod?endpoint=http://minio.minio:9000&region=eu-west-1",
			"--archive-key=/etc/drillbot/archive/key",
			"--cluster-name=prod-eu",
			"--archive-retention=9600h", // 400 days
			"--archive-interval=30s",
		} {
			if !slices.Contains(c.Args, want) {
				t.Errorf("args lack %s: %v", want, c.Args)
			}
		}
		for name, optional := range map[string]bool{"AWS_ACCESS_KEY_ID": false, "AWS_SECRET_ACCESS_KEY": false, "AWS_SESSION_TOKEN": true} {
			e := envNamed(c, name)
			if e == nil || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
				t.Errorf("env %s not from a Secret: %+v", name, e)
				continue
			}
			ref := e.ValueFrom.SecretKeyRef
			if ref.Name != "drillbot-archive-s3" || ref.Key != name || (ref.Optional != nil && *ref.Optional) != optional {
				t.Errorf("env %s from %s/%s optional %v", name, ref.Name, ref.Key, ref.Optional)
			}
		}
		if envNamed(c, "DRILLBOT_SLACK_WEBHOOK_URL") == nil {
			t.Error("Slack's env lost beside the archive's")
		}
		if envNamed(c, "DRILLBOT_ARCHIVE_KEY_PASSWORD") != nil {
			t.Error("a key password without archive.keyPasswordKey")
		}
		var vol *corev1.Volume
		for i := range pod.Spec.Volumes {
			if pod.Spec.Volumes[i].Name == "archive-key" {
				vol = &pod.Spec.Volumes[i]
			}
		}
		if vol == nil || vol.Secret == nil || vol.Secret.SecretName != "drillbot-evidence-key" {
			t.Fatalf("no archive-key volume from Secret drillbot-evidence-key: %+v", vol)
		}
		if len(vol.Secret.Items) != 1 || vol.Secret.Items[0].Key != "key" || vol.Secret.Items[0].Path != "key" {
			t.Errorf("key volume items %+v: want the Secret's key \"key\" as file key", vol.Secret.Items)
		}
		var mount *corev1.VolumeMount
		for i := range c.VolumeMounts {
			if c.VolumeMounts[i].Name == "archive-key" {
				mount = &c.VolumeMounts[i]
			}
		}
		if mount == nil || !mount.ReadOnly || mount.MountPath+"/"+vol.Secret.Items[0].Path != "/etc/drillbot/archive/key" {
			t.Errorf("key mount %+v: want read-only, the file --archive-key names", mount)
		}
		eval, err := psapolicy.NewEvaluator(psapolicy.DefaultChecks())
		if err != nil {
			t.Fatal(err)
		}
		if agg := psapolicy.AggregateCheckResults(eval.EvaluatePod(psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}, &pod.ObjectMeta, &pod.Spec)); !agg.Allowed {
			t.Errorf("pod with the archive violates restricted: %s", agg.ForbiddenDetail())
		}
	})

	t.Run("values other than the defaults", func(t *testing.T) {
		pod, c := drillbotPod(t, append(slices.Clone(archiveValues), "--set", "archive.retention=26280h", "--set", "archive.interval=1m",
			"--set", "archive.keySecretKey=drillbot-evidence.key", "--set", "archive.keyPasswordKey=password")...)
		for _, want := range []string{"--archive-retention=26280h", "--archive-interval=1m"} {
			if !slices.Contains(c.Args, want) {
				t.Errorf("args lack %s: %v", want, c.Args)
			}
		}
		if e := envNamed(c, "DRILLBOT_ARCHIVE_KEY_PASSWORD"); e == nil || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil ||
			e.ValueFrom.SecretKeyRef.Name != "drillbot-evidence-key" || e.ValueFrom.SecretKeyRef.Key != "password" {
			t.Errorf("key password env %+v", e)
		}
		for _, v := range pod.Spec.Volumes {
			if v.Name == "archive-key" && (len(v.Secret.Items) != 1 || v.Secret.Items[0].Key != "drillbot-evidence.key" || v.Secret.Items[0].Path != "key") {
				t.Errorf("key volume items %+v", v.Secret.Items)
			}
		}
	})

	t.Run("enabled without a required value fails naming it", func(t *testing.T) {
		for _, missing := range []string{"url", "clusterName", "credentialsSecret", "keySecret"} {
			args := []string{"template", "dr", "drillbot"}
			for i := 0; i < len(archiveValues); i += 2 {
				if !strings.HasPrefix(archiveValues[i+1], "archive."+missing+"=") {
					args = append(args, archiveValues[i], archiveValues[i+1])
				}
			}
			out, err := helmErr(args...)
			if err == nil || !strings.Contains(out, "archive.enabled needs archive."+missing+" (") {
				t.Errorf("archive without %s: want it named, got %v: %s", missing, err, out)
			}
		}
		out, err := helmErr("template", "dr", "drillbot", "--set", "archive.enabled=true")
		if err == nil || !strings.Contains(out, "archive.enabled needs archive.url (") || !strings.Contains(out, "archive.keySecret (") {
			t.Errorf("archive with nothing: want every missing value named, got %v: %s", err, out)
		}
	})

	t.Run("the schema refuses what the archive cannot use", func(t *testing.T) {
		// --set-string: helm applies it after --set, as archiveValues' url.
		for _, bad := range []string{"archive.clusterName=prod/eu", "archive.retention=400d", "archive.url=https://bucket.example"} {
			if out, err := helmErr(append([]string{"template", "dr", "drillbot"}, append(slices.Clone(archiveValues), "--set-string", bad)...)...); err == nil {
				t.Errorf("%s accepted:\n%.300s", bad, out)
			}
		}
	})
}

// TestChartArchiveRBAC: with the archive, the service account may read
// namespace kube-system (its UID names the cluster in the records), by
// name and nothing more.
func TestChartArchiveRBAC(t *testing.T) {
	var found bool
	for _, m := range render(t, archiveValues...)["ClusterRole"] {
		for _, r := range decode[rbacv1.ClusterRole](t, m).Rules {
			if !slices.Contains(r.Resources, "namespaces") || !slices.Contains(r.ResourceNames, "kube-system") {
				continue
			}
			if slices.Contains(r.Verbs, "get") {
				found = true
			}
			if v := slices.DeleteFunc(slices.Clone(r.Verbs), func(v string) bool { return v == "get" }); len(v) > 0 {
				t.Errorf("namespace kube-system: %v beyond get", v)
			}
		}
	}
	if !found {
		t.Error("with the archive, namespace kube-system is not readable: drillbot serve cannot name the cluster and does not start")
	}
}
