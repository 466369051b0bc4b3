// Command render writes what a provider would put on a machine before its
// first boot: the files and the script of pkg/bootstrap's ControlPlane or
// Join, laid out under a directory as they must appear on the machine.
// hack/smoke-node.sh copies that directory into a node container, as the
// Docker provider does, to test the node image without the provider.
package main
