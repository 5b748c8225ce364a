//go:build tools

// Package tools pins the External Secrets Operator release the local
// cluster's real node runs. v1.x splits its providers into modules that the
// Go module proxy does not serve; v0.16.2 is the newest release that builds
// from the proxy. Its go.mod replaces sprig with ESO's fork, so it cannot be
// `go install`ed; this module copies that replace.
package tools

import _ "github.com/external-secrets/external-secrets"
