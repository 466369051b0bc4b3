// Package kube holds the small Kubernetes client helpers both binaries and
// the tests share: creating objects that are missing without touching the
// ones that exist, and waiting on conditions.
package kube
