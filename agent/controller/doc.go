// Package controller is the agent's reconciler: it watches the spec
// ConfigMap and the Nodes, observes the provider's machines, asks the pure
// planner (pkg/plan) what to do, and carries the plan out one idempotent step
// at a time. Every machine it creates or deletes is first written to a
// ledger ConfigMap, so a crash or a second agent never loses track of one.
package controller
