// Package framework is what the end-to-end specs stand on: it brings
// clusters up and down through the seed's own command (in-process, the same
// code path a user runs), talks to them, and inspects the Docker resources
// they own. Specs in package e2e are functions over it.
package framework
