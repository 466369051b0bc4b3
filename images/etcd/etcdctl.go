//go:build etcdctl

package main

import "go.etcd.io/etcd/etcdctl/v3/ctlv3"

// addEtcdctl adds etcdctl, for etcd releases that publish it as a module.
func addEtcdctl(programs map[string]func([]string) int) {
	programs["etcdctl"] = func([]string) int {
		// MustStart exits non-zero itself when the command fails.
		ctlv3.MustStart()
		return 0
	}
}
