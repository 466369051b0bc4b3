// Command etcd is etcd's server, and etcdctl where the etcd release has one
// on the Go module proxy, in one binary. It picks the program from the name
// it was called by (a symlink), or from its first argument when called by
// any other name; called as etcd it is exactly upstream's etcd.
//
// hack/build-etcd.sh builds it; building etcdctl in needs the etcdctl tag.
package main
