//go:build !etcdctl

package main

// addEtcdctl adds nothing: some etcd releases (3.5.24, for one) have no
// etcdctl module on the Go module proxy, and the server does not need it.
func addEtcdctl(map[string]func([]string) int) {}
