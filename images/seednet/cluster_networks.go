package main

import (
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// Where kubeadm keeps the configuration it set the cluster up with: the
// API server's --service-cluster-ip-range and the controller manager's
// --cluster-cidr come from the same document.
const (
	kubeadmConfigNamespace = "kube-system"
	kubeadmConfigName      = "kubeadm-config"
	kubeadmConfigKey       = "ClusterConfiguration"
)

// clusterNetworks are the cluster-wide address ranges (IPv4 only): the pod
// range every node's pod CIDR is cut from, and the range Service addresses
// are allocated from. No address in them belongs outside the cluster.
type clusterNetworks struct {
	Pods     []netip.Prefix
	Services []netip.Prefix
}

// errNoClusterNetworks means seednet does not know the cluster's ranges,
// and so cannot keep their addresses on the node.
type errNoClusterNetworks struct{ reason string }

func (e errNoClusterNetworks) Error() string {
	return "the cluster's pod and Service ranges are unknown: " + e.reason
}

// clusterNetworksFromKubeadm reads the ranges from kubeadm's ConfigMap.
func clusterNetworksFromKubeadm(cm *corev1.ConfigMap) (clusterNetworks, error) {
	where := kubeadmConfigNamespace + "/" + kubeadmConfigName
	if cm == nil {
		return clusterNetworks{}, errNoClusterNetworks{reason: "ConfigMap " + where + " not found"}
	}
	doc, ok := cm.Data[kubeadmConfigKey]
	if !ok {
		return clusterNetworks{}, errNoClusterNetworks{reason: fmt.Sprintf("ConfigMap %s has no %s", where, kubeadmConfigKey)}
	}
	var cfg struct {
		Networking struct {
			PodSubnet     string `json:"podSubnet"`
			ServiceSubnet string `json:"serviceSubnet"`
		} `json:"networking"`
	}
	if err := yaml.Unmarshal([]byte(doc), &cfg); err != nil {
		return clusterNetworks{}, errNoClusterNetworks{reason: fmt.Sprintf("reading %s in %s: %v", kubeadmConfigKey, where, err)}
	}
	var nets clusterNetworks
	for _, f := range []struct {
		name, value string
		into        *[]netip.Prefix
	}{
		{"networking.podSubnet", cfg.Networking.PodSubnet, &nets.Pods},
		{"networking.serviceSubnet", cfg.Networking.ServiceSubnet, &nets.Services},
	} {
		// Dual-stack clusters list one range per family, comma separated.
		for _, s := range strings.Split(f.value, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return clusterNetworks{}, errNoClusterNetworks{reason: fmt.Sprintf("%s %s in %s: %v", f.name, s, where, err)}
			}
			if p.Addr().Is4() {
				*f.into = append(*f.into, p.Masked())
			}
		}
		if len(*f.into) == 0 {
			return clusterNetworks{}, errNoClusterNetworks{reason: fmt.Sprintf("%s in %s names no IPv4 range (%q)", f.name, where, f.value)}
		}
	}
	return nets, nil
}
