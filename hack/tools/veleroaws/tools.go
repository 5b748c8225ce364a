// Package tools pins velero-plugin-for-aws for drillbot's local test cluster.
package tools
