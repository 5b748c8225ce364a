// Package tools pins the Kubernetes control-plane binaries the local test cluster builds.
package tools
