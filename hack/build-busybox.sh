#!/usr/bin/env bash
# Builds BusyBox from its upstream source, as a static binary, and prints
# the directory holding it, for the conformance suite's busybox image
# (hack/build-conformance.sh).
#
#   hack/build-busybox.sh [VERSION]     VERSION defaults to 1.37.0
#
# Why not Debian's busybox-static: Debian reverts an upstream change to ash
# (debian/patches/revert-9c143ce5...), so its sh drops environment
# variables whose names are not shell identifiers, and the suite's
# "consumable via the environment" specs read `data-1` through `sh -c env`.
# Upstream keeps them, as the Docker Hub image the suite's busybox is made
# from does. The source is Debian's orig tarball, which is upstream's
# release byte for byte (its SHA-256 is checked below); none of Debian's
# patches are applied. The configuration is upstream's defconfig with
# CONFIG_STATIC. The result is cached under
# $(seed::cache_dir)/busybox/VERSION, keyed on the version, this script and
# the compiler. Progress goes to stderr; the bin dir is the last line on
# stdout.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
readonly SELF
readonly DEFAULT_VERSION=1.37.0
readonly MIRROR=${SEED_DEBIAN_MIRROR:-http://deb.debian.org/debian}

# sha256_of prints the SHA-256 of upstream's busybox-VERSION.tar.bz2 (the
# same file as Debian's busybox_VERSION.orig.tar.bz2), for the versions this
# script knows.
sha256_of() {
  case $1 in
    1.37.0) echo 3311dff32e746499f4df0d5df04d7eb396382d7e108bb9250e7b519b837043a4 ;;
    1.35.0) echo faeeb244c35a348a334f4a59e44626ee870fb07b6884d68c10ae8bc19f83a694 ;;
    *) seed::die "no known checksum for BusyBox $1: add it to sha256_of in $SELF (from upstream's release or Debian's .dsc)" ;;
  esac
}

main() {
  local version=${1:-$DEFAULT_VERSION}
  [[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || seed::die "version must look like 1.37.0, got '$version'"
  local sum
  sum=$(sha256_of "$version")
  seed::need gcc build-essential
  seed::need make build-essential
  seed::need bzip2
  seed::need curl

  local dir bin src key
  dir="$(seed::cache_dir)/busybox/$version"
  bin="$dir/bin"
  src="$dir/src"
  mkdir -p "$dir"
  key=$({ echo "$version $sum"; gcc --version | head -1; sha256sum <"$SELF"; } | sha256sum | cut -d' ' -f1)

  exec 9>"$dir/.lock"
  flock 9
  if [[ -x $bin/busybox && -f $bin/.cache-key && $(<"$bin/.cache-key") == "$key" ]]; then
    seed::log "BusyBox $version is up to date in $bin"
    echo "$bin"
    return
  fi

  local start=$SECONDS tarball="$dir/busybox-$version.tar.bz2"
  if [[ ! -f $tarball ]] || ! echo "$sum  $tarball" | sha256sum -c --quiet >/dev/null 2>&1; then
    seed::log "Downloading BusyBox $version's source from $MIRROR"
    curl -sSfL -o "$tarball.new" "$MIRROR/pool/main/b/busybox/busybox_$version.orig.tar.bz2" ||
      seed::die "downloading busybox_$version.orig.tar.bz2 from $MIRROR failed (SEED_DEBIAN_MIRROR names another mirror)"
    echo "$sum  $tarball.new" | sha256sum -c --quiet >/dev/null 2>&1 ||
      seed::die "busybox_$version.orig.tar.bz2 from $MIRROR does not have SHA-256 $sum"
    mv -f "$tarball.new" "$tarball"
  fi

  seed::log "Building BusyBox $version (upstream defconfig, static)"
  rm -rf "$src"
  mkdir -p "$src" "$bin"
  tar -C "$src" --strip-components=1 -xjf "$tarball"
  (
    cd "$src"
    # The version banner's date: the source's, so a rebuild is the same binary.
    SOURCE_DATE_EPOCH=$(stat -c %Y Makefile)
    export SOURCE_DATE_EPOCH
    make defconfig >/dev/null
    sed -i 's/^# CONFIG_STATIC is not set$/CONFIG_STATIC=y/' .config
    grep -qx CONFIG_STATIC=y .config
    make -j"$(nproc)" busybox >make.log 2>&1
  ) || seed::die "building BusyBox $version failed (log: $src/make.log)"
  mv -f "$src/busybox" "$bin/busybox"
  # The reason for building it: sh passes on what is not an identifier.
  [[ $(env -i data-1=x "$bin/busybox" sh -c env | grep -c '^data-1=x$') == 1 ]] ||
    seed::die "the built BusyBox's sh drops the variable data-1 from its environment"
  echo "$key" >"$bin/.cache-key"
  rm -rf "$src"
  seed::log "Built BusyBox $version in $((SECONDS - start))s ($(du -h "$bin/busybox" | cut -f1)) in $bin"
  echo "$bin"
}

main "$@"
