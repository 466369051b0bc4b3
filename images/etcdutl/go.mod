// The wrapper module that hack/build-etcdutl.sh builds etcdutl through:
// etcdutl's own module has replace lines (../api, ../server, ...), so
// `go install` refuses it, and its main package cannot be imported. The
// script copies this directory into its cache and adds the requirement for
// the version it builds.
module github.com/seedhq/seed/images/etcdutl

go 1.24.0
