// Package pki makes the few certificates Seed itself needs: the cluster CA
// that kubeadm is given instead of generating its own (so the seed knows
// the discovery hash and can sign its admin credentials before the cluster
// exists), client certificates signed by it, and the admin kubeconfig.
package pki
