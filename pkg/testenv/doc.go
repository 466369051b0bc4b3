// Package testenv runs a real etcd and kube-apiserver on loopback for
// integration tests, with an admin identity and impersonation so that tests
// can prove what a ServiceAccount's RBAC does and does not allow.
//
// The binaries come from hack/build-kube.sh and hack/build-etcd.sh; without
// them tests skip, or fail when CI=true. Start gives a test its own
// apiserver; Shared lets every test of a package reuse one.
package testenv
