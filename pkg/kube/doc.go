// Package kube holds the small Kubernetes client helpers both binaries and
// the tests share: creating objects that are missing without touching the
// ones that exist, and the few core-group reads the seed makes. It avoids
// the client-go packages (clientset, typed clients, discovery) and API types
// that would make the seed big; see Core.
package kube
