#!/usr/bin/env bash
# Builds Kubernetes from the Go module proxy as one multi-call binary (see
# images/kube) and prints the directory holding it and its component links.
#
#   hack/build-kube.sh [VERSION]     VERSION defaults to v1.34.2
#
# The result is cached under $(seed::cache_dir)/kube/VERSION, keyed on the
# version, the wrapper's sources, this script and the Go version, so a run
# with nothing changed returns at once. Progress goes to stderr; the bin dir
# is the last line on stdout.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The script's own path, absolute, because its contents are part of the
# cache key and the build changes directory.
SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
readonly SELF

readonly DEFAULT_VERSION=v1.34.2
readonly COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet kubeadm kubectl)

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

# staging_replaces prints one `go mod edit` flag per staging module that
# k8s.io/kubernetes's go.mod points at its own tree, pinned to the published
# v0 release matching the Kubernetes version. Read from the go.mod rather
# than listed here, because the set changes between releases.
staging_replaces() {
  local gomod=$1 staging_version=$2 path version
  go mod edit -json "$gomod" |
    jq -r '.Replace[]? | select(.New.Path | startswith("./staging/")) | .Old.Path' |
    while read -r path; do
      version=$(staging_version "$path" "$staging_version")
      printf -- '-replace=%s=%s@%s\n' "$path" "$path" "$version"
    done
}

# staging_version prints the version of a staging module to build with:
# the exact one when the module proxy serves it, else the nearest patch
# release of the same minor that it does serve, later ones first because a
# later patch keeps what earlier code calls. Some proxies withhold a few
# staging releases (this machine's has no k8s.io/kube-proxy v0.33.6); a
# substitute is logged loudly and recorded next to the binary.
staging_version() {
  local path=$1 want=$2 patch candidate
  if module_available "$path@$want"; then
    echo "$want"
    return
  fi
  patch=${want##*.}
  for candidate in $(go list -m -versions "$path" 2>/dev/null | tr ' ' '\n' |
    grep -E "^${want%.*}\.[0-9]+\$" |
    awk -F. -v p="$patch" '{ d = $3 - p; print (d > 0 ? d : 1000 - d), $0 }' |
    sort -n | cut -d' ' -f2); do
    if module_available "$path@$candidate"; then
      seed::log "WARNING: $path@$want is not on the module proxy; substituting $candidate"
      echo "$path $want => $candidate" >>"$SUBSTITUTIONS"
      echo "$candidate"
      return
    fi
  done
  # Nothing close: keep the exact version; go mod tidy fails only if the
  # build needs the module.
  seed::log "WARNING: $path@$want is not on the module proxy and has no substitute"
  echo "$want"
}

module_available() {
  GOFLAGS=-mod=mod go mod download "$1" >/dev/null 2>&1
}

main() {
  local version=${1:-$DEFAULT_VERSION}
  [[ $version =~ ^v1\.([0-9]+)\.([0-9]+)(-[0-9A-Za-z.-]+)?$ ]] ||
    seed::die "version must look like v1.34.2, got '$version'"
  local minor=${BASH_REMATCH[1]}
  command -v go >/dev/null || seed::die "go is not on PATH"
  seed::need jq

  # The Go toolchain must not switch itself to the one a module asks for.
  export GOTOOLCHAIN=local CGO_ENABLED=0

  local wrapper dir bin src key
  wrapper="$(seed::root)/images/kube"
  dir="$(seed::cache_dir)/kube/$version"
  bin="$dir/bin"
  src="$dir/src"
  mkdir -p "$dir"
  # Outside any module, so module downloads touch no go.mod or go.sum.
  cd "$dir"
  key=$(cache_key "$version" "$wrapper")

  # One build per version at a time; a second caller waits, then finds the
  # first one's result.
  exec 9>"$dir/.lock"
  flock 9
  if [[ -x $bin/kube && -f $bin/.cache-key && $(<"$bin/.cache-key") == "$key" ]]; then
    seed::log "Kubernetes $version is up to date in $bin"
    echo "$bin"
    return
  fi

  seed::log "Downloading k8s.io/kubernetes@$version"
  local info gomod
  info=$(GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$version") ||
    seed::die "downloading k8s.io/kubernetes@$version: $info"
  gomod=$(jq -r .GoMod <<<"$info")

  seed::log "Writing wrapper module in $src"
  rm -rf "$src"
  mkdir -p "$src"
  cp -R "$wrapper/." "$src/"
  SUBSTITUTIONS="$dir/staging-substitutions.txt"
  : >"$SUBSTITUTIONS"
  local godirective
  godirective=$(go mod edit -json "$gomod" | jq -r .Go)
  local -a edits=("-go=$godirective" "-require=k8s.io/kubernetes@$version")
  # Keep upstream's GODEBUG defaults, so behaviour matches its own builds.
  mapfile -t -O ${#edits[@]} edits < <(go mod edit -json "$gomod" | jq -r '.Godebug[]? | "-godebug=\(.Key)=\(.Value)"')
  mapfile -t -O ${#edits[@]} edits < <(staging_replaces "$gomod" "v0.${version#v1.}")
  (cd "$src" && go mod edit "${edits[@]}")
  if [[ -s $SUBSTITUTIONS ]]; then
    seed::log "WARNING: building $version with substitute staging modules (listed in $SUBSTITUTIONS)"
  fi
  seed::log "Resolving dependencies ($(grep -c '=>' "$src/go.mod") staging replaces)"
  (cd "$src" && go mod tidy) || seed::die "go mod tidy failed in $src"

  # The same stamps upstream's hack/lib/version.sh sets, so --version and
  # the apiserver's compatibility version report the real release. The
  # module's publish time stands in for the build date to keep builds
  # reproducible; the commit is unknown to the module proxy, so it is left
  # empty rather than showing upstream's unexpanded placeholder.
  local build_date ldflags="-s -w" pkg
  build_date=$(jq -r .Time "$(dirname "$gomod")/$version.info")
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date -X $pkg.gitCommit="
  done

  seed::log "Building kube $version (several minutes when cold)"
  local start=$SECONDS
  mkdir -p "$bin"
  (cd "$src" && go build -trimpath -ldflags "$ldflags" -o "$bin/kube.new" .) ||
    seed::die "building kube $version failed (sources in $src)"
  mv -f "$bin/kube.new" "$bin/kube"
  local c
  for c in "${COMPONENTS[@]}"; do
    ln -sfn kube "$bin/$c"
  done
  rm -f "$bin/staging-substitutions.txt"
  if [[ -s $SUBSTITUTIONS ]]; then
    cp "$SUBSTITUTIONS" "$bin/staging-substitutions.txt"
  fi
  "$bin/kubelet" --version >&2 || seed::die "built kubelet does not run"
  echo "$key" >"$bin/.cache-key"
  seed::log "Built kube $version in $((SECONDS - start))s ($(du -h "$bin/kube" | cut -f1)) in $bin"
  echo "$bin"
}

main "$@"
