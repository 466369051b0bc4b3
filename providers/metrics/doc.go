// Package metrics wraps any Provider once, recording the latency and errors
// of every call as Prometheus metrics, so providers themselves stay free of
// instrumentation.
package metrics
