package evidence

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// S3Store is a Store in an S3-compatible bucket (AWS S3, MinIO,
// versitygw, Velero's own store). Objects are created with If-None-Match:
// * (the store refuses an overwrite), and with Object Lock retention when
// the bucket has Object Lock enabled.
type S3Store struct {
	client *s3.Client
	bucket string
	// Prefix is the folder of the archive in the bucket ("" or ending "/").
	Prefix string
	// lockMode is the bucket's Object Lock mode for retention
	// (COMPLIANCE unless the bucket's default says GOVERNANCE); empty when
	// the bucket has no Object Lock.
	mu        sync.Mutex
	lockKnown bool
	lockMode  types.ObjectLockMode
	url       string
}

// S3Options are how to reach the store.
type S3Options struct {
	// AccessKey, SecretKey and SessionToken are the credentials (from a
	// Secret, through AWS_* environment variables).
	AccessKey, SecretKey, SessionToken string
	// HTTPClient is used for every request (nil: Go's default).
	HTTPClient *http.Client
}

// OpenS3 opens s3://BUCKET[/PREFIX][?endpoint=URL&region=R&pathStyle=true]
// (without reaching it: a store down at start is retried, run by run).
// endpoint is for stores
// other than AWS (MinIO, versitygw); pathStyle defaults to true with an
// endpoint.
func OpenS3(ctx context.Context, raw string, o S3Options) (*S3Store, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("archive %q: %w", raw, err)
	}
	if u.Scheme != "s3" || u.Host == "" {
		return nil, fmt.Errorf("archive %q: want s3://BUCKET[/PREFIX][?endpoint=URL&region=REGION]", raw)
	}
	q := u.Query()
	for k := range q {
		switch k {
		case "endpoint", "region", "pathStyle":
		default:
			return nil, fmt.Errorf("archive %q: unknown parameter %q (endpoint, region, pathStyle)", raw, k)
		}
	}
	region := q.Get("region")
	if region == "" {
		region = "us-east-1"
	}
	if o.AccessKey == "" || o.SecretKey == "" {
		return nil, fmt.Errorf("archive %q: no credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, from the chart's archive.credentialsSecret)", raw)
	}
	cfg := aws.Config{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider(o.AccessKey, o.SecretKey, o.SessionToken),
	}
	if o.HTTPClient != nil {
		cfg.HTTPClient = o.HTTPClient
	}
	endpoint := q.Get("endpoint")
	pathStyle := endpoint != ""
	if v := q.Get("pathStyle"); v != "" {
		pathStyle = v == "true"
	}
	client := s3.NewFromConfig(cfg, func(opt *s3.Options) {
		if endpoint != "" {
			opt.BaseEndpoint = aws.String(endpoint)
		}
		opt.UsePathStyle = pathStyle
	})
	prefix := strings.Trim(u.Path, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &S3Store{client: client, bucket: u.Host, Prefix: prefix, url: "s3://" + u.Host + "/" + prefix}, nil
}

// detectLock reads, once, whether the bucket has Object Lock (and its
// default mode). Until it could be read, nothing is written: a record
// written without the retention the bucket offers would be deletable.
func (s *S3Store) detectLock(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lockKnown {
		return nil
	}
	lock, err := s.client.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: aws.String(s.bucket)})
	switch {
	case err == nil && lock.ObjectLockConfiguration != nil && lock.ObjectLockConfiguration.ObjectLockEnabled == types.ObjectLockEnabledEnabled:
		s.lockMode = types.ObjectLockModeCompliance
		if r := lock.ObjectLockConfiguration.Rule; r != nil && r.DefaultRetention != nil && r.DefaultRetention.Mode == types.ObjectLockRetentionModeGovernance {
			s.lockMode = types.ObjectLockModeGovernance
		}
	case err == nil || isCode(err, "ObjectLockConfigurationNotFoundError", "ObjectLockConfigurationNotFound"):
	default:
		return fmt.Errorf("archive %s: Object Lock of the bucket: %w", s.url, err)
	}
	s.lockKnown = true
	return nil
}

// ObjectLock is the bucket's Object Lock mode ("" without one), read
// from the bucket.
func (s *S3Store) ObjectLock(ctx context.Context) (string, error) {
	if err := s.detectLock(ctx); err != nil {
		return "", err
	}
	return string(s.lockMode), nil
}

