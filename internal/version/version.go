// Package version holds drillbot's version, set at build time.
package version

// Version is set with -ldflags "-X .../internal/version.Version=...".
var Version = "dev"
