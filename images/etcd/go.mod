// The wrapper module that hack/build-etcd.sh builds. etcd's own server and
// etcdctl modules carry replace lines that make `go install` refuse them, so
// a main of our own that requires them by version is the way to build them
// from the Go module proxy. The script copies this file into its cache and
// adds the requirements for the version it builds.
module github.com/seedhq/seed/images/etcd

go 1.24.0
