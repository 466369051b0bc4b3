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
