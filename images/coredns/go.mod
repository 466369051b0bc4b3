// The wrapper module hack/build-images.sh builds CoreDNS from. It is a module
// of its own so that Seed's root module never depends on CoreDNS. The script
// copies it into its cache and adds the github.com/coredns/coredns
// requirement for the version kubeadm deploys.
module github.com/seedhq/seed/images/coredns

go 1.24.0
