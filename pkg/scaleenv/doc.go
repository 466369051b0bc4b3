// Package scaleenv runs the agent at scale on one machine: a real etcd,
// kube-apiserver, kube-scheduler and kube-controller-manager (pkg/testenv
// and Seed's kube build), kwok playing every kubelet, and bin/agent built
// from this tree and run as its own process against that API server, with
// the simulated provider (providers/simulated). The agent's memory, its
// requests and its passes are then the real ones: TestScale1000 checks
// what it does, BenchmarkAgentScale measures what it costs.
package scaleenv
