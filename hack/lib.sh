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

# The repository root, resolved when this file is sourced, so that a script
# may change directory and still find it.
SEED_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# seed::root prints the repository root.
seed::root() { echo "$SEED_ROOT"; }

# seed::need CMD PACKAGE installs Debian's PACKAGE when CMD is missing and
# we are root, so a fresh machine needs no manual setup; otherwise it says
# what to install.
seed::need() {
  local cmd=$1 pkg=${2:-$1}
  command -v "$cmd" >/dev/null 2>&1 && return 0
  [ "$(id -u)" = 0 ] || seed::die "$cmd is not installed: apt-get install -y $pkg"
  seed::log "Installing $pkg (for $cmd)"
  if ! DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null ||
    ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null; then
    seed::die "could not install $pkg"
  fi
}

# seed::debootstrap_tar SUITE MIRROR PACKAGES prints the path of a tarball
# of `debootstrap --variant=minbase --include=PACKAGES` (comma-separated),
# running it when the cache has none. Only its arguments key it, so what a
# caller does with the tree does not download Debian again. Callers hold
# the lock on $(seed::cache_dir)/rootfs/.lock.
seed::debootstrap_tar() {
  local suite=$1 mirror=$2 packages=$3 dir key
  dir="$(seed::cache_dir)/rootfs"
  mkdir -p "$dir"
  key=$(echo "$suite $mirror $packages" | sha256sum | cut -c1-16)
  local tar="$dir/debootstrap-$key.tar" log="$dir/debootstrap-$key.log"
  if [[ -s $tar ]]; then
    echo "$tar"
    return
  fi
  seed::need debootstrap
  [[ $(id -u) == 0 ]] || seed::die "debootstrap needs root"
  local work="$dir/debootstrap-$key"
  rm -rf "$work"
  seed::log "Running debootstrap $suite (a minute or more; log: $log)"
  local start=$SECONDS
  debootstrap --variant=minbase --include="$packages" "$suite" "$work" "$mirror" >"$log" 2>&1 ||
    { tail -20 "$log" >&2; seed::die "debootstrap failed (log: $log)"; }
  rm -rf "$work"/var/cache/apt/archives/*.deb "$work"/var/lib/apt/lists/*
  tar -C "$work" --numeric-owner --xattrs -cf "$tar.tmp" .
  mv "$tar.tmp" "$tar"
  rm -rf "$work"
  seed::log "debootstrap took $((SECONDS - start))s"
  echo "$tar"
}

# The image label holding the hash of an image's inputs (seed::build_image).
readonly SEED_INPUTS_LABEL=dev.seed.inputs

# seed::image_inputs prints the inputs label of image $1, or nothing.
seed::image_inputs() {
  docker image inspect -f "{{index .Config.Labels \"$SEED_INPUTS_LABEL\"}}" "$1" 2>/dev/null || true
}

# seed::build_image REF CTX builds image REF from the Dockerfile on stdin and
# the context directory CTX, unless an image of that name already carries
# the same inputs hash: the Dockerfile and every file in the context, so a
# Dockerfile that names its base by image ID is rebuilt when the base is.
seed::build_image() {
  local ref=$1 ctx=$2 dockerfile key current
  dockerfile=$(cat)
  key=$({ echo "$dockerfile"; (cd "$ctx" && find . \( -type f -o -type l \) -printf '%p %l\n' | LC_ALL=C sort;
    find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum); } | sha256sum | cut -d' ' -f1)
  current=$(seed::image_inputs "$ref")
  if [[ $current == "$key" ]]; then
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

# seed::cluster_range NAME prints the default network pkg/bootstrap gives
# every cluster (DefaultPodSubnet, DefaultServiceSubnet): the one place it
# is set.
seed::cluster_range() {
  local value
  value=$(sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*\"\([0-9./]*\)\"/\1/p" "$(seed::root)/pkg/bootstrap/bootstrap.go")
  [[ $value =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+/[0-9]+$ ]] ||
    seed::die "cannot read $1 from pkg/bootstrap/bootstrap.go (got '$value')"
  echo "$value"
}

# seed::guard_cluster_ranges routes the clusters' Service and pod ranges to
# nowhere on this host. A node sends a packet for an address it has no rule
# for out of its default route, to this host, which would pass it on to
# whatever network it is on; the e2e tests and upstream's conformance specs
# probe such addresses on purpose (and seednet stops them at the node; this
# catches what a broken node lets out). Routes more specific than these,
# such as a LAN of the host's own, still win. Under CI=true a failure is
# fatal; otherwise it is a warning, and the tests that need the guard say so.
seed::guard_cluster_ranges() {
  local services pods cidr failed=
  services=$(seed::cluster_range DefaultServiceSubnet)
  pods=$(seed::cluster_range DefaultPodSubnet)
  for cidr in "$services" "$pods"; do
    if ip -4 route replace blackhole "$cidr" 2>/dev/null; then
      seed::log "Host: routing $cidr to nowhere (blackhole), so no cluster-internal packet leaves this machine"
    else
      failed+=" $cidr"
    fi
  done
  [[ -z $failed ]] && return 0
  local msg="cannot route${failed} to nowhere on this host (needs root and ip): a probe of an address with no rule could leave the machine"
  [[ ${CI:-} == true ]] && seed::die "$msg"
  seed::log "Warning: $msg; the tests that probe such addresses will refuse to run"
}
