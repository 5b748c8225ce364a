//go:build tools

// Package tools pins the Kyverno release the local cluster's real node runs.
// Kyverno's own go.mod replaces k8s.io/pod-security-admission with its fork,
// so it cannot be `go install`ed; this module copies that replace.
package tools

import (
	_ "github.com/kyverno/kyverno/cmd/kyverno"
	_ "github.com/kyverno/kyverno/cmd/kyverno-init"
)
