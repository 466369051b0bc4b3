// Package simulated is a provider whose machines are Nodes it creates in
// the cluster's own API server and kwok (sigs.k8s.io/kwok) keeps alive as
// if a kubelet ran them: no container, no VM, a few KiB of etcd each. It
// lets the very same agent (planner, ledger, drains) run at thousands of
// machines on one small host, which is what the scale harness
// (pkg/scaleenv) and its tests and benchmarks do.
//
// It is a spec variant, spec.provider.simulated, not a registration made
// by tests: the agent under measurement is bin/agent run as its own
// process, which builds its provider from the spec like any other, so the
// code path measured is the one users run. Only an agent can use it: the
// Node API it creates machines in is the API server the agent talks to,
// and `seed up` has no cluster yet (registry.New refuses it there).
//
// A machine is its Node and nothing else, so its identity is in the API
// server from the moment CreateMachine returns, whatever happens to the
// agent next: the Node carries Seed's ownership labels, the labels and
// taints of the machine's join, the machine type's capacity in its status,
// `kwok.x-k8s.io/node: fake` as label and annotation (kwok manages the
// Nodes with that annotation), spec.providerID kwok://<name>, and
// seed.dev/simulated-register-at, the creation time plus the registration
// delay. kwok's node-initialize stage (pkg/scaleenv/kwok) waits until then
// before it makes the Node Ready; until then the machine is Pending and the
// API server's not-ready taint keeps pods off it. Nothing is left for the
// agent to finish after a crash. Creating a name that exists returns the
// existing machine, deleting one that does not is success, so overlapping
// agents make neither duplicates nor orphans.
package simulated
