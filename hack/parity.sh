#!/usr/bin/env bash
# Runs the parity test of pkg/autoscale against kube-scheduler's own filter
# plugins (pkg/autoscale/parity, a module of its own so that the root module
# never depends on k8s.io/kubernetes).
#
#   hack/parity.sh             runs the test
#   hack/parity.sh --update    rewrites the module's k8s.io/kubernetes
#                              requirement and staging replaces for
#                              KUBE_VERSION (default v1.34.2), then tidies
#
# k8s.io/kubernetes points its staging modules (k8s.io/api, client-go, ...)
# at its own tree, which a module that imports it cannot see; each needs a
# replace to the published v0 release of the same version. The set differs
# between releases, so --update reads it from k8s.io/kubernetes's go.mod,
# as hack/build-kube.sh does, and the result is committed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

readonly KUBE_VERSION=${KUBE_VERSION:-v1.34.2}
readonly MODULE_DIR="$(seed::root)/pkg/autoscale/parity"

# The toolchain stays the local one. cgo stays as the root module's tests
# have it: the packages both build share the Go build cache (the
# Kubernetes build, -trimpath and its own module versions, shares nothing),
# which makes a cold run about 35 s instead of 4.5 min.
export GOTOOLCHAIN=local

update() {
  seed::need jq
  local info gomod staging path
  info=$(cd / && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$KUBE_VERSION") ||
    seed::die "downloading k8s.io/kubernetes@$KUBE_VERSION: $info"
  gomod=$(jq -r .GoMod <<<"$info")
  staging="v0.${KUBE_VERSION#v1.}"
  local -a edits=("-require=k8s.io/kubernetes@$KUBE_VERSION")
  while read -r path; do
    (cd / && GOFLAGS=-mod=mod go mod download "$path@$staging" >/dev/null 2>&1) ||
      seed::die "$path@$staging is not on the module proxy"
    edits+=("-replace=$path=$path@$staging")
  done < <(go mod edit -json "$gomod" | jq -r '.Replace[]? | select(.New.Path | startswith("./staging/")) | .Old.Path')
  seed::log "Pinning k8s.io/kubernetes@$KUBE_VERSION with $((${#edits[@]} - 1)) staging replaces"
  (cd "$MODULE_DIR" && go mod edit "${edits[@]}" && go mod tidy)
}

case "${1:-}" in
  --update) update ;;
  "")
    seed::log "Parity of pkg/autoscale with kube-scheduler's filters (pkg/autoscale/parity)"
    cd "$MODULE_DIR"
    go test -count=1 ./...
    ;;
  *) seed::die "unknown argument $1: use --update or nothing" ;;
esac
