package main

// Integration tests of the evidence archive on the local cluster's real
// S3 store (versitygw, with versions, so Object Lock works): runs archived
// by the daemon, an overwrite refused, a locked record's deletion refused,
// a changed record, a deleted newest record and a missed slot found by
// evidence verify, a hand-started run naming the user of its credentials,
// the report built from the archive after the cluster's runs are gone, and
// an unreachable store made visible and retried.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/drillbot-io/drillbot/internal/api/v1alpha1"
	"github.com/drillbot-io/drillbot/internal/engine"
	"github.com/drillbot-io/drillbot/internal/evidence"
	"github.com/drillbot-io/drillbot/test/localcluster"
	"github.com/drillbot-io/drillbot/test/testharness"
)

// archiveBucket makes a bucket with Object Lock on the cluster's store and
// sets the AWS_* credentials the daemon and the CLI read.
func archiveBucket(t *testing.T) (*s3.Client, string) {
	t.Helper()
	access, secret := cluster.S3Credentials()
	t.Setenv("AWS_ACCESS_KEY_ID", access)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	c := s3.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(access, secret, "")}, func(o *s3.Options) {
		o.BaseEndpoint, o.UsePathStyle = aws.String(cluster.S3URL), true
	})
	bucket := "evidence-" + localcluster.RandomSuffix()
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket), ObjectLockEnabledForBucket: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	return c, bucket
}

// installCRD installs the DrillRun CRD, which the tests list before the
// daemon would.
func installCRD(t *testing.T, bin string) {
	t.Helper()
	if out, code := runBin(t, bin, "install-crds", "--kubeconfig", cluster.Kubeconfig); code != 0 {
		t.Fatalf("install-crds: %d\n%s", code, out)
	}
}

// keyPair makes drillbot's signing key with its own command.
func keyPair(t *testing.T, bin string) (priv, pub string) {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command(bin, "evidence", "keygen", "--out", dir).CombinedOutput(); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	return filepath.Join(dir, "drillbot-evidence.key"), filepath.Join(dir, "drillbot-evidence.pub")
}

func optedIn(t *testing.T, ns string) {
	t.Helper()
	if _, err := cluster.Kube.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
		Labels: map[string]string{v1alpha1.LabelAllowDisaster: "true"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func probeDrill(name, ns, schedule string) string {
	doc := fmt.Sprintf("apiVersion: drillbot.io/v1alpha1\nkind: Drill\nmetadata: {name: %s}\nspec:\n  scenario: admission-probe\n", name)
	if schedule != "" {
		doc += fmt.Sprintf("  schedule: %q\n  minInterval: 1s\n", schedule)
	}
	return doc + fmt.Sprintf("  objectives: {rto: 1m}\n  target: {namespace: %s}\n  params: {attempt: {image: registry.example/x:1}}\n", ns)
}

// runBin runs the drillbot binary and returns its output and exit code.
func runBin(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &exit):
		return string(out), exit.ExitCode()
	default:
		t.Fatalf("%v: %v", args, err)
		return "", -1
	}
}

func archivedRuns(t *testing.T, drillName string) []v1alpha1.DrillRun {
	var out []v1alpha1.DrillRun
	for _, r := range listRuns(t, drillName) {
		if r.Status.Archived() {
			out = append(out, r)
		}
	}
	return out
}

