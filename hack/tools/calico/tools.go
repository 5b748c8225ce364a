//go:build tools

// Package tools pins Calico v3.31.0 (github.com/projectcalico/calico at its
// release commit b1f3c43f8437; the module path has no /v3, so the proxy
// serves the release as a pseudo-version) and its api module at the commit
// Calico's own consumers pair with it. make builds calico-node (Felix, in
// policy-only mode) and the Calico CNI plugin from this module.
package tools

import (
	_ "github.com/projectcalico/calico/cni-plugin/cmd/calico"
	_ "github.com/projectcalico/calico/node/cmd/calico-node"
)
