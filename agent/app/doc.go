// Package app wires the agent: flags, logging, the Kubernetes client, the
// provider chosen by the spec (wrapped in metrics), leader election, and the
// metrics and health endpoints. main calls Main; tests call Run.
package app
