// Package app wires the agent: flags, logging, the Kubernetes client, the
// provider chosen by the spec (wrapped in metrics), leader election, and the
// metrics and health endpoints. main calls Main; tests call Run.
// `agent lb` runs the API server load balancer (package lb) instead.
package app
