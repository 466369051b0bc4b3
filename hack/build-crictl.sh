#!/usr/bin/env bash
# Builds cri-tools' crictl from the Go module proxy and prints the directory
# holding it, for the node image (hack/build-node-image.sh).
#
#   hack/build-crictl.sh [VERSION]     VERSION defaults to v1.34.0
#
# crictl speaks CRI v1, which every containerd and kubelet Seed runs serve,
# so one version serves every node image; v1.34.0 is the proxy's release for
# Kubernetes 1.34. The module has no replace directives, so a throwaway
# module that requires it (as a tool) builds it exactly as released. The
# result is cached under $(seed::cache_dir)/crictl/VERSION, keyed on the
# version, this script and the Go version. Progress goes to stderr; the bin
# dir is the last line on stdout.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
readonly SELF
readonly DEFAULT_VERSION=v1.34.0
readonly MODULE=sigs.k8s.io/cri-tools

main() {
  local version=${1:-$DEFAULT_VERSION}
  [[ $version =~ ^v1\.[0-9]+\.[0-9]+$ ]] || seed::die "version must look like v1.34.0, got '$version'"
  command -v go >/dev/null || seed::die "go is not on PATH"
  export GOTOOLCHAIN=local CGO_ENABLED=0

  local dir bin src key
  dir="$(seed::cache_dir)/crictl/$version"
  bin="$dir/bin"
  src="$dir/src"
  mkdir -p "$dir"
  key=$({ echo "$version"; go env GOVERSION GOOS GOARCH; sha256sum <"$SELF"; } | sha256sum | cut -d' ' -f1)

  exec 9>"$dir/.lock"
  flock 9
  if [[ -x $bin/crictl && -f $bin/.cache-key && $(<"$bin/.cache-key") == "$key" ]]; then
    seed::log "crictl $version is up to date in $bin"
    echo "$bin"
    return
  fi

  seed::log "Building crictl $version from $MODULE"
  local start=$SECONDS
  rm -rf "$src"
  mkdir -p "$src" "$bin"
  (cd "$src" && go mod init seed.local/crictl >/dev/null 2>&1 && go get -tool "$MODULE/cmd/crictl@$version" >/dev/null 2>&1) ||
    seed::die "resolving $MODULE@$version failed (is it on the module proxy? go list -m -versions $MODULE)"
  (cd "$src" && go build -trimpath -ldflags "-s -w -X $MODULE/pkg/version.Version=$version" -o "$bin/crictl.new" "$MODULE/cmd/crictl") ||
    seed::die "building crictl $version failed (sources in $src)"
  mv -f "$bin/crictl.new" "$bin/crictl"
  "$bin/crictl" --version >&2 || seed::die "built crictl does not run"
  echo "$key" >"$bin/.cache-key"
  seed::log "Built crictl $version in $((SECONDS - start))s ($(du -h "$bin/crictl" | cut -f1)) in $bin"
  echo "$bin"
}

main "$@"
