// Package cluster is the seed's library: bring a cluster up and hand it to
// its agent, take it down, read its status and its kubeconfig. The seed's
// verbs are thin cobra wrappers over it, and the e2e tests call it the same
// way a user's command does.
package cluster
