// Package tools pins rancher/local-path-provisioner, the local cluster's
// dynamic provisioner; make builds its command from this module.
package tools
