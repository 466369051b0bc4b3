package main

import (
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func mustNode(name, ip string, cidrs ...string) node {
	n := node{Name: name}
	if ip != "" {
		n.InternalIP = netip.MustParseAddr(ip)
	}
	for _, c := range cidrs {
		n.PodCIDRs = append(n.PodCIDRs, netip.MustParsePrefix(c))
	}
	return n
}

func r(dst, via string) route {
	return route{Dst: netip.MustParsePrefix(dst), Via: netip.MustParseAddr(via)}
}

func unreachable(dst string) route { return route{Dst: netip.MustParsePrefix(dst), Unreachable: true} }

// testNets are kubeadm's defaults, as Seed's clusters use them.
var testNets = clusterNetworks{
	Pods:     []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")},
	Services: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12")},
}

// sortedRoutes orders routes as plans do, for comparing a host's routes.
func sortedRoutes(routes []route) []route {
	out := slices.Clone(routes)
	slices.SortFunc(out, func(a, b route) int { return strings.Compare(a.String(), b.String()) })
	return out
}

func TestComputePlanRoutes(t *testing.T) {
	tests := []struct {
		name    string
		self    string
		nodes   []node
		want    []route
		wantErr error
	}{
		{
			name:  "single node routes only the pod range, nowhere",
			self:  "cp",
			nodes: []node{mustNode("cp", "172.18.0.2", "10.244.0.0/24")},
			want:  []route{unreachable("10.244.0.0/16")},
		},
		{
			name: "every other node via its InternalIP, sorted",
			self: "w1",
			nodes: []node{
				mustNode("w2", "172.18.0.4", "10.244.2.0/24"),
				mustNode("cp", "172.18.0.2", "10.244.0.0/24"),
				mustNode("w1", "172.18.0.3", "10.244.1.0/24"),
			},
			want: []route{r("10.244.0.0/24", "172.18.0.2"), r("10.244.2.0/24", "172.18.0.4"), unreachable("10.244.0.0/16")},
		},
		{
			name: "nodes without address or CIDR are skipped",
			self: "cp",
			nodes: []node{
				mustNode("cp", "172.18.0.2", "10.244.0.0/24"),
				mustNode("new", "", "10.244.1.0/24"),
				mustNode("pending", "172.18.0.5"),
			},
			want: []route{unreachable("10.244.0.0/16")},
		},
		{
			name: "a CIDR overlapping ours is never routed away",
			self: "cp",
			nodes: []node{
				mustNode("cp", "172.18.0.2", "10.244.0.0/24"),
				mustNode("bad", "172.18.0.9", "10.244.0.0/16"),
			},
			want: []route{unreachable("10.244.0.0/16")},
		},
		{
			name: "a node whose pod CIDR is the whole range keeps its route; the unreachable one sits behind it",
			self: "w1",
			nodes: []node{
				mustNode("w1", "172.18.0.3", "10.245.0.0/24"),
				mustNode("big", "172.18.0.9", "10.244.0.0/16"),
			},
			want: []route{r("10.244.0.0/16", "172.18.0.9"), unreachable("10.244.0.0/16")},
		},
		{
			name:    "no pod CIDR yet is a wait, not a failure",
			self:    "cp",
			nodes:   []node{mustNode("cp", "172.18.0.2")},
			wantErr: errNoPodCIDR{node: "cp"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := computePlan(tt.self, tt.nodes, testNets, 1500, backendRoute)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p.Routes, tt.want) {
				t.Errorf("routes = %v, want %v", p.Routes, tt.want)
			}
		})
	}
}

