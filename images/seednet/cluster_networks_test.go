package main

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// kubeadmConfig is the ClusterConfiguration kubeadm v1.34 uploads, trimmed,
// with the networking section given.
func kubeadmConfig(networking string) *corev1.ConfigMap {
	return &corev1.ConfigMap{Data: map[string]string{"ClusterConfiguration": `apiServer: {}
apiVersion: kubeadm.k8s.io/v1beta4
certificatesDir: /etc/kubernetes/pki
clusterName: kubernetes
controlPlaneEndpoint: 172.18.0.2:6443
etcd:
  local:
    dataDir: /var/lib/etcd
kind: ClusterConfiguration
kubernetesVersion: v1.34.2
` + networking + `proxy: {}
scheduler: {}
`}}
}

func TestClusterNetworksFromKubeadm(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		name string
		cm   *corev1.ConfigMap
		want clusterNetworks
		// wantErr is part of the message; every failure is an
		// errNoClusterNetworks.
		wantErr string
	}{
		{
			name: "Seed's defaults",
			cm:   kubeadmConfig("networking:\n  dnsDomain: cluster.local\n  podSubnet: 10.244.0.0/16\n  serviceSubnet: 10.96.0.0/12\n"),
			want: clusterNetworks{Pods: []netip.Prefix{p("10.244.0.0/16")}, Services: []netip.Prefix{p("10.96.0.0/12")}},
		},
		{
			name: "dual-stack keeps the IPv4 ranges, masked",
			cm:   kubeadmConfig("networking:\n  podSubnet: 10.244.0.1/16, fd00:10:244::/56\n  serviceSubnet: fd00:10:96::/112,10.96.0.0/12\n"),
			want: clusterNetworks{Pods: []netip.Prefix{p("10.244.0.0/16")}, Services: []netip.Prefix{p("10.96.0.0/12")}},
		},
		{name: "no ConfigMap", cm: nil, wantErr: "kube-system/kubeadm-config not found"},
		{name: "no ClusterConfiguration", cm: &corev1.ConfigMap{Data: map[string]string{}}, wantErr: "has no ClusterConfiguration"},
		{name: "not YAML", cm: &corev1.ConfigMap{Data: map[string]string{"ClusterConfiguration": "networking: ["}}, wantErr: "reading ClusterConfiguration"},
		{
			name:    "no pod range",
			cm:      kubeadmConfig("networking:\n  serviceSubnet: 10.96.0.0/12\n"),
			wantErr: `networking.podSubnet in kube-system/kubeadm-config names no IPv4 range ("")`,
		},
		{
			name:    "IPv6 Services only",
			cm:      kubeadmConfig("networking:\n  podSubnet: 10.244.0.0/16\n  serviceSubnet: fd00:10:96::/112\n"),
			wantErr: "networking.serviceSubnet in kube-system/kubeadm-config names no IPv4 range",
		},
		{
			name:    "a range that does not parse",
			cm:      kubeadmConfig("networking:\n  podSubnet: 10.244.0.0/33\n  serviceSubnet: 10.96.0.0/12\n"),
			wantErr: "networking.podSubnet 10.244.0.0/33",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := clusterNetworksFromKubeadm(tt.cm)
			if tt.wantErr != "" {
				var no errNoClusterNetworks
				if !errors.As(err, &no) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want an errNoClusterNetworks containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("networks = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestNoPodNetworkBeforeTheClusterRangesAreKnown(t *testing.T) {
	nodes := []node{mustNode("cp", "172.18.0.2", "10.244.0.0/24"), mustNode("w1", "172.18.0.3", "10.244.1.0/24")}
	for _, nets := range []clusterNetworks{{}, {Pods: testNets.Pods}, {Services: testNets.Services}} {
		var no errNoClusterNetworks
		if _, err := computePlan("cp", nodes, nets, 1500, backendRoute); !errors.As(err, &no) {
			t.Errorf("plan with ranges %+v: err = %v, want errNoClusterNetworks", nets, err)
		}
	}
	// Pods come up only once the CNI config is written: a node whose
	// cluster addresses could leave it writes none.
	h := &fakeHost{}
	s := &syncer{self: "cp", backend: backendRoute, host: h, mtu: func(netip.Addr) int { return 1500 }}
	if err := s.sync(t.Context(), nodes, clusterNetworks{}); err == nil {
		t.Fatal("sync without the cluster's ranges succeeded")
	}
	if h.writes != 0 || len(h.routes) != 0 || h.payload != "" {
		t.Errorf("sync without the cluster's ranges changed the host: %d config writes, routes %v, iptables %q", h.writes, h.routes, h.payload)
	}
}
