package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// node is what seednet needs to know about a Node.
type node struct {
	Name       string
	PodCIDRs   []netip.Prefix // IPv4 only; seednet does not route IPv6 yet
	InternalIP netip.Addr     // invalid when the Node reports none
}

// Backends: how traffic between pods on different nodes travels.
const (
	// backendRoute routes each node's pod CIDR via that node's address; the
	// network between nodes must deliver packets addressed to pods.
	backendRoute = "route"
	// backendVXLAN encapsulates it in VXLAN between node addresses, for
	// networks that drop packets addressed to pods (an AWS VPC with
	// source/destination checks, separate subnets).
	backendVXLAN = "vxlan"
)

// VXLAN parameters. The VNI and port are the same on every node; the port is
// IANA's, so a security group or firewall rule can name it.
const (
	vxlanDevice   = "seednet.vxlan"
	vxlanVNI      = 1
	vxlanPort     = 4789
	vxlanOverhead = 50 // outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14)
)

// route sends one remote node's pods via that node, or, when Dev is set, via
// that node's VXLAN endpoint on Dev (onlink). An Unreachable route (no Via,
// no Dev) sends Dst nowhere: the kernel fails a local connection at once
// and answers a forwarded packet with ICMP host unreachable.
type route struct {
	Dst         netip.Prefix
	Via         netip.Addr
	Dev         string
	Unreachable bool
}

// unreachableMetric is the metric of seednet's unreachable routes: the
// highest there is, so any other route to the same prefix (the kernel's
// route to a pod bridge, a node's pod CIDR that happens to be the whole
// range) wins over it, and `ip route replace` never replaces one with it.
const unreachableMetric = 4294967295

// routeKey identifies a route on the host: an unreachable route and a route
// via a node can share a prefix, as their metrics differ.
type routeKey struct {
	Dst         netip.Prefix
	Unreachable bool
}

func (r route) key() routeKey { return routeKey{Dst: r.Dst, Unreachable: r.Unreachable} }

func (r route) String() string {
	if r.Unreachable {
		return "unreachable " + r.Dst.String()
	}
	s := r.Dst.String() + " via " + r.Via.String()
	if r.Dev != "" {
		s += " dev " + r.Dev
	}
	return s
}

// vxlanLink is this node's VXLAN device.
type vxlanLink struct {
	// Local is the node's InternalIP, the outer source address.
	Local netip.Addr
	// VTEP is the device's address: the first address of the node's pod
	// CIDR, which no pod gets (host-local starts at the gateway, .1).
	VTEP netip.Addr
	// MAC is derived from Local, so peers know it without asking.
	MAC string
	MTU int
}

// vxlanPeer is another node as seen through the VXLAN device: its VTEP
// address answers to MAC (a permanent neighbour entry), and frames for MAC
// go to Underlay, the node's InternalIP (a forwarding database entry).
type vxlanPeer struct {
	VTEP     netip.Addr
	MAC      string
	Underlay netip.Addr
}

func (p vxlanPeer) String() string {
	return p.VTEP.String() + " at " + p.MAC + " via " + p.Underlay.String()
}

// vxlanMAC derives a node's VTEP MAC from its InternalIP: locally
// administered, unicast, and unique as long as the addresses are.
func vxlanMAC(ip netip.Addr) string {
	b := ip.As4()
	return fmt.Sprintf("0e:5e:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3])
}

// plan is everything seednet wants the host to look like.
type plan struct {
	// Conflist is the CNI configuration for this node's pods.
	Conflist []byte
	// Routes are the routes to every other node's pods, and the cluster's
	// pod range to nowhere behind them, sorted.
	Routes []route
	// IPTables is an iptables-restore payload (applied with --noflush)
	// that masquerades pod traffic leaving the pod network and rejects
	// traffic to a Service address kube-proxy has no rule for.
	IPTables string
	// LocalCIDR is this node's pod CIDR.
	LocalCIDR netip.Prefix
	// VXLAN is this node's VXLAN device, and Peers the other nodes behind
	// it, with the vxlan backend; both are empty with the route backend.
	VXLAN *vxlanLink
	Peers []vxlanPeer
}

// errNoPodCIDR means the node has no pod CIDR yet (the controller manager
// assigns one shortly after the Node registers): wait, do not fail.
type errNoPodCIDR struct{ node string }

func (e errNoPodCIDR) Error() string { return fmt.Sprintf("node %s has no IPv4 pod CIDR yet", e.node) }

// nodeFromAPI extracts what seednet uses from a Node, skipping what it cannot
// use (IPv6, unparsable values) rather than failing on it.
func nodeFromAPI(n *corev1.Node) node {
	out := node{Name: n.Name}
	cidrs := n.Spec.PodCIDRs
	if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
		cidrs = []string{n.Spec.PodCIDR}
	}
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil && p.Addr().Is4() {
			out.PodCIDRs = append(out.PodCIDRs, p.Masked())
		}
	}
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil && ip.Is4() {
			out.InternalIP = ip
			break
		}
	}
	return out
}

