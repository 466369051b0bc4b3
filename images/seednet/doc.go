// Command seednet is Seed's pod network: a DaemonSet (host network) that gives
// each node's pods its spec.podCIDR through the standard bridge and
// host-local CNI plugins, sends every other node's pod CIDR to that node, and
// masquerades pod traffic that leaves the pod network.
//
// It also keeps the cluster's own addresses on the node. A connection to a
// Service port kube-proxy has no rule for, or to a pod address no node has,
// would otherwise leave by the node's default route for whatever network the
// node is on. seednet routes the cluster's pod range nowhere (an unreachable
// route, behind the routes to each node's pods) and rejects traffic still
// addressed to the Service range after kube-proxy's DNAT, so such a
// connection fails at once, on the node. Both ranges are read from the
// configuration kubeadm set the cluster up with (kube-system/kubeadm-config);
// until seednet has them it writes no CNI config, so no pod runs unfenced.
//
// How traffic reaches another node is the --backend flag:
//
//   - route (the Docker provider's): a route per node, via its InternalIP.
//     Nothing is encapsulated, so the network between nodes must deliver
//     packets addressed to pods: one L2 segment, such as a Docker network.
//   - vxlan (the AWS provider's): a VXLAN device, seednet.vxlan (VNI 1, UDP
//     4789), whose address is the first address of the node's pod CIDR.
//     Each other node gets a route via its VTEP address (onlink), a
//     permanent neighbour entry for that address, and a forwarding entry
//     sending frames for its MAC to its InternalIP. MACs are derived from
//     InternalIPs, so nodes need to publish nothing beyond what a Node
//     already says. Pods get the node's MTU less 50 bytes. The network
//     between nodes only ever sees node addresses, so it works across
//     subnets and with AWS source/destination checks on.
//
// Switching backends is a rollout of the DaemonSet: the new backend's sync
// replaces the other's routes and removes its device.
package main
