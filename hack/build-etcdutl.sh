#!/usr/bin/env bash
# Builds etcdutl, etcd's offline tool that restores a snapshot into a data
# directory, from the Go module proxy through the wrapper in images/etcdutl,
# and prints the directory holding it:
#
#   hack/build-etcdutl.sh [VERSION]    VERSION defaults to v3.6.5 (kubeadm 1.34's
#                                      etcd); kubeadm's 3.6.5-0 form is accepted
#
# Restoring with the etcd version that wrote the snapshot is the safe
# pairing, so this takes the same version argument as hack/build-etcd.sh.
# It is kept apart from the etcd image's multi-call binary so that adding
# it changes no node image. Cached under $(seed::cache_dir)/etcdutl/VERSION,
# keyed on the version, the wrapper, this script and the Go version.
# Progress goes to stderr; the bin dir is the last line on stdout.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
readonly SELF
readonly DEFAULT_VERSION=v3.6.5

main() {
  local version=${1:-$DEFAULT_VERSION}
  version=${version#v}
  version="v${version%-[0-9]}"
  [[ $version =~ ^v3\.[0-9]+\.[0-9]+$ ]] || seed::die "version must look like v3.6.5, got '${1:-}'"
  command -v go >/dev/null || seed::die "go is not on PATH"
  export GOTOOLCHAIN=local CGO_ENABLED=0

  local wrapper dir bin src key
  wrapper="$(seed::root)/images/etcdutl"
  dir="$(seed::cache_dir)/etcdutl/$version"
  bin="$dir/bin"
  src="$dir/src"
  mkdir -p "$dir"
  key=$({ echo "$version"; go env GOVERSION GOOS GOARCH; sha256sum <"$SELF";
    (cd "$wrapper" && find . -type f | LC_ALL=C sort | xargs sha256sum); } | sha256sum | cut -d' ' -f1)
  exec 9>"$dir/.lock"
  flock 9
  if [[ -x $bin/etcdutl && -f $bin/.cache-key && $(<"$bin/.cache-key") == "$key" ]]; then
    seed::log "etcdutl $version is up to date in $bin"
    echo "$bin"
    return
  fi
  rm -rf "$src"
  mkdir -p "$src" "$bin"
  cp -R "$wrapper/." "$src/"
  # etcdutl 3.5's test-only graph reaches cloud.google.com/go v0.46.3, from
  # before compute/metadata was a module of its own, and tidy then finds
  # that package in two modules; a floor on the old module settles it (tidy
  # drops the line again where nothing needs it).
  (cd "$src" && go mod edit "-require=go.etcd.io/etcd/etcdutl/v3@$version" -require=cloud.google.com/go@v0.121.6 &&
    go mod tidy) >&2 ||
    seed::die "resolving etcdutl $version failed (in $src; is it on the module proxy?)"
  local start=$SECONDS
  seed::log "Building etcdutl $version"
  (cd "$src" && go build -trimpath -ldflags "-s -w" -o "$bin/etcdutl.new" .) ||
    seed::die "building etcdutl $version failed (in $src)"
  mv -f "$bin/etcdutl.new" "$bin/etcdutl"
  "$bin/etcdutl" version >&2 || seed::die "built etcdutl does not run"
  echo "$key" >"$bin/.cache-key"
  seed::log "Built etcdutl $version in $((SECONDS - start))s ($(du -h "$bin/etcdutl" | cut -f1))"
  echo "$bin"
}

main "$@"
