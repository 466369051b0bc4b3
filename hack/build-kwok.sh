#!/usr/bin/env bash
# Builds kwok, the controller that plays the kubelet for the simulated
# provider's Nodes, from the module pinned in hack/tools/kwok, and prints the
# directory holding the binary.
#
#   hack/build-kwok.sh
#
# kwok v0.8.0 needs k8s.io/* v0.36; it is built in its own module so that
# the root module stays on v0.34. The result is cached under
# $(seed::cache_dir)/kwok/VERSION, keyed on the version, the tool module's
# go.mod and go.sum, this script and the Go version. Progress goes to
# stderr; the bin dir is the last line on stdout.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The script's own path, absolute, because its contents are part of the
# cache key and the build changes directory.
SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
readonly SELF

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
  command -v go >/dev/null || seed::die "go is not on PATH"
  export GOTOOLCHAIN=local CGO_ENABLED=0

  local module version dir bin key
  module="$(seed::root)/hack/tools/kwok"
  # The version is the one the tool module pins: one place to change it.
  version=$(cd "$module" && go list -m -f '{{.Version}}' sigs.k8s.io/kwok) ||
    seed::die "cannot read sigs.k8s.io/kwok's version from $module/go.mod"
  [[ $version =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || seed::die "unexpected kwok version '$version' in $module/go.mod"
  dir="$(seed::cache_dir)/kwok/$version"
  bin="$dir/bin"
  mkdir -p "$dir"
  key=$(cache_key "$version" "$module")

  exec 9>"$dir/.lock"
  flock 9
  if [[ -x $bin/kwok && -f $bin/.cache-key && $(<"$bin/.cache-key") == "$key" ]]; then
    seed::log "kwok $version is up to date in $bin"
    echo "$bin"
    return
  fi

  seed::log "Building kwok $version"
  local start=$SECONDS
  mkdir -p "$bin"
  (cd "$module" && go build -trimpath -ldflags "-s -w" -o "$bin/kwok.new" sigs.k8s.io/kwok/cmd/kwok) ||
    seed::die "building kwok $version failed (module in $module)"
  mv -f "$bin/kwok.new" "$bin/kwok"
  "$bin/kwok" --version >&2 || seed::die "built kwok does not run"
  echo "$key" >"$bin/.cache-key"
  seed::log "Built kwok $version in $((SECONDS - start))s ($(du -h "$bin/kwok" | cut -f1)) in $bin"
  echo "$bin"
}

main "$@"
