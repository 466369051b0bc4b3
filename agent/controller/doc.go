// Package controller is the agent's reconciler. A pass is four phases, each
// in a file of its name: observe (spec, provider machines, Nodes, ledger),
// plan (the pure planner, pkg/plan, which also decides what becomes of
// recorded work), act (record every decision in the ledger, then take one
// step of every operation) and report (status, written when it changes).
// Long work is an operation in the ledger ConfigMap whose next step is
// written before it is taken, so a crash or a second agent never loses
// track of a machine.
package controller
