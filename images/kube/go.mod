// The wrapper module that hack/build-kube.sh builds. It is a module of its
// own so that Seed's root module never depends on k8s.io/kubernetes. The
// script copies this file into its cache, then adds the k8s.io/kubernetes
// requirement and one replace line per staging module for the version it
// builds, because those lines differ between Kubernetes releases.
module github.com/seedhq/seed/images/kube

go 1.24.0
