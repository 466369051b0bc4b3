// Command pause is the sandbox process of every pod on a Seed node: it holds
// the pod's namespaces open, reaps orphans when it is the pod's PID 1 (shared
// process namespace), and exits cleanly on SIGINT or SIGTERM. It is built
// static and shipped FROM scratch under the tag kubeadm expects for
// registry.k8s.io/pause, because Seed nodes never pull images.
package main