// Describe implements Store.
func (s *S3Store) Describe() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.lockKnown {
		return s.url + " (Object Lock not read yet)"
	}
	if s.lockMode == "" {
		return s.url + " (no Object Lock: whoever may write the bucket can delete records; the chain shows a gap)"
	}
	return s.url + " (Object Lock " + string(s.lockMode) + ")"
}

// Create implements Store.
func (s *S3Store) Create(ctx context.Context, key string, body []byte, retainUntil time.Time) error {
	if err := s.detectLock(ctx); err != nil {
		return err
	}
	in := &s3.PutObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(s.Prefix + key), Body: bytes.NewReader(body),
		ContentType: aws.String("application/json"), IfNoneMatch: aws.String("*"),
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
	}
	if s.lockMode != "" && !retainUntil.IsZero() {
		in.ObjectLockMode, in.ObjectLockRetainUntilDate = s.lockMode, aws.Time(retainUntil)
	}
	_, err := s.client.PutObject(ctx, in)
	if isCode(err, "PreconditionFailed", "ConditionalRequestConflict") {
		return fmt.Errorf("%s: %w", key, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// Get implements Store.
func (s *S3Store) Get(ctx context.Context, key string) ([]byte, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.Prefix + key)})
	if isCode(err, "NoSuchKey", "NotFound") {
		return nil, fmt.Errorf("%s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return readRecord(out.Body, key)
}

// readRecord reads an object's body, at most maxRecord bytes.
func readRecord(body io.ReadCloser, key string) ([]byte, error) {
	defer body.Close()
	data, err := io.ReadAll(io.LimitReader(body, maxRecord+1))
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	if len(data) > maxRecord {
		return nil, fmt.Errorf("get %s: larger than %d bytes: not a record", key, maxRecord)
	}
	return data, nil
}

// maxRecord bounds what Get reads: a record with its page is a few
// hundred KiB.
const maxRecord = 16 << 20

// List implements Store.
func (s *S3Store) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: aws.String(s.Prefix + prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, strings.TrimPrefix(aws.ToString(o.Key), s.Prefix))
		}
	}
	return keys, nil
}

// isCode says whether err is an S3 error with one of codes.
func isCode(err error, codes ...string) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	for _, c := range codes {
		if ae.ErrorCode() == c {
			return true
		}
	}
	return false
}

// Versions implements Versioned.
func (s *S3Store) Versions(ctx context.Context, prefix string) (map[string][]Version, bool, error) {
	type entry struct {
		v  Version
		at time.Time
	}
	byKey := map[string][]entry{}
	versioned := false
	p := s3.NewListObjectVersionsPaginator(s.client, &s3.ListObjectVersionsInput{Bucket: aws.String(s.bucket), Prefix: aws.String(s.Prefix + prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, false, fmt.Errorf("list versions %s: %w", prefix, err)
		}
		for _, o := range page.Versions {
			id := aws.ToString(o.VersionId)
			versioned = versioned || (id != "" && id != "null")
			k := strings.TrimPrefix(aws.ToString(o.Key), s.Prefix)
			byKey[k] = append(byKey[k], entry{Version{ID: id}, aws.ToTime(o.LastModified)})
		}
		for _, o := range page.DeleteMarkers {
			versioned = true
			k := strings.TrimPrefix(aws.ToString(o.Key), s.Prefix)
			byKey[k] = append(byKey[k], entry{Version{ID: aws.ToString(o.VersionId), DeleteMarker: true}, aws.ToTime(o.LastModified)})
		}
	}
	if !versioned {
		return nil, false, nil
	}
	out := map[string][]Version{}
	for k, es := range byKey {
		// S3 lists a key's versions newest first; keep that order for
		// equal times, reversed.
		sort.SliceStable(es, func(i, j int) bool { return es[i].at.After(es[j].at) })
		for i := len(es) - 1; i >= 0; i-- {
			out[k] = append(out[k], es[i].v)
		}
	}
	return out, true, nil
}

// GetVersion implements Versioned.
func (s *S3Store) GetVersion(ctx context.Context, key, version string) ([]byte, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.Prefix + key), VersionId: aws.String(version)})
	if err != nil {
		return nil, fmt.Errorf("get %s version %s: %w", key, version, err)
	}
	return readRecord(out.Body, key+" version "+version)
}