func TestArchiveEndToEnd(t *testing.T) {
	localcluster.Require(t, cluster)
	ctx := context.Background()
	bin := testharness.Binary(t)
	installCRD(t, bin)
	s3c, bucket := archiveBucket(t)
	priv, pub := keyPair(t, bin)
	sfx := localcluster.RandomSuffix()
	ns, manualNS := "archived-"+sfx, "archived-manual-"+sfx
	optedIn(t, ns)
	optedIn(t, manualNS)
	drillName := "archived-probe-" + sfx
	url := fmt.Sprintf("s3://%s/prod?endpoint=%s", bucket, cluster.S3URL)
	d := startDaemon(t, bin, drillDir(t, probeDrill(drillName, ns, "@every 2s")), "--leader-election-lease", "drillbot-archive",
		"--archive", url, "--archive-key", priv, "--cluster-name", "prod-eu", "--archive-interval", "1s")
	eventually(t, "five runs archived", 90*time.Second, func() bool { return len(archivedRuns(t, drillName)) >= 5 })

	// A run started by hand names the user of its credentials, as the API
	// server does; the daemon archives it too.
	manualFile := filepath.Join(t.TempDir(), "manual.yaml")
	if err := writeFile(manualFile, probeDrill("archived-manual-"+sfx, manualNS, "")); err != nil {
		t.Fatal(err)
	}
	if out, code := runBin(t, bin, "run", "-f", manualFile, "--kubeconfig", cluster.Kubeconfig, "-n", "drillbot-system"); code == exitError {
		t.Fatalf("drillbot run: exit %d\n%s", code, out)
	}
	me, err := cluster.Kube.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var manual v1alpha1.DrillRun
	eventually(t, "the hand-started run archived", 60*time.Second, func() bool {
		runs := archivedRuns(t, "archived-manual-"+sfx)
		if len(runs) == 1 {
			manual = runs[0]
		}
		return len(runs) == 1
	})
	if b := manual.Spec.StartedBy; b == nil || b.Kind != v1alpha1.InitiatorUser || b.User != me.Status.UserInfo.Username || b.User == "" {
		t.Errorf("hand-started run's startedBy %+v, want user %q", b, me.Status.UserInfo.Username)
	}
	if err := d.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = d.cmd.Wait()

	// Everything verifies, and the record holds what an auditor asks for.
	verify := []string{"evidence", "verify", "--archive", url, "--public-key", pub, "--kubeconfig", cluster.Kubeconfig, "-n", "drillbot-system"}
	if out, code := runBin(t, bin, verify...); code != 0 || !strings.Contains(out, "every record verified") {
		t.Fatalf("verify: exit %d\n%s\ndaemon:\n%s", code, out, d)
	}
	store, err := evidence.OpenS3(ctx, url, evidence.S3Options{AccessKey: os.Getenv("AWS_ACCESS_KEY_ID"), SecretKey: os.Getenv("AWS_SECRET_ACCESS_KEY")})
	if err != nil {
		t.Fatal(err)
	}
	if mode, err := store.ObjectLock(ctx); err != nil || mode != "COMPLIANCE" {
		t.Fatalf("the bucket's Object Lock: %q, %v", mode, err)
	}
	layout := evidence.Layout{}
	first := layout.Key("prod-eu", drillName, 1)
	raw, err := store.Get(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := evidence.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if r := rec.Run; r == nil || r.StartedBy.Kind != v1alpha1.InitiatorSchedule || r.DefinitionDigest == "" || r.TestType != engine.TestPostureCheck ||
		r.Result.Verdict == "" || len(r.Steps) == 0 || r.NextScheduledRun == nil || !strings.Contains(r.Page, "<html") || rec.Cluster.UID == "" {
		t.Errorf("record 1: %+v", rec.Run)
	}

	// Records are never overwritten; the retained version is never deleted.
	if err := store.Create(ctx, first, []byte("forged"), time.Time{}); !errors.Is(err, evidence.ErrExists) {
		t.Errorf("re-create of %s: %v, want ErrExists", first, err)
	}
	versions, err := s3c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String("prod/" + first)})
	if err != nil || len(versions.Versions) != 1 {
		t.Fatalf("versions of %s: %v, %v", first, versions, err)
	}
	if _, err := s3c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("prod/" + first), VersionId: versions.Versions[0].VersionId}); err == nil {
		t.Error("the store deleted a record under Object Lock retention")
	} else {
		t.Logf("deleting the retained record: %v", err)
	}

	// Through the store: a record overwritten, another deleted. Object
	// Lock keeps their first versions, which verify reads, naming each
	// attempt. Behind the store's back (its disk): one record changed, the
	// newest deleted. verify names both, and the slots missed since the
	// daemon stopped: pending, seconds after them, since a run of the
	// drill may still finish and be archived within its timeouts (gaps
	// are judged in the unit tests).
	heads, err := store.List(ctx, layout.ChainPrefix("prod-eu", drillName))
	if err != nil {
		t.Fatal(err)
	}
	newest := heads[len(heads)-1]
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("prod/" + first), Body: strings.NewReader("{}")}); err != nil {
		t.Fatalf("plain overwrite: %v", err)
	}
	if _, err := s3c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("prod/" + layout.Key("prod-eu", drillName, 3))}); err != nil {
		t.Fatalf("plain delete: %v", err)
	}
	onDisk := func(key string) string { return filepath.Join(cluster.S3Dir(), bucket, "prod", key) }
	data, err := os.ReadFile(onDisk(layout.Key("prod-eu", drillName, 2)))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(onDisk(layout.Key("prod-eu", drillName, 2)), []byte(strings.Replace(string(data), `"payload":"`, `"payload":"e`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(onDisk(newest)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second) // slots pass with no daemon
	out, code := runBin(t, bin, append(verify, "--days", "1")...)
	for _, want := range []string{"place 1 (", "overwritten later", "place 3 (", "deleted later", "place 2 (", "says it wrote one there (deleted from the archive)", "PENDING prod-eu/" + drillName} {
		if !strings.Contains(out, want) {
			t.Errorf("verify output lacks %q", want)
		}
	}
	// The changed record fails its signature, or, first, the checksum the
	// store keeps of it (the S3 client checks it on read).
	if !strings.Contains(out, "not verified") && !strings.Contains(out, "cannot be read") {
		t.Errorf("verify does not say the changed record fails")
	}
	if code != exitFail {
		t.Errorf("verify exit %d, want %d", code, exitFail)
	}
	t.Logf("verify after tampering:\n%s", out)

	// The cluster's runs gone, the report comes from the archive.
	for _, r := range listRuns(t, drillName) {
		if err := cluster.Dynamic.Resource(v1alpha1.DrillRunResource).Namespace("drillbot-system").Delete(ctx, r.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	out, code = runBin(t, bin, "report", "--archive", url, "--public-key", pub, "-o", "markdown")
	if code != exitFail || !strings.Contains(out, drillName) || !strings.Contains(out, "not in the report") {
		t.Errorf("report from the archive: exit %d\n%s", code, out)
	}
}

// TestArchiveUnreachableIsVisibleAndRetried: a store that refuses
// connections leaves the run unarchived and says so (status, Event,
// metric); once it answers, the retry archives it.
func TestArchiveUnreachableIsVisibleAndRetried(t *testing.T) {
	localcluster.Require(t, cluster)
	ctx := context.Background()
	bin := testharness.Binary(t)
	installCRD(t, bin)
	_, bucket := archiveBucket(t)
	priv, _ := keyPair(t, bin)
	// A proxy to the store that drops every connection until opened.
	var open atomic.Bool
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	target := strings.TrimPrefix(cluster.S3URL, "http://")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !open.Load() {
				c.Close()
				continue
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { _, _ = io.Copy(up, c) }()
				_, _ = io.Copy(c, up)
			}()
		}
	}()
	sfx := localcluster.RandomSuffix()
	ns, drillName := "unarchived-"+sfx, "unarchived-probe-"+sfx
	optedIn(t, ns)
	url := fmt.Sprintf("s3://%s/prod?endpoint=http://%s", bucket, ln.Addr())
	d := startDaemon(t, bin, drillDir(t, probeDrill(drillName, ns, "@every 2s")), "--leader-election-lease", "drillbot-unarchived",
		"--archive", url, "--archive-key", priv, "--cluster-name", "prod-eu", "--archive-interval", "1s")
	var failed v1alpha1.DrillRun
	eventually(t, "a failed archive write on a run", 60*time.Second, func() bool {
		for _, r := range listRuns(t, drillName) {
			if a := r.Status.Archive; a != nil && a.Attempts >= 1 && a.LastError != "" && !r.Status.Archived() {
				failed = r
				return true
			}
		}
		return false
	})
	eventually(t, "the metric counts the failure", 30*time.Second, func() bool {
		resp, err := http.Get("http://" + d.addr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(body), `drillbot_archive_writes_total{result="error"}`) &&
			!strings.Contains(string(body), `drillbot_archive_writes_total{result="error"} 0`)
	})
	eventually(t, "an ArchiveFailed Event on the run", 30*time.Second, func() bool {
		evs, err := cluster.Kube.CoreV1().Events("drillbot-system").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + failed.Name})
		if err != nil {
			return false
		}
		for _, e := range evs.Items {
			if e.Reason == "ArchiveFailed" {
				return true
			}
		}
		return false
	})
	open.Store(true)
	eventually(t, "the run archived on a retry", 60*time.Second, func() bool {
		for _, r := range listRuns(t, failed.Spec.Drill) {
			if r.Name == failed.Name && r.Status.Archived() {
				return r.Status.Archive.Attempts >= 2
			}
		}
		return false
	})
}
