package localcluster

import (
	"context"
	"fmt"
	"os"
	"time"
)

// The S3 store's credentials and Velero's bucket (a directory under s3/).
const (
	s3Access = "drillbot"
	s3Secret = "drillbot-secret-key"
	bucket   = "velero"
)

// startS3 starts versitygw (posix backend) on loopback (the node's
// address with a node-agent) at port, writes the
// credentials file Velero's AWS plugin reads, and returns the store's URL.
func (c *Cluster) startS3(ctx context.Context, port int) (string, error) {
	if err := c.writeS3Credentials(); err != nil {
		return "", err
	}
	host := "127.0.0.1"
	if c.cfg.NodeAgent {
		host = NodeIP // the node-agent's pods copy volume data to it
	}
	addr := fmt.Sprintf("%s:%d", host, port)
	if err := c.start("versitygw", c.cfg.Bins.VersityGW, nil,
		"--access", s3Access, "--secret", s3Secret, "--port", addr,
		// Versions make Object Lock work: a bucket created with it (the
		// evidence archive's) keeps every version and refuses deleting a
		// retained one.
		"posix", "--versioning-dir", c.path("s3-versions"), c.path("s3")); err != nil {
		return "", err
	}
	return "http://" + addr, c.waitTCP(ctx, "versitygw", addr, 30*time.Second)
}

// S3Credentials are the store's access and secret keys.
func (c *Cluster) S3Credentials() (access, secret string) { return s3Access, s3Secret }

// S3Dir is the folder the store keeps its buckets in (bucket = folder,
// object = file): what someone with the disk can change behind the
// store's back.
func (c *Cluster) S3Dir() string { return c.path("s3") }

// writeS3Credentials writes the store's credentials file for Velero's AWS
// plugin (every local store has the same).
func (c *Cluster) writeS3Credentials() error {
	return os.WriteFile(c.path("s3-credentials"), S3CredentialsFile(), 0o600)
}

// S3CredentialsFile is the credentials file Velero's AWS plugin reads for
// the harness's S3 stores.
func S3CredentialsFile() []byte {
	return fmt.Appendf(nil, "[default]\naws_access_key_id=%s\naws_secret_access_key=%s\n", s3Access, s3Secret)
}

// S3Keys are the access and secret keys of the harness's S3 stores, and
// Velero's bucket in them.
func S3Keys() (access, secret, veleroBucket string) { return s3Access, s3Secret, bucket }
