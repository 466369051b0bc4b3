// Package kwok pins sigs.k8s.io/kwok, the controller that plays the kubelet
// for the simulated provider's Nodes in scale tests. It is a module of its
// own because kwok needs k8s.io/* v0.36, which the root module must not
// follow; hack/build-kwok.sh builds it into Seed's cache.
package kwok
