// Command coredns is CoreDNS with the plugins a Kubernetes cluster uses and
// none of the cloud back ends (Route 53, Azure, Cloud DNS, etcd, tracing,
// DNSSEC keys from AWS Secrets Manager), which keeps the build small enough
// for the machines Seed builds on. It is
// shipped under the name and tag kubeadm expects for registry.k8s.io's
// CoreDNS image.
package main
