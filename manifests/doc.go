// Package manifests holds the Kubernetes objects the seed installs into a
// new cluster (the agent's Namespace, ServiceAccount, least-privilege RBAC,
// Deployment, metrics Service and the spec ConfigMap), embedded in the
// binary and rendered for one cluster.
package manifests