// computePlan decides the CNI config, routes and iptables rules for the
// node named self, given every Node in the cluster and the cluster's
// ranges; mtu is that of the node's own interface.
//
// A packet for a cluster address that nothing on the node claims (a Service
// port kube-proxy has no rule for, a pod address no node has) would
// otherwise follow the node's default route out of the cluster, to whatever
// network the node is on. The plan keeps such addresses on the node:
//   - the pod range is routed nowhere (an unreachable route), behind the
//     more specific routes to each node's pods;
//   - traffic still addressed to the Service range after kube-proxy's DNAT
//     is rejected, in FORWARD for pods and in OUTPUT for the node's own
//     processes. Not a route: for a local connection the kernel looks the
//     route up before the DNAT, so an unreachable Service range would fail
//     host-network clients of every Service.
//
// Without the cluster's ranges there is no plan: a node must not give pods
// a network whose addresses can leak.
func computePlan(self string, nodes []node, nets clusterNetworks, mtu int, backend string) (plan, error) {
	if len(nets.Pods) == 0 || len(nets.Services) == 0 {
		return plan{}, errNoClusterNetworks{reason: "no IPv4 pod or Service range given"}
	}
	var me *node
	for i := range nodes {
		if nodes[i].Name == self {
			me = &nodes[i]
		}
	}
	if me == nil {
		return plan{}, fmt.Errorf("node %s not found", self)
	}
	if len(me.PodCIDRs) == 0 {
		return plan{}, errNoPodCIDR{node: self}
	}
	local := me.PodCIDRs[0]

	var link *vxlanLink
	switch backend {
	case backendRoute:
	case backendVXLAN:
		if !me.InternalIP.IsValid() {
			return plan{}, fmt.Errorf("node %s reports no IPv4 InternalIP to send VXLAN from", self)
		}
		mtu -= vxlanOverhead
		link = &vxlanLink{Local: me.InternalIP, VTEP: local.Addr(), MAC: vxlanMAC(me.InternalIP), MTU: mtu}
	default:
		return plan{}, fmt.Errorf("backend %q must be %q or %q", backend, backendRoute, backendVXLAN)
	}

	conflist, err := renderConflist(local, mtu)
	if err != nil {
		return plan{}, err
	}

	var routes []route
	var peers []vxlanPeer
	var podCIDRs []netip.Prefix
	for _, n := range nodes {
		podCIDRs = append(podCIDRs, n.PodCIDRs...)
		if n.Name == self || !n.InternalIP.IsValid() || len(n.PodCIDRs) == 0 {
			continue
		}
		// A node's VTEP is the first address of its first pod CIDR.
		vtep := n.PodCIDRs[0].Addr()
		routed := false
		for _, c := range n.PodCIDRs {
			// A CIDR that overlaps ours would hijack local pods' traffic.
			if c.Overlaps(local) {
				continue
			}
			if link != nil {
				routes = append(routes, route{Dst: c, Via: vtep, Dev: vxlanDevice})
			} else {
				routes = append(routes, route{Dst: c, Via: n.InternalIP})
			}
			routed = true
		}
		if link != nil && routed && n.InternalIP != me.InternalIP {
			peers = append(peers, vxlanPeer{VTEP: vtep, MAC: vxlanMAC(n.InternalIP), Underlay: n.InternalIP})
		}
	}
	for _, c := range nets.Pods {
		routes = append(routes, route{Dst: c, Unreachable: true})
	}
	slices.SortFunc(routes, func(a, b route) int { return strings.Compare(a.String(), b.String()) })
	routes = slices.CompactFunc(routes, func(a, b route) bool { return a.key() == b.key() })
	slices.SortFunc(peers, func(a, b vxlanPeer) int { return a.VTEP.Compare(b.VTEP) })
	peers = slices.CompactFunc(peers, func(a, b vxlanPeer) bool { return a.VTEP == b.VTEP || a.MAC == b.MAC })

	return plan{
		Conflist:  conflist,
		Routes:    routes,
		IPTables:  renderIPTables(podCIDRs, nets.Services),
		LocalCIDR: local,
		VXLAN:     link,
		Peers:     peers,
	}, nil
}

