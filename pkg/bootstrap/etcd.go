package bootstrap

// etcdImageTags pins, per Kubernetes minor, the etcd image Seed runs where
// it is not kubeadm's default (SupportedEtcdVersion in kubeadm's constants).
//
// Kubernetes 1.33's kubeadm deploys etcd 3.5.24, and upgrading to 1.34 adds an
// etcd 3.6 member to it. etcd asks to be on 3.5.26 or later before a 3.6
// member joins: earlier 3.5 releases can leave a learner's promotion
// unrecorded, or a removed member behind (etcd-io/etcd#19557, #20793, the
// "zombie members" fixes). 3.5.35 is the newest 3.5 release the Go module
// proxy serves. hack/build-images.sh reads this table, so the node image
// holds the etcd image the configuration names.
var etcdImageTags = map[int]string{
	33: "3.5.35-0",
}

// EtcdImageTag is the etcd image tag a control plane of version runs, or ""
// for kubeadm's default.
func EtcdImageTag(version string) string {
	minor, err := minorOf(version)
	if err != nil {
		return ""
	}
	return etcdImageTags[minor]
}

// coreDNSVersions is the CoreDNS kubeadm deploys for each Kubernetes minor
// (CoreDNSVersion in kubeadm's constants), for the upgrade that moves
// CoreDNS once every machine runs the new version.
var coreDNSVersions = map[int]string{
	33: "v1.12.0",
	34: "v1.12.1",
}

// CoreDNSVersion is the CoreDNS image tag kubeadm deploys with version, or
// "" when Seed does not know it.
func CoreDNSVersion(version string) string {
	minor, err := minorOf(version)
	if err != nil {
		return ""
	}
	return coreDNSVersions[minor]
}
