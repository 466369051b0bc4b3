#!/usr/bin/env bash
# Builds versitygw, an S3-compatible server over a plain directory, from the
# Go module proxy, and its image, FROM scratch:
#
#   hack/build-versitygw.sh            versity/versitygw:v1.8.0
#
# It is the Docker provider's backup store: one static binary whose buckets
# are directories and whose objects are files, so backups can be read
# without it. v1.8.0 has no replace lines, so `go install` builds it. The
# binary is cached under $(seed::cache_dir)/versitygw/VERSION, keyed on the
# version, this script and the Go version. Progress goes to stderr; the
# last stdout line is the image reference.
set -euo pipefail
shopt -s inherit_errexit
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
readonly SELF
readonly VERSION=v1.8.0
readonly IMAGE=versity/versitygw:$VERSION

binary() {
  local dir key
  dir="$(seed::cache_dir)/versitygw/$VERSION"
  mkdir -p "$dir/bin"
  key=$({ echo "$VERSION"; go env GOVERSION GOOS GOARCH; sha256sum <"$SELF"; } | sha256sum | cut -d' ' -f1)
  exec 9>"$dir/.lock"
  flock 9
  if [[ -x $dir/bin/versitygw && -f $dir/bin/.cache-key && $(<"$dir/bin/.cache-key") == "$key" ]]; then
    seed::log "versitygw $VERSION is up to date in $dir/bin"
    echo "$dir/bin/versitygw"
    return
  fi
  local start=$SECONDS
  seed::log "Building versitygw $VERSION (a minute or two when cold)"
  rm -f "$dir/bin/versitygw" "$dir/bin/.cache-key"
  # Without cgo, versitygw stubs the one backend that needs it (cuobj).
  (cd "$dir" && GOBIN="$dir/bin" go install -trimpath -ldflags "-s -w" \
    "github.com/versity/versitygw/cmd/versitygw@$VERSION") || seed::die "building versitygw $VERSION failed"
  "$dir/bin/versitygw" --version >&2 || seed::die "built versitygw does not run"
  echo "$key" >"$dir/bin/.cache-key"
  seed::log "Built versitygw $VERSION in $((SECONDS - start))s ($(du -h "$dir/bin/versitygw" | cut -f1))"
  echo "$dir/bin/versitygw"
}

main() {
  command -v go >/dev/null || seed::die "go is not on PATH"
  export GOTOOLCHAIN=local CGO_ENABLED=0
  local start=$SECONDS bin ctx
  "$(seed::root)/hack/ensure-docker.sh"
  bin=$(binary)
  ctx="$(seed::cache_dir)/images/ctx/versitygw"
  rm -rf "$ctx"
  mkdir -p "$ctx/tmp"
  chmod 1777 "$ctx/tmp"
  cp -a "$bin" "$ctx/versitygw"
  # The provider runs it as the host user who owns the data directory.
  seed::build_image "$IMAGE" "$ctx" <<'EOF2'
FROM scratch
COPY versitygw /versitygw
COPY tmp/ /tmp/
USER 65532:65532
EXPOSE 7070
ENTRYPOINT ["/versitygw"]
EOF2
  rm -rf "$ctx"
  seed::log "versitygw image ready in $((SECONDS - start))s"
  echo "$IMAGE"
}

main "$@"
