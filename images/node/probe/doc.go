// Command probe is the smoke test's pod: it resolves names the way any Go
// program in a pod does (search domains included), serves its own name over
// HTTP, and fetches from other pods, which together prove DNS and the pod
// network across nodes. hack/smoke-node.sh builds it into a FROM scratch
// image and loads it into the nodes it tests.
package main
