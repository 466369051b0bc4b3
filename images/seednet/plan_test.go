package main

import (
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
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

func TestComputePlanRoutes(t *testing.T) {
	tests := []struct {
		name    string
		self    string
		nodes   []node
		want    []route
		wantErr error
	}{
		{
			name:  "single node routes nothing",
			self:  "cp",
			nodes: []node{mustNode("cp", "172.18.0.2", "10.244.0.0/24")},
		},
		{
			name: "every other node via its InternalIP, sorted",
			self: "w1",
			nodes: []node{
				mustNode("w2", "172.18.0.4", "10.244.2.0/24"),
				mustNode("cp", "172.18.0.2", "10.244.0.0/24"),
				mustNode("w1", "172.18.0.3", "10.244.1.0/24"),
			},
			want: []route{r("10.244.0.0/24", "172.18.0.2"), r("10.244.2.0/24", "172.18.0.4")},
		},
		{
			name: "nodes without address or CIDR are skipped",
			self: "cp",
			nodes: []node{
				mustNode("cp", "172.18.0.2", "10.244.0.0/24"),
				mustNode("new", "", "10.244.1.0/24"),
				mustNode("pending", "172.18.0.5"),
			},
		},
		{
			name: "a CIDR overlapping ours is never routed away",
			self: "cp",
			nodes: []node{
				mustNode("cp", "172.18.0.2", "10.244.0.0/24"),
				mustNode("bad", "172.18.0.9", "10.244.0.0/16"),
			},
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
			p, err := computePlan(tt.self, tt.nodes, 1500)
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
	p, err := computePlan("cp", []node{mustNode("cp", "172.18.0.2", "10.244.3.0/24")}, 1450)
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

func TestMasquerade(t *testing.T) {
	got := renderMasquerade([]netip.Prefix{
		netip.MustParsePrefix("10.244.1.0/24"),
		netip.MustParsePrefix("10.244.0.0/24"),
		netip.MustParsePrefix("10.244.1.0/24"),
	})
	for _, want := range []string{
		"*nat\n:SEEDNET-POSTROUTING - [0:0]\n",
		"-A SEEDNET-POSTROUTING -d 10.244.0.0/24 -m comment --comment \"seednet: pod to pod\" -j RETURN\n-A SEEDNET-POSTROUTING -d 10.244.1.0/24",
		"-j MASQUERADE --random-fully\nCOMMIT\n",
		"-A SEEDNET-FORWARD -s 10.244.0.0/24 -j ACCEPT\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("payload lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "-d 10.244.1.0/24 -m comment"); n != 1 {
		t.Errorf("duplicate CIDR rendered %d times", n)
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
		"blackhole 10.1.0.0/16 proto 77 \n"
	want := []route{r("10.244.1.0/24", "172.18.0.3"), r("10.244.2.0/24", "172.18.0.4")}
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
	s := &syncer{self: "cp", host: h, mtu: func(netip.Addr) int { return 1500 }}
	nodes := []node{mustNode("cp", "172.18.0.2", "10.244.0.0/24"), mustNode("w1", "172.18.0.3", "10.244.1.0/24")}
	for i := 0; i < 2; i++ {
		if err := s.sync(t.Context(), nodes); err != nil {
			t.Fatal(err)
		}
	}
	if h.replaced != 1 || h.writes != 1 {
		t.Errorf("after two passes: %d route replaces, %d config writes; want 1 and 1", h.replaced, h.writes)
	}
	// The node leaves: its route goes.
	if err := s.sync(t.Context(), nodes[:1]); err != nil {
		t.Fatal(err)
	}
	if len(h.routes) != 0 {
		t.Errorf("routes left after the node went: %v", h.routes)
	}
}
