// Command seednet is Seed's pod network: a DaemonSet (host network) that gives
// each node's pods its spec.podCIDR through the standard bridge and
// host-local CNI plugins, routes every other node's pod CIDR via that node's
// InternalIP, and masquerades pod traffic that leaves the pod network. It
// needs every node on one L2 segment (one Docker network, or one VPC subnet
// with source/destination checks off): it encapsulates nothing.
package main
