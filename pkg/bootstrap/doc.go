// Package bootstrap renders what a machine runs on first boot to become a
// Kubernetes node: kubeadm configuration files and one idempotent script,
// for the first control-plane machine (kubeadm init) and for workers
// (kubeadm join). The Docker and AWS providers ship the result unchanged;
// the paths in it are the node image's contract (see images/node/README.md).
package bootstrap
