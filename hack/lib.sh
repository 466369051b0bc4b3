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
