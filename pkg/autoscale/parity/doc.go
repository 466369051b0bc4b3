// Package parity holds a test, and nothing else: that pkg/autoscale's
// Check agrees with kube-scheduler's own filter plugins (NodeUnschedulable,
// TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit) on random
// pods and nodes. It is a module of its own because it imports
// k8s.io/kubernetes, which the root module must not.
package parity
