// Package check tests manifests/monitoring: the alerting rules parse as
// Prometheus parses them, the dashboard is valid for current Grafana, and
// every metric either names is one a running agent exports. It is a module
// of its own so that Prometheus' rule parser, and what it needs, stay out of
// Seed's root module.
package check
