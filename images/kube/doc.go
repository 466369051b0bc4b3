// Command kube is one binary holding the Kubernetes components Seed runs on
// a node: kube-apiserver, kube-controller-manager, kube-scheduler,
// kube-proxy, kubelet, kubeadm and kubectl. It picks the component from the
// name it was called by (a symlink), or from its first argument when called
// as kube, so one 100-odd MB file serves every role instead of seven.
//
// hack/build-kube.sh builds it against the Kubernetes version it is given.
package main