// Names of seednet's own chains; everything else in the tables is left alone.
const (
	chainPostrouting = "SEEDNET-POSTROUTING"
	chainForward     = "SEEDNET-FORWARD"
	chainOutput      = "SEEDNET-OUTPUT"
)

// renderIPTables returns an iptables-restore payload for seednet's chains:
// pod traffic to anything but a pod is masqueraded (so replies find their way
// back from outside the cluster); traffic to a Service address that
// kube-proxy did not translate is rejected, whether a pod or the node sent
// it (the filter table sees addresses after the DNAT, so only untranslated
// packets still carry one); and forwarding of pod traffic is accepted even
// where the FORWARD policy is DROP. Declaring a chain in the payload flushes
// it, so applying it again replaces the rules.
func renderIPTables(podCIDRs, serviceCIDRs []netip.Prefix) string {
	sorted := func(prefixes []netip.Prefix) []string {
		out := make([]string, 0, len(prefixes))
		for _, c := range prefixes {
			out = append(out, c.String())
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	cidrs, services := sorted(podCIDRs), sorted(serviceCIDRs)
	// REJECT's default, ICMP port unreachable, is what kube-proxy answers
	// for a Service with no endpoints: connection refused.
	reject := func(chain, cidr string) string {
		return fmt.Sprintf("-A %s -d %s -m comment --comment \"seednet: Service address with no kube-proxy rule\" -j REJECT\n", chain, cidr)
	}

	var b strings.Builder
	b.WriteString("*nat\n:" + chainPostrouting + " - [0:0]\n")
	for _, c := range cidrs {
		fmt.Fprintf(&b, "-A %s -d %s -m comment --comment \"seednet: pod to pod\" -j RETURN\n", chainPostrouting, c)
	}
	fmt.Fprintf(&b, "-A %s -m comment --comment \"seednet: pod leaving the pod network\" -j MASQUERADE --random-fully\n", chainPostrouting)
	b.WriteString("COMMIT\n*filter\n:" + chainForward + " - [0:0]\n:" + chainOutput + " - [0:0]\n")
	// Before the accepts: a pod's packet to a Service address matches both.
	for _, c := range services {
		b.WriteString(reject(chainForward, c))
	}
	for _, c := range cidrs {
		fmt.Fprintf(&b, "-A %s -s %s -j ACCEPT\n", chainForward, c)
		fmt.Fprintf(&b, "-A %s -d %s -j ACCEPT\n", chainForward, c)
	}
	for _, c := range services {
		b.WriteString(reject(chainOutput, c))
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// jumpRules are the rules that send traffic into seednet's chains: table,
// chain, and rule arguments. They are added once, never replaced.
func jumpRules(local netip.Prefix) [][]string {
	return [][]string{
		{"nat", "POSTROUTING", "-s", local.String(), "-m", "comment", "--comment", "seednet", "-j", chainPostrouting},
		{"filter", "FORWARD", "-m", "comment", "--comment", "seednet", "-j", chainForward},
		{"filter", "OUTPUT", "-m", "comment", "--comment", "seednet", "-j", chainOutput},
	}
}

// Bridge is the Linux bridge pods attach to on every node.
const bridgeName = "seednet0"

// renderConflist returns the CNI configuration list for a node whose pods
// live in podCIDR: a bridge with host-local addresses and the node as
// gateway, then portmap for hostPort. containerd brings up each pod's
// loopback itself, with the loopback plugin from the same directory.
func renderConflist(podCIDR netip.Prefix, mtu int) ([]byte, error) {
	type ipRange struct {
		Subnet string `json:"subnet"`
	}
	type ipamRoute struct {
		Dst string `json:"dst"`
	}
	type plugin map[string]any
	conf := struct {
		CNIVersion string   `json:"cniVersion"`
		Name       string   `json:"name"`
		Plugins    []plugin `json:"plugins"`
	}{
		// The highest version Debian's plugins (1.1.x) and containerd 1.6 share.
		CNIVersion: "0.4.0",
		Name:       "seednet",
		Plugins: []plugin{
			{
				"type":        "bridge",
				"bridge":      bridgeName,
				"isGateway":   true,
				"ipMasq":      false, // seednet masquerades, knowing every node's pods
				"hairpinMode": true,  // a pod reaching itself through a Service
				"mtu":         mtu,
				"ipam": map[string]any{
					"type":   "host-local",
					"ranges": [][]ipRange{{{Subnet: podCIDR.String()}}},
					"routes": []ipamRoute{{Dst: "0.0.0.0/0"}},
				},
			},
			{
				"type":         "portmap",
				"capabilities": map[string]bool{"portMappings": true},
				"snat":         true,
			},
		},
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("rendering CNI config: %w", err)
	}
	return append(b, '\n'), nil
}