func TestConflist(t *testing.T) {
	p, err := computePlan("cp", []node{mustNode("cp", "172.18.0.2", "10.244.3.0/24")}, testNets, 1450, backendRoute)
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		CNIVersion string `json:"cniVersion"`
		Name       string `json:"name"`
		Plugins    []struct {
			Type      string `json:"type"`
			IsGateway bool   `json:"isGateway"`
			MTU       int    `json:"mtu"`
			IPAM      struct {
				Type   string `json:"type"`
				Ranges [][]struct {
					Subnet string `json:"subnet"`
				} `json:"ranges"`
			} `json:"ipam"`
			Capabilities map[string]bool `json:"capabilities"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(p.Conflist, &conf); err != nil {
		t.Fatalf("conflist is not JSON: %v\n%s", err, p.Conflist)
	}
	var types []string
	for _, pl := range conf.Plugins {
		types = append(types, pl.Type)
	}
	if got, want := strings.Join(types, ","), "bridge,portmap"; got != want {
		t.Errorf("plugins = %s, want %s", got, want)
	}
	br := conf.Plugins[0]
	if !br.IsGateway || br.MTU != 1450 || br.IPAM.Type != "host-local" || br.IPAM.Ranges[0][0].Subnet != "10.244.3.0/24" {
		t.Errorf("bridge plugin = %+v", br)
	}
	if !conf.Plugins[1].Capabilities["portMappings"] {
		t.Errorf("portmap does not ask for port mappings")
	}
}

func TestIPTables(t *testing.T) {
	got := renderIPTables([]netip.Prefix{
		netip.MustParsePrefix("10.244.1.0/24"),
		netip.MustParsePrefix("10.244.0.0/24"),
		netip.MustParsePrefix("10.244.1.0/24"),
	}, testNets.Services)
	for _, want := range []string{
		"*nat\n:SEEDNET-POSTROUTING - [0:0]\n",
		"-A SEEDNET-POSTROUTING -d 10.244.0.0/24 -m comment --comment \"seednet: pod to pod\" -j RETURN\n-A SEEDNET-POSTROUTING -d 10.244.1.0/24",
		"-j MASQUERADE --random-fully\nCOMMIT\n",
		"-A SEEDNET-FORWARD -s 10.244.0.0/24 -j ACCEPT\n",
		// A pod's packet to a Service address kube-proxy did not
		// translate is rejected before the accepts could let it out.
		"*filter\n:SEEDNET-FORWARD - [0:0]\n:SEEDNET-OUTPUT - [0:0]\n" +
			"-A SEEDNET-FORWARD -d 10.96.0.0/12 -m comment --comment \"seednet: Service address with no kube-proxy rule\" -j REJECT\n" +
			"-A SEEDNET-FORWARD -s 10.244.0.0/24 -j ACCEPT\n",
		// So is the node's own.
		"-A SEEDNET-OUTPUT -d 10.96.0.0/12 -m comment --comment \"seednet: Service address with no kube-proxy rule\" -j REJECT\nCOMMIT\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("payload lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "-d 10.244.1.0/24 -m comment"); n != 1 {
		t.Errorf("duplicate CIDR rendered %d times", n)
	}
}

func TestRouteChangesTellUnreachableRoutesApart(t *testing.T) {
	// A node's route and the unreachable route to the same prefix are two
	// routes, and a route that changes kind is added, then the old removed.
	have := []route{r("10.244.0.0/16", "172.18.0.9"), unreachable("10.96.0.0/12")}
	want := []route{r("10.244.0.0/16", "172.18.0.9"), unreachable("10.244.0.0/16"), r("10.96.0.0/12", "172.18.0.5")}
	replace, remove := routeChanges(have, want)
	if w := want[1:]; !reflect.DeepEqual(replace, w) {
		t.Errorf("replace = %v, want %v", replace, w)
	}
	if w := have[1:]; !reflect.DeepEqual(remove, w) {
		t.Errorf("remove = %v, want %v", remove, w)
	}
}

func TestRouteChanges(t *testing.T) {
	have := []route{r("10.244.1.0/24", "172.18.0.3"), r("10.244.2.0/24", "172.18.0.4"), r("10.244.9.0/24", "172.18.0.9")}
	want := []route{r("10.244.1.0/24", "172.18.0.3"), r("10.244.2.0/24", "172.18.0.5"), r("10.244.3.0/24", "172.18.0.6")}
	replace, remove := routeChanges(have, want)
	if w := []route{r("10.244.2.0/24", "172.18.0.5"), r("10.244.3.0/24", "172.18.0.6")}; !reflect.DeepEqual(replace, w) {
		t.Errorf("replace = %v, want %v", replace, w)
	}
	if w := []route{r("10.244.9.0/24", "172.18.0.9")}; !reflect.DeepEqual(remove, w) {
		t.Errorf("remove = %v, want %v", remove, w)
	}
}

func TestParseRoutes(t *testing.T) {
	out := "10.244.1.0/24 via 172.18.0.3 dev eth0 proto 77 \n" +
		"10.244.2.0/24 via 172.18.0.4 dev eth0 proto 77 onlink \n" +
		"10.244.3.0/24 via 10.244.3.0 dev seednet.vxlan onlink \n" +
		"blackhole 10.1.0.0/16 proto 77 \n" +
		"unreachable 10.244.0.0/16 metric 4294967295 \n"
	want := []route{r("10.244.1.0/24", "172.18.0.3"), r("10.244.2.0/24", "172.18.0.4"),
		{Dst: netip.MustParsePrefix("10.244.3.0/24"), Via: netip.MustParseAddr("10.244.3.0"), Dev: vxlanDevice},
		unreachable("10.244.0.0/16")}
	if got := parseRoutes(out); !reflect.DeepEqual(got, want) {
		t.Errorf("parseRoutes = %v, want %v", got, want)
	}
}

func TestNodeFromAPI(t *testing.T) {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "w1"},
		Spec:       corev1.NodeSpec{PodCIDR: "10.244.1.0/24", PodCIDRs: []string{"10.244.1.0/24", "fd00:10:244:1::/64"}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeHostName, Address: "w1"},
			{Type: corev1.NodeInternalIP, Address: "fc00::3"},
			{Type: corev1.NodeInternalIP, Address: "172.18.0.3"},
		}},
	}
	got := nodeFromAPI(n)
	if want := mustNode("w1", "172.18.0.3", "10.244.1.0/24"); !reflect.DeepEqual(got, want) {
		t.Errorf("nodeFromAPI = %+v, want %+v", got, want)
	}
}

func TestSyncIsIdempotent(t *testing.T) {
	h := &fakeHost{}
	s := &syncer{self: "cp", backend: backendRoute, host: h, mtu: func(netip.Addr) int { return 1500 }}
	nodes := []node{mustNode("cp", "172.18.0.2", "10.244.0.0/24"), mustNode("w1", "172.18.0.3", "10.244.1.0/24")}
	for i := 0; i < 2; i++ {
		if err := s.sync(t.Context(), nodes, testNets); err != nil {
			t.Fatal(err)
		}
	}
	if h.replaced != 2 || h.writes != 1 {
		t.Errorf("after two passes: %d route replaces, %d config writes; want 2 (the worker's, the pod range's) and 1", h.replaced, h.writes)
	}
	if h.vxlanDeletes != 1 {
		t.Errorf("after two passes: %d attempts to remove the VXLAN device; want 1 (then it is known gone)", h.vxlanDeletes)
	}
	// The node leaves: its route goes; the pod range stays routed nowhere.
	if err := s.sync(t.Context(), nodes[:1], testNets); err != nil {
		t.Fatal(err)
	}
	if w := []route{unreachable("10.244.0.0/16")}; !reflect.DeepEqual(h.routes, w) {
		t.Errorf("routes after the node went = %v, want %v", h.routes, w)
	}
}

func TestComputePlanVXLAN(t *testing.T) {
	nodes := []node{
		mustNode("w2", "172.18.0.4", "10.244.2.0/24"),
		mustNode("cp", "172.18.0.2", "10.244.0.0/24"),
		mustNode("w1", "172.18.0.3", "10.244.1.0/24"),
		mustNode("new", "", "10.244.3.0/24"),
	}
	p, err := computePlan("w1", nodes, testNets, 9001, backendVXLAN)
	if err != nil {
		t.Fatal(err)
	}
	wantLink := vxlanLink{Local: netip.MustParseAddr("172.18.0.3"), VTEP: netip.MustParseAddr("10.244.1.0"), MAC: "0e:5e:ac:12:00:03", MTU: 8951}
	if p.VXLAN == nil || *p.VXLAN != wantLink {
		t.Errorf("link = %+v, want %+v", p.VXLAN, wantLink)
	}
	wantRoutes := []route{
		{Dst: netip.MustParsePrefix("10.244.0.0/24"), Via: netip.MustParseAddr("10.244.0.0"), Dev: vxlanDevice},
		{Dst: netip.MustParsePrefix("10.244.2.0/24"), Via: netip.MustParseAddr("10.244.2.0"), Dev: vxlanDevice},
		unreachable("10.244.0.0/16"),
	}
	if !reflect.DeepEqual(p.Routes, wantRoutes) {
		t.Errorf("routes = %v, want %v", p.Routes, wantRoutes)
	}
	wantPeers := []vxlanPeer{
		{VTEP: netip.MustParseAddr("10.244.0.0"), MAC: "0e:5e:ac:12:00:02", Underlay: netip.MustParseAddr("172.18.0.2")},
		{VTEP: netip.MustParseAddr("10.244.2.0"), MAC: "0e:5e:ac:12:00:04", Underlay: netip.MustParseAddr("172.18.0.4")},
	}
	if !reflect.DeepEqual(p.Peers, wantPeers) {
		t.Errorf("peers = %v, want %v", p.Peers, wantPeers)
	}
	// Pods fit inside the encapsulation.
	if !strings.Contains(string(p.Conflist), `"mtu": 8951`) {
		t.Errorf("conflist does not lower the MTU by the VXLAN overhead:\n%s", p.Conflist)
	}

	if _, err := computePlan("new", nodes, testNets, 1500, backendVXLAN); err == nil || !strings.Contains(err.Error(), "InternalIP") {
		t.Errorf("a node without an address: err = %v, want one naming its InternalIP", err)
	}
	if _, err := computePlan("w1", nodes, testNets, 1500, "geneve"); err == nil || !strings.Contains(err.Error(), `"geneve"`) {
		t.Errorf("unknown backend: err = %v", err)
	}
}

func TestPeerChanges(t *testing.T) {
	peer := func(vtep, mac, under string) vxlanPeer {
		p := vxlanPeer{MAC: mac}
		if vtep != "" {
			p.VTEP = netip.MustParseAddr(vtep)
		}
		if under != "" {
			p.Underlay = netip.MustParseAddr(under)
		}
		return p
	}
	have := []vxlanPeer{
		peer("10.244.1.0", "0e:5e:ac:12:00:03", "172.18.0.3"), // kept
		peer("10.244.2.0", "0e:5e:ac:12:00:04", "172.18.0.4"), // the node moved to .14
		peer("", "0e:5e:ac:12:00:09", "172.18.0.9"),           // half an entry, nobody's
	}
	want := []vxlanPeer{
		peer("10.244.1.0", "0e:5e:ac:12:00:03", "172.18.0.3"),
		peer("10.244.2.0", "0e:5e:ac:12:00:0e", "172.18.0.14"),
	}
	replace, remove := peerChanges(have, want)
	if w := want[1:]; !reflect.DeepEqual(replace, w) {
		t.Errorf("replace = %v, want %v", replace, w)
	}
	if w := have[1:]; !reflect.DeepEqual(remove, w) {
		t.Errorf("remove = %v, want %v", remove, w)
	}
}

func TestJoinPeers(t *testing.T) {
	type neigh = struct {
		Dst    string `json:"dst"`
		LLAddr string `json:"lladdr"`
	}
	type fdb = struct {
		MAC string `json:"mac"`
		Dst string `json:"dst"`
	}
	var n []neigh
	var f []fdb
	if err := json.Unmarshal([]byte(`[{"dst":"10.244.2.0","lladdr":"0e:5e:ac:12:00:04","state":["PERMANENT"]},{"dst":"10.244.5.0","state":["FAILED"]}]`), &n); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(`[{"mac":"0e:5e:ac:12:00:04","dst":"172.18.0.4","flags":["self"],"state":"permanent"},{"mac":"33:33:00:00:00:01","flags":["self"],"state":"permanent"},{"mac":"0e:5e:ac:12:00:07","dst":"172.18.0.7","flags":["self"]}]`), &f); err != nil {
		t.Fatal(err)
	}
	got := joinPeers(n, f)
	want := []vxlanPeer{
		{VTEP: netip.MustParseAddr("10.244.2.0"), MAC: "0e:5e:ac:12:00:04", Underlay: netip.MustParseAddr("172.18.0.4")},
		{VTEP: netip.MustParseAddr("10.244.5.0")},
		{MAC: "0e:5e:ac:12:00:07", Underlay: netip.MustParseAddr("172.18.0.7")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("joinPeers = %+v, want %+v", got, want)
	}
}

func TestSyncSwitchesBackends(t *testing.T) {
	h := &fakeHost{}
	nodes := []node{mustNode("cp", "172.18.0.2", "10.244.0.0/24"), mustNode("w1", "172.18.0.3", "10.244.1.0/24")}
	s := &syncer{self: "cp", backend: backendRoute, host: h, mtu: func(netip.Addr) int { return 1500 }}
	if err := s.sync(t.Context(), nodes, testNets); err != nil {
		t.Fatal(err)
	}

	s.backend = backendVXLAN
	for i := 0; i < 2; i++ {
		if err := s.sync(t.Context(), nodes, testNets); err != nil {
			t.Fatal(err)
		}
	}
	if h.vxlan.link == nil || h.vxlan.ensures != 1 {
		t.Fatalf("vxlan device = %+v after %d changes; want one, set up once", h.vxlan.link, h.vxlan.ensures)
	}
	wantRoute := route{Dst: netip.MustParsePrefix("10.244.1.0/24"), Via: netip.MustParseAddr("10.244.1.0"), Dev: vxlanDevice}
	if w := []route{wantRoute, unreachable("10.244.0.0/16")}; !reflect.DeepEqual(sortedRoutes(h.routes), w) {
		t.Errorf("routes = %v, want %v", h.routes, w)
	}
	if len(h.vxlan.peers) != 1 || h.vxlan.peers[0].Underlay != netip.MustParseAddr("172.18.0.3") {
		t.Errorf("peers = %v", h.vxlan.peers)
	}

	// The worker leaves: its route and its peer go.
	if err := s.sync(t.Context(), nodes[:1], testNets); err != nil {
		t.Fatal(err)
	}
	if len(h.routes) != 1 || len(h.vxlan.peers) != 0 {
		t.Errorf("after the worker left: routes %v, peers %v", h.routes, h.vxlan.peers)
	}

	// Back to plain routes: the device goes, the route comes back.
	s.backend = backendRoute
	if err := s.sync(t.Context(), nodes, testNets); err != nil {
		t.Fatal(err)
	}
	if h.vxlan.link != nil || !reflect.DeepEqual(sortedRoutes(h.routes), []route{r("10.244.1.0/24", "172.18.0.3"), unreachable("10.244.0.0/16")}) {
		t.Errorf("after switching back: device %+v, routes %v", h.vxlan.link, h.routes)
	}
}
