// Package joiner renders what a new worker runs to join the cluster: it
// creates a short-lived kubeadm bootstrap token (a Secret in kube-system),
// pins the cluster CA from the public cluster-info ConfigMap, and hands both
// to the shared kubeadm rendering in pkg/bootstrap.
package joiner
