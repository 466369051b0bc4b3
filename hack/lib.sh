#!/usr/bin/env bash
# Shared helpers for hack/ scripts. Source it; it changes nothing by itself.

# seed::cache_dir prints the root of Seed's build cache. It lives outside the
# repository so that fresh clones and CI runs on the same machine reuse it.
seed::cache_dir() {
  local dir="${SEED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/seed}"
  mkdir -p "$dir"
  echo "$dir"
}

seed::log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

seed::die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# seed::root prints the repository root.
seed::root() { cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd; }

# seed::need CMD PACKAGE installs Debian's PACKAGE when CMD is missing and
# we are root, so a fresh machine needs no manual setup; otherwise it says
# what to install.
seed::need() {
  local cmd=$1 pkg=${2:-$1}
  command -v "$cmd" >/dev/null 2>&1 && return 0
  [ "$(id -u)" = 0 ] || seed::die "$cmd is not installed: apt-get install -y $pkg"
  seed::log "Installing $pkg (for $cmd)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null ||
    seed::die "could not install $pkg"
}

# The label holding the hash of an image's inputs.
readonly SEED_INPUTS_LABEL=dev.seed.inputs

# seed::image_inputs prints the inputs label of image $1, or nothing.
seed::image_inputs() {
  docker image inspect -f "{{index .Config.Labels \"$SEED_INPUTS_LABEL\"}}" "$1" 2>/dev/null || true
}

# seed::build_image builds image $1 from the Dockerfile on stdin and the
# context dir $2, unless an image of that name already carries the same
# inputs hash. The hash covers the Dockerfile and every file in the context.
seed::build_image() {
  local ref=$1 ctx=$2 dockerfile key
  dockerfile=$(cat)
  key=$({ echo "$dockerfile"; (cd "$ctx" && find . \( -type f -o -type l \) -printf '%p %l\n' | LC_ALL=C sort;
    find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum); } | sha256sum | cut -d' ' -f1)
  if [[ $(seed::image_inputs "$ref") == "$key" ]]; then
    seed::log "Image $ref up to date"
    return
  fi
  seed::log "Building image $ref"
  printf '%s\nLABEL %s=%s\n' "$dockerfile" "$SEED_INPUTS_LABEL" "$key" >"$ctx/Dockerfile"
  # The legacy builder needs no BuildKit and no registry; its deprecation
  # notice is noise, so stderr is shown only on failure.
  DOCKER_BUILDKIT=0 docker build -q -t "$ref" "$ctx" >/dev/null 2>"$ctx.log" ||
    { cat "$ctx.log" >&2; seed::die "docker build of $ref failed"; }
  rm -f "$ctx.log"
  rm -f "$ctx/Dockerfile"
}
