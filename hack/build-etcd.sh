#!/usr/bin/env bash
# Builds etcd's server (and etcdctl, where the release publishes it) from the
# Go module proxy through the wrapper in images/etcd, and prints the
# directory holding the binaries.
#
#   hack/build-etcd.sh [VERSION]     VERSION defaults to v3.6.5; 3.6.5 and
#                                    kubeadm's 3.6.5-0 are accepted too
#
# v3.6.5 is what kubeadm 1.34 deploys (SupportedEtcdVersion in
# cmd/kubeadm/app/constants); kubeadm 1.33 deploys v3.5.24. The result is
# cached under $(seed::cache_dir)/etcd/VERSION, keyed on the version, the
# wrapper's sources, this script and the Go version. Progress goes to stderr;
# the bin dir is the last line on stdout.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The script's own path, absolute, because its contents are part of the
# cache key and the build changes directory.
SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
readonly SELF

readonly DEFAULT_VERSION=v3.6.5

# cache_key prints a digest of everything the binary depends on besides the
# module proxy's immutable content.
cache_key() {
  local version=$1 srcdir=$2
  {
    echo "$version"
    go env GOVERSION GOOS GOARCH
    # Contents only: the path differs with how the script was called.
    sha256sum <"$SELF"
    (cd "$srcdir" && find . -type f | LC_ALL=C sort | xargs sha256sum)
  } | sha256sum | cut -d' ' -f1
}

main() {
  local version=${1:-$DEFAULT_VERSION}
  # Accept kubeadm's image tag form (3.6.5-0): the suffix is the image's
  # revision, not etcd's.
  version=${version#v}
  version="v${version%-[0-9]}"
  [[ $version =~ ^v3\.[0-9]+\.[0-9]+$ ]] || seed::die "version must look like v3.6.5, got '${1:-}'"
  command -v go >/dev/null || seed::die "go is not on PATH"

  export GOTOOLCHAIN=local CGO_ENABLED=0

  local wrapper dir bin src key
  wrapper="$(seed::root)/images/etcd"
  dir="$(seed::cache_dir)/etcd/$version"
  bin="$dir/bin"
  src="$dir/src"
  mkdir -p "$dir"
  key=$(cache_key "$version" "$wrapper")

  exec 9>"$dir/.lock"
  flock 9
  if [[ -x $bin/etcd && -f $bin/.cache-key && $(<"$bin/.cache-key") == "$key" ]]; then
    seed::log "etcd $version is up to date in $bin"
    echo "$bin"
    return
  fi

  seed::log "Writing wrapper module in $src"
  rm -rf "$src"
  mkdir -p "$src"
  cp -R "$wrapper/." "$src/"
  local -a edits=("-require=go.etcd.io/etcd/server/v3@$version") tags=()
  # etcdctl is a nicety: some releases (3.5.24) never reached the proxy.
  if (cd "$dir" && GOFLAGS=-mod=mod go mod download "go.etcd.io/etcd/etcdctl/v3@$version") >/dev/null 2>&1; then
    edits+=("-require=go.etcd.io/etcd/etcdctl/v3@$version")
    tags+=(etcdctl)
  else
    seed::log "No go.etcd.io/etcd/etcdctl/v3@$version on the module proxy; building the server alone"
    # go mod tidy reads files of every build tag, so the file must go.
    rm -f "$src/etcdctl.go"
  fi
  (cd "$src" && go mod edit "${edits[@]}")
  seed::log "Resolving dependencies"
  (cd "$src" && go mod tidy) || seed::die "go mod tidy failed in $src"

  seed::log "Building etcd $version"
  local start=$SECONDS
  mkdir -p "$bin"
  (cd "$src" && go build -trimpath -ldflags "-s -w" -tags "$(IFS=,; echo "${tags[*]}")" -o "$bin/etcd.new" .) ||
    seed::die "building etcd $version failed (sources in $src)"
  mv -f "$bin/etcd.new" "$bin/etcd"
  rm -f "$bin/etcdctl"
  if ((${#tags[@]})); then
    ln -s etcd "$bin/etcdctl"
  fi
  "$bin/etcd" --version >&2 || seed::die "built etcd does not run"
  echo "$key" >"$bin/.cache-key"
  seed::log "Built etcd $version in $((SECONDS - start))s ($(du -h "$bin/etcd" | cut -f1)) in $bin"
  echo "$bin"
}

main "$@"
