#!/usr/bin/env bash
# Builds Velero and its AWS (S3) object-store plugin from the Go module proxy
# through the wrapper in images/velero, then their images, FROM scratch:
#
#   hack/build-velero.sh              the binaries and the images
#   hack/build-velero.sh --bin-dir    the binaries only; prints their directory
#
#   velero/velero:v1.18.3                    /velero (server and CLI), a CA bundle
#   velero/velero-plugin-for-aws:v1.14.3     the plugin and cp-plugin, which copies it
#                                            into Velero's plugin dir (an init container)
#
# Velero 1.18 is tested on Kubernetes 1.33 to 1.35, and plugin 1.14 is the
# one that pairs with it (research/backups.md §1). The binaries are cached
# under $(seed::cache_dir)/velero/VELERO-PLUGIN, keyed on both versions, the
# wrapper's sources, this script and the Go version; the images carry a hash
# of their inputs, so a warm run builds nothing. Progress and timings go to
# stderr; stdout is the two image references, Velero's first (or, with
# --bin-dir, the binaries' directory).
set -euo pipefail
shopt -s inherit_errexit
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
readonly SELF
readonly VELERO_VERSION=v1.18.3
readonly PLUGIN_VERSION=v1.14.3
readonly VELERO_IMAGE=velero/velero:$VELERO_VERSION
readonly PLUGIN_IMAGE=velero/velero-plugin-for-aws:$PLUGIN_VERSION

cache_key() {
  local srcdir=$1
  {
    echo "$VELERO_VERSION $PLUGIN_VERSION"
    go env GOVERSION GOOS GOARCH
    sha256sum <"$SELF"
    (cd "$srcdir" && find . -type f | LC_ALL=C sort | xargs sha256sum)
  } | sha256sum | cut -d' ' -f1
}

# binaries builds the three programs unless the cache holds them for the
# same key; prints the bin dir.
binaries() {
  local wrapper dir bin src key
  wrapper="$(seed::root)/images/velero"
  dir="$(seed::cache_dir)/velero/$VELERO_VERSION-$PLUGIN_VERSION"
  bin="$dir/bin"
  src="$dir/src"
  mkdir -p "$dir"
  key=$(cache_key "$wrapper")
  exec 9>"$dir/.lock"
  flock 9
  if [[ -x $bin/velero && -x $bin/velero-plugin-for-aws && -x $bin/cp-plugin &&
    -f $bin/.cache-key && $(<"$bin/.cache-key") == "$key" ]]; then
    seed::log "Velero $VELERO_VERSION and plugin $PLUGIN_VERSION are up to date in $bin"
    echo "$bin"
    return
  fi
  seed::log "Writing wrapper module in $src"
  rm -rf "$src" "$bin"
  mkdir -p "$src" "$bin"
  cp -R "$wrapper/." "$src/"
  (cd "$src" && go mod edit "-require=github.com/vmware-tanzu/velero@$VELERO_VERSION" \
    "-require=github.com/vmware-tanzu/velero-plugin-for-aws@$PLUGIN_VERSION")
  seed::log "Resolving dependencies"
  (cd "$src" && go mod tidy) >&2 || seed::die "go mod tidy failed in $src"

  local start=$SECONDS
  seed::log "Building velero $VELERO_VERSION (about five minutes when cold)"
  (cd "$src" && go build -trimpath \
    -ldflags "-s -w -X github.com/vmware-tanzu/velero/pkg/buildinfo.Version=$VELERO_VERSION" \
    -o "$bin/velero" github.com/vmware-tanzu/velero/cmd/velero) || seed::die "building velero failed (in $src)"
  seed::log "Built velero in $((SECONDS - start))s ($(du -h "$bin/velero" | cut -f1))"
  start=$SECONDS
  seed::log "Building velero-plugin-for-aws $PLUGIN_VERSION"
  (cd "$src" && go build -trimpath -ldflags "-s -w" -o "$bin/velero-plugin-for-aws" \
    github.com/vmware-tanzu/velero-plugin-for-aws/velero-plugin-for-aws &&
    go build -trimpath -ldflags "-s -w" -o "$bin/cp-plugin" github.com/vmware-tanzu/velero-plugin-for-aws/hack/cp-plugin) ||
    seed::die "building velero-plugin-for-aws failed (in $src)"
  seed::log "Built velero-plugin-for-aws in $((SECONDS - start))s ($(du -h "$bin/velero-plugin-for-aws" | cut -f1))"
  "$bin/velero" version --client-only >&2 || seed::die "built velero does not run"
  echo "$key" >"$bin/.cache-key"
  echo "$bin"
}

main() {
  command -v go >/dev/null || seed::die "go is not on PATH"
  export GOTOOLCHAIN=local CGO_ENABLED=0
  local root start=$SECONDS bin ctx
  root=$(seed::root)
  if [[ ${1:-} == --bin-dir ]]; then
    binaries
    return
  fi
  [[ $# == 0 ]] || seed::die "usage: hack/build-velero.sh [--bin-dir]"
  "$root/hack/ensure-docker.sh"
  bin=$(binaries)

  ctx="$(seed::cache_dir)/images/ctx/velero"
  rm -rf "$ctx"
  mkdir -p "$ctx/etc/ssl/certs" "$ctx/tmp"
  cp -a "$bin/velero" "$ctx/velero"
  # For an S3 endpoint over https; the local store speaks http.
  cp /etc/ssl/certs/ca-certificates.crt "$ctx/etc/ssl/certs/" 2>/dev/null ||
    seed::die "no CA bundle at /etc/ssl/certs/ca-certificates.crt: apt-get install -y ca-certificates"
  # The server runs its own binary again as its built-in plugin process,
  # and writes credentials under $TMPDIR: the Deployment mounts /tmp.
  seed::build_image "$VELERO_IMAGE" "$ctx" <<'EOF2'
FROM scratch
COPY velero /velero
COPY etc/ /etc/
USER 65532:65532
ENTRYPOINT ["/velero"]
EOF2
  rm -rf "$ctx"

  ctx="$(seed::cache_dir)/images/ctx/velero-plugin-for-aws"
  rm -rf "$ctx"
  mkdir -p "$ctx/plugins" "$ctx/bin"
  cp -a "$bin/velero-plugin-for-aws" "$ctx/plugins/"
  cp -a "$bin/cp-plugin" "$ctx/bin/"
  # Upstream's image: an init container that copies the plugin into the
  # emptyDir Velero's server loads plugins from.
  seed::build_image "$PLUGIN_IMAGE" "$ctx" <<'EOF2'
FROM scratch
COPY plugins/ /plugins/
COPY bin/ /bin/
USER 65532:65532
ENTRYPOINT ["/bin/cp-plugin", "/plugins/velero-plugin-for-aws", "/target/velero-plugin-for-aws"]
EOF2
  rm -rf "$ctx"
  seed::log "Velero images ready in $((SECONDS - start))s"
  echo "$VELERO_IMAGE"
  echo "$PLUGIN_IMAGE"
}

main "$@"
