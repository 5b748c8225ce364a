package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/fake"
)

func TestArchiveFlagsRefuseBeforeAnythingRuns(t *testing.T) {
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	if code := dispatch(context.Background(), "drillbot", []string{"evidence", "keygen", "--out", dir}, &out, &errOut); code != 0 {
		t.Fatalf("keygen: %d %s", code, errOut.String())
	}
	key := filepath.Join(dir, "drillbot-evidence.key")
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key %v %v", fi, err)
	}
	errOut.Reset()
	if code := dispatch(context.Background(), "drillbot", []string{"evidence", "keygen", "--out", dir}, &out, &errOut); code != exitError ||
		!strings.Contains(errOut.String(), "exists: not overwritten") {
		t.Errorf("keygen over an existing key: %d %s", code, errOut.String())
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "a")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s")
	for _, tt := range []struct {
		name string
		f    archiveFlags
		want string
	}{
		{"key without archive", archiveFlags{key: key}, "--archive-key without --archive"},
		{"no key", archiveFlags{url: "s3://b", cluster: "c"}, "needs --archive-key"},
		{"no cluster name", archiveFlags{url: "s3://b", key: key}, "needs --cluster-name"},
		{"not s3", archiveFlags{url: "gs://b", key: key, cluster: "c"}, "want s3://BUCKET"},
		{"unknown parameter", archiveFlags{url: "s3://b?endpont=http://x", key: key, cluster: "c"}, `unknown parameter "endpont"`},
		{"key unreadable", archiveFlags{url: "s3://b", key: filepath.Join(dir, "nope"), cluster: "c"}, "evidence key"},
		{"kube-system unreadable", archiveFlags{url: "s3://b", key: key, cluster: "c"}, "kube-system"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, err := tt.f.open(context.Background(), fake.NewClientset(), nil, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("open = %v, %v; want an error with %q", a, err, tt.want)
			}
		})
	}
	if a, err := (&archiveFlags{}).open(context.Background(), fake.NewClientset(), nil, nil); a != nil || err != nil {
		t.Errorf("no archive: %v, %v", a, err)
	}
}

func TestVerifyPeriod(t *testing.T) {
	now := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	o, err := period(30, "", "", now)
	if err != nil || !o.From.Equal(now.AddDate(0, 0, -30)) || !o.To.Equal(now) {
		t.Errorf("--days 30: %+v %v", o, err)
	}
	o, err = period(0, "2026-01-01", "2026-02-01T00:00:00Z", now)
	if err != nil || o.From.Format("2006-01-02") != "2026-01-01" || o.To.Format("2006-01-02") != "2026-02-01" {
		t.Errorf("--from/--to: %+v %v", o, err)
	}
	if _, err := period(3, "2026-01-01", "", now); err == nil {
		t.Error("--days with --from accepted")
	}
	if _, err := period(0, "yesterday", "", now); err == nil {
		t.Error("a bad --from accepted")
	}
	if o, _ := period(0, "", "", now); !o.From.IsZero() {
		t.Error("no period: slots checked anyway")
	}
}

func TestClusterNameIsAFolder(t *testing.T) {
	for name, ok := range map[string]bool{"prod-eu": true, "prod.eu_1": true, "prod/eu": false, "../x": false, "": false, "-x": false} {
		if clusterName.MatchString(name) != ok {
			t.Errorf("%q accepted = %v, want %v", name, !ok, ok)
		}
	}
}
