package namespacerestore

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/dynamic"

	"github.com/drillbot-io/drillbot/internal/kube"
)

// DownloadRequestsGVR is Velero's DownloadRequest resource.
var DownloadRequestsGVR = velerov1.SchemeGroupVersion.WithResource("downloadrequests")

// ErrNotStored is returned when the backup's storage location has no such
// file for it (older Velero, or its upload failed).
var ErrNotStored = errors.New("not in the backup's storage location")

// VeleroDownloads reads a backup's files the way `velero backup describe
// --details` does: a DownloadRequest, then a GET of the signed URL Velero's
// server puts in its status. Velero's own helper (pkg/cmd/util/downloadrequest)
// is not used: it needs a controller-runtime client and brings eleven more
// modules (cockroachdb/errors, the CSI snapshotter's client, ...) into the
// binary, and polls the request every 25 ms; this watches it.
type VeleroDownloads struct {
	Dynamic dynamic.Interface
	// HTTP fetches the signed URL (default: http.DefaultClient).
	HTTP *http.Client
	// Timeout bounds one read (default 1m).
	Timeout time.Duration
}

// Decode downloads one gzipped JSON file of the backup (kind, e.g.
// BackupResourceList, BackupVolumeInfos) into out; what names the file in
// errors ("resource list").
func (v VeleroDownloads) Decode(ctx context.Context, vns, backup string, kind velerov1.DownloadTargetKind, what string, out any) error {
	timeout := v.Timeout
	if timeout == 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req := &velerov1.DownloadRequest{
		TypeMeta:   metav1.TypeMeta{APIVersion: velerov1.SchemeGroupVersion.String(), Kind: "DownloadRequest"},
		ObjectMeta: metav1.ObjectMeta{Name: backup + "-" + rand.String(8), Namespace: vns, Labels: map[string]string{"app.kubernetes.io/managed-by": "drillbot"}},
		Spec:       velerov1.DownloadRequestSpec{Target: velerov1.DownloadTarget{Kind: kind, Name: backup}},
	}
	obj, err := ToUnstructured(req)
	if err != nil {
		return err
	}
	created, err := v.Dynamic.Resource(DownloadRequestsGVR).Namespace(vns).Create(ctx, obj, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create Velero DownloadRequest for backup %s's %s: %w", backup, what, err)
	}
	var url string
	_, err = kube.WaitObject(ctx, v.Dynamic, DownloadRequestsGVR, vns, created.GetName(), func(u *unstructured.Unstructured) (bool, error) {
		if u == nil {
			return false, nil
		}
		url, _, _ = unstructured.NestedString(u.Object, "status", "downloadURL")
		return url != "", nil
	})
	if err != nil {
		return fmt.Errorf("velero gave no download URL for backup %s's %s (is its storage location Available?): %w", backup, what, err)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	hc := v.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(hreq)
	if err != nil {
		return fmt.Errorf("download backup %s's %s: %w", backup, what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return fmt.Errorf("backup %s's %s: %w", backup, what, ErrNotStored)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("download backup %s's %s: %s", backup, what, resp.Status)
	}
	gz, err := gzip.NewReader(resp.Body)
	if err != nil {
		return fmt.Errorf("backup %s's %s: %w", backup, what, err)
	}
	if err := json.NewDecoder(gz).Decode(out); err != nil {
		return fmt.Errorf("decode backup %s's %s: %w", backup, what, err)
	}
	return nil
}
