// Package lb is the API server load balancer the Docker provider runs in its
// `<cluster>-lb` container (`agent lb`): a TCP proxy that finds the
// control-plane machines by resolving a DNS name every interval, checks
// each one's /readyz over HTTPS, and sends new connections only to ready
// ones, so that the cluster's endpoint outlives any one control plane. It
// uses the standard library only, to keep the agent binary small.
package lb
