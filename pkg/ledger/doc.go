// Package ledger is the format of the agent's ledger ConfigMap
// (seed-system/seed-machines): one JSON entry per machine with recorded,
// unfinished work, and how the planner reads it. The agent writes it; the
// seed reads it for `seed plan`.
package ledger
