#!/usr/bin/env bash
# Builds everything a Seed node image holds, then the node image itself:
#
#   hack/build-images.sh [VERSION]     VERSION defaults to v1.34.2
#
#  1. the Debian root filesystem (debootstrap, cached as a tarball) and, cut
#     from it, a "tools" layer: iptables, ip, bridge and conntrack with their libraries;
#  2. the binaries: Kubernetes (hack/build-kube.sh), etcd (hack/build-etcd.sh),
#     CoreDNS (images/coredns), pause (images/pause), seednet (images/seednet);
#  3. the component images, FROM scratch, under the exact names and tags
#     `kubeadm config images list` prints for VERSION, plus seednet's;
#  4. the node image seed-node:VERSION (hack/build-node-image.sh).
#
# SEED_KUBE_BIN / SEED_ETCD_BIN: use these bin dirs instead of running
# hack/build-kube.sh / hack/build-etcd.sh.
#
# Every step is skipped when its inputs are unchanged (a hash of them is kept
# in the cache or as an image label), so a second run takes seconds. Progress
# goes to stderr; the last stdout line is the node image reference.
set -euo pipefail
# Functions called as $(f) must stop at their first failure too.
shopt -s inherit_errexit
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

readonly DEFAULT_VERSION=v1.34.2
readonly SUITE=bookworm
readonly MIRROR=${SEED_DEBIAN_MIRROR:-http://deb.debian.org/debian}

# hash_of prints the sha256 of its stdin.
hash_of() { sha256sum | cut -d' ' -f1; }

# debootstrap_tar prints the path of a tarball of debootstrap's output for
# the package list (seed::debootstrap_tar), building it when missing.
debootstrap_tar() { seed::debootstrap_tar "$SUITE" "$MIRROR" "$1"; }

# rootfs makes the node's root filesystem from debootstrap's, and cuts the
# tools layer from it; prints "ROOTFS_TAR TOOLS_TAR".
rootfs() {
  local root packages dir raw key
  root=$(seed::root)
  packages=$(grep -v '^#' "$root/images/node/packages.txt" | grep -v '^$' | paste -sd, -)
  dir="$(seed::cache_dir)/rootfs"
  mkdir -p "$dir"
  exec 8>"$dir/.lock"
  flock 8
  raw=$(debootstrap_tar "$packages")
  # Keyed on debootstrap's output and on what this function does to it.
  key=$({ basename "$raw"; declare -f rootfs copy_with_libs; } | hash_of | cut -c1-16)
  local tar="$dir/rootfs-$key.tar" tools="$dir/tools-$key.tar"
  if [[ -s $tar && -s $tools ]]; then
    seed::log "Root filesystem up to date ($tar)"
    echo "$tar $tools"
    return
  fi

  local work="$dir/work-$key"
  rm -rf "$work"
  mkdir -p "$work/rootfs"
  local fs="$work/rootfs"
  tar -C "$fs" --numeric-owner --xattrs -xf "$raw"
  # Slim it: docs, man pages, locales, logs.
  rm -rf "$fs"/usr/share/doc/* "$fs"/usr/share/man/* "$fs"/usr/share/info/* "$fs"/usr/share/locale/* \
    "$fs"/var/log/*.log "$fs"/var/log/apt/* "$fs"/var/cache/debconf/*-old
  # Each node gets its own machine ID on first boot (see seed-entrypoint).
  : >"$fs/etc/machine-id"
  rm -f "$fs/var/lib/dbus/machine-id"
  # Debian's CNI plugins live in /usr/lib/cni; tools that assume the
  # upstream location find them too.
  mkdir -p "$fs/opt/cni"
  ln -sfn /usr/lib/cni "$fs/opt/cni/bin"
  mkdir -p "$fs/etc/cni/net.d" "$fs/var/lib/seed/bootstrap" "$fs/etc/seed/manifests" "$fs/var/lib/containerd"

  seed::log "Cutting the tools layer (iptables, ip, bridge, conntrack and their libraries)"
  local t="$work/tools"
  mkdir -p "$t/usr/bin" "$t/usr/sbin" "$t/usr/lib" "$t/usr/lib64" "$t/etc"
  ln -s usr/bin "$t/bin"
  ln -s usr/sbin "$t/sbin"
  ln -s usr/lib "$t/lib"
  ln -s usr/lib64 "$t/lib64"
  local -a files=(/usr/sbin/xtables-nft-multi /usr/sbin/xtables-legacy-multi /usr/sbin/conntrack /usr/bin/ip /usr/sbin/bridge)
  # shellcheck disable=SC2012 # the names are Debian's, plain .so files
  mapfile -t -O ${#files[@]} files < <(cd "$fs" && ls usr/lib/x86_64-linux-gnu/xtables/*.so | sed 's|^|/|')
  copy_with_libs "$fs" "$t" "${files[@]}"
  local name
  for name in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
    ln -sfn xtables-nft-multi "$t/usr/sbin/$name"
    ln -sfn xtables-nft-multi "$t/usr/sbin/${name/tables/tables-nft}"
    ln -sfn xtables-legacy-multi "$t/usr/sbin/${name/tables/tables-legacy}"
  done
  cp -a "$fs/etc/protocols" "$fs/etc/services" "$t/etc/"
  mkdir -p "$t/run" "$t/tmp"
  chmod 1777 "$t/tmp"
  chroot "$t" /usr/sbin/iptables --version >/dev/null || seed::die "the tools layer's iptables does not run"
  chroot "$t" /usr/bin/ip -V >/dev/null || seed::die "the tools layer's ip does not run"
  chroot "$t" /usr/sbin/bridge -V >/dev/null || seed::die "the tools layer's bridge does not run"

  # Byte-for-byte reproducible, so seednet's content tag only changes when
  # what is in it does.
  tar -C "$t" --numeric-owner --owner=0 --group=0 --sort=name --mtime=@0 -cf "$tools.tmp" .
  tar -C "$fs" --numeric-owner --xattrs -cf "$tar.tmp" .
  mv "$tools.tmp" "$tools"
  mv "$tar.tmp" "$tar"
  rm -rf "$work"
  seed::log "Root filesystem: $(du -h "$tar" | cut -f1), tools layer: $(du -h "$tools" | cut -f1)"
  echo "$tar $tools"
}

# copy_with_libs copies files from root filesystem $1 into $2 at the same
# (resolved) paths, with every shared library they load, as ldd run inside
# $1 lists them.
copy_with_libs() {
  local from=$1 to=$2
  shift 2
  local -A seen=()
  local path
  local -a libs
  # ldd prints "name => /path (addr)" per library, and the loader as
  # "/path (addr)"; with several files, a "file:" line heads each list.
  mapfile -t libs < <(chroot "$from" ldd "$@" 2>/dev/null |
    awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// && $1 !~ /:$/ {print $1}' | sort -u)
  for path in "$@" "${libs[@]}"; do
    [[ -n ${seen[$path]:-} ]] && continue
    seen[$path]=1
    local real dir
    real=$(chroot "$from" readlink -f "$path")
    dir=$(chroot "$from" readlink -f "$(dirname "$path")")
    mkdir -p "$to$(dirname "$real")" "$to$dir"
    cp -a "$from$real" "$to$real"
    # Keep the name the loader asks for (libfoo.so.1 -> libfoo.so.1.2.3).
    if [[ "$dir/$(basename "$path")" != "$real" ]]; then
      ln -sfn "$real" "$to$dir/$(basename "$path")"
    fi
  done
}

# go_binary builds a package of Seed's own module; prints the binary path.
go_binary() {
  local pkg=$1 out
  out="$(seed::cache_dir)/bin/$(basename "$pkg")"
  mkdir -p "$(dirname "$out")"
  (cd "$(seed::root)" && CGO_ENABLED=0 GOTOOLCHAIN=local go build -trimpath -ldflags "-s -w" -o "$out" "./$pkg") ||
    seed::die "building $pkg failed"
  echo "$out"
}

# coredns builds CoreDNS $1 (v1.12.1) through the wrapper in images/coredns;
# prints the binary path.
coredns() {
  local version=$1 wrapper dir key
  wrapper="$(seed::root)/images/coredns"
  dir="$(seed::cache_dir)/coredns/$version"
  mkdir -p "$dir"
  key=$({ echo "$version"; go env GOVERSION GOOS GOARCH; declare -f coredns;
    (cd "$wrapper" && find . -type f | LC_ALL=C sort | xargs sha256sum); } | hash_of)
  exec 7>"$dir/.lock"
  flock 7
  if [[ -x $dir/bin/coredns && -f $dir/bin/.cache-key && $(<"$dir/bin/.cache-key") == "$key" ]]; then
    seed::log "CoreDNS $version up to date"
    echo "$dir/bin/coredns"
    return
  fi
  seed::log "Building CoreDNS $version (a minute or two when cold)"
  local start=$SECONDS src="$dir/src"
  rm -rf "$src"
  mkdir -p "$src" "$dir/bin"
  cp -R "$wrapper/." "$src/"
  (cd "$src" && GOTOOLCHAIN=local GOFLAGS=-mod=mod go mod edit "-require=github.com/coredns/coredns@$version" &&
    GOTOOLCHAIN=local go mod tidy) >&2 || seed::die "resolving CoreDNS $version dependencies failed (in $src)"
  (cd "$src" && CGO_ENABLED=0 GOTOOLCHAIN=local go build -trimpath \
    -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=seed" -o "$dir/bin/coredns.new" .) ||
    seed::die "building CoreDNS $version failed (in $src)"
  mv -f "$dir/bin/coredns.new" "$dir/bin/coredns"
  "$dir/bin/coredns" -version >&2 || seed::die "built coredns does not run"
  echo "$key" >"$dir/bin/.cache-key"
  seed::log "Built CoreDNS $version in $((SECONDS - start))s"
  echo "$dir/bin/coredns"
}

# etcd_pin prints the etcd image tag pkg/bootstrap/etcd.go pins for the
# minor of version $1, or nothing.
etcd_pin() {
  local minor=${1#v1.}
  minor=${minor%%.*}
  sed -n "s/^[[:space:]]*$minor:[[:space:]]*\"\([0-9.]*-[0-9]*\)\",.*/\1/p" "$(seed::root)/pkg/bootstrap/etcd.go"
}

# context makes a fresh build context directory for image $1.
context() {
  local ctx
  ctx="$(seed::cache_dir)/images/ctx/$1"
  rm -rf "$ctx"
  mkdir -p "$ctx"
  echo "$ctx"
}

# link_or_copy puts file $1 at $2 without copying when the filesystem allows.
link_or_copy() { ln -f "$1" "$2" 2>/dev/null || cp -a "$1" "$2"; }

main() {
  local version=${1:-$DEFAULT_VERSION}
  [[ $version =~ ^v1\.[0-9]+\.[0-9]+$ ]] || seed::die "version must look like v1.34.2, got '$version'"
  local root start=$SECONDS
  root=$(seed::root)
  "$root/hack/ensure-docker.sh"
  command -v go >/dev/null || seed::die "go is not on PATH"

  local rootfs_out rootfs_tar tools_tar
  rootfs_out=$(rootfs)
  read -r rootfs_tar tools_tar <<<"$rootfs_out"
  [[ -s $rootfs_tar && -s $tools_tar ]] || seed::die "no root filesystem built"

  # SEED_KUBE_BIN and SEED_ETCD_BIN name prebuilt bin dirs (as the build
  # scripts print them) to use instead of calling those scripts.
  local kube_bin=${SEED_KUBE_BIN:-}
  if [[ -z $kube_bin ]]; then
    kube_bin=$("$root/hack/build-kube.sh" "$version" | tail -1)
  fi
  [[ -x $kube_bin/kubeadm ]] || seed::die "hack/build-kube.sh gave no kubeadm in '$kube_bin'"

  # The names and tags kubeadm will ask containerd for.
  local -a images
  mapfile -t images < <("$kube_bin/kubeadm" config images list --kubernetes-version "$version" 2>/dev/null)
  ((${#images[@]} >= 6)) || seed::die "kubeadm config images list printed: ${images[*]}"
  local img apiserver="" cm="" scheduler="" proxy="" etcd_ref="" coredns_ref="" pause_ref=""
  for img in "${images[@]}"; do
    case "$img" in
      */kube-apiserver:*) apiserver=$img ;;
      */kube-controller-manager:*) cm=$img ;;
      */kube-scheduler:*) scheduler=$img ;;
      */kube-proxy:*) proxy=$img ;;
      */etcd:*) etcd_ref=$img ;;
      */coredns:*) coredns_ref=$img ;;
      */pause:*) pause_ref=$img ;;
      *) seed::die "kubeadm lists an image Seed does not know how to build: $img" ;;
    esac
  done

  # Seed pins etcd where kubeadm's default is unsafe to upgrade from (the
  # table in pkg/bootstrap/etcd.go, which the kubeadm configuration uses).
  local pin
  pin=$(etcd_pin "$version")
  if [[ -n $pin ]]; then
    seed::log "etcd pinned to $pin for $version (kubeadm's default: ${etcd_ref##*:}; see pkg/bootstrap/etcd.go)"
    etcd_ref="${etcd_ref%:*}:$pin"
    local i
    for i in "${!images[@]}"; do
      [[ ${images[$i]} == */etcd:* ]] && images[i]=$etcd_ref
    done
  fi

  local etcd_bin coredns_bin pause_bin seednet_bin
  etcd_bin=${SEED_ETCD_BIN:-}
  if [[ -z $etcd_bin ]]; then
    etcd_bin=$("$root/hack/build-etcd.sh" "${etcd_ref##*:}" | tail -1)
  fi
  coredns_bin=$(coredns "${coredns_ref##*:}")
  pause_bin=$(go_binary images/pause)
  seednet_bin=$(go_binary images/seednet)

  local ctx
  # One image serves the API server, controller manager and scheduler: the
  # multi-call binary picks the component from the command kubeadm's static
  # pod manifests run. Three tags, one image, one copy of the binary.
  ctx=$(context kube)
  mkdir -p "$ctx/links"
  link_or_copy "$kube_bin/kube" "$ctx/kube"
  local c
  for c in kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet kubeadm kubectl; do
    ln -s kube "$ctx/links/$c"
  done
  seed::build_image "$apiserver" "$ctx" <<'EOF'
FROM scratch
COPY kube /usr/local/bin/kube
COPY links/ /usr/local/bin/
ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
EOF
  docker tag "$apiserver" "$cm"
  docker tag "$apiserver" "$scheduler"

  # kube-proxy runs iptables: the same layers plus the tools layer.
  ctx=$(context kube-proxy)
  link_or_copy "$tools_tar" "$ctx/tools.tar"
  # FROM the image ID, not the tag: a rebuilt base changes the inputs hash.
  seed::build_image "$proxy" "$ctx" <<EOF
FROM $(docker image inspect -f '{{.Id}}' "$apiserver")
ADD tools.tar /
EOF

  ctx=$(context etcd)
  mkdir -p "$ctx/bin"
  link_or_copy "$etcd_bin/etcd" "$ctx/bin/etcd"
  if [[ -e $etcd_bin/etcdctl ]]; then ln -s etcd "$ctx/bin/etcdctl"; fi
  seed::build_image "$etcd_ref" "$ctx" <<'EOF'
FROM scratch
COPY bin/ /usr/local/bin/
ENV PATH=/usr/local/bin
EOF

  ctx=$(context coredns)
  link_or_copy "$coredns_bin" "$ctx/coredns"
  seed::build_image "$coredns_ref" "$ctx" <<'EOF'
FROM scratch
COPY coredns /coredns
EXPOSE 53 53/udp
ENTRYPOINT ["/coredns"]
EOF

  ctx=$(context pause)
  link_or_copy "$pause_bin" "$ctx/pause"
  seed::build_image "$pause_ref" "$ctx" <<'EOF'
FROM scratch
COPY pause /pause
USER 65535:65535
ENTRYPOINT ["/pause"]
EOF

  # seednet's tag is a hash of what goes in, so a changed seednet is a new
  # image name in the manifest, and nodes never run a stale one.
  ctx=$(context seednet)
  link_or_copy "$tools_tar" "$ctx/tools.tar"
  link_or_copy "$seednet_bin" "$ctx/seednet"
  local seednet_tag
  seednet_tag=$(cat "$ctx/tools.tar" "$ctx/seednet" | hash_of | cut -c1-12)
  local seednet_ref="seed.local/seednet:$seednet_tag"
  seed::build_image "$seednet_ref" "$ctx" <<'EOF'
FROM scratch
ADD tools.tar /
COPY seednet /usr/local/bin/seednet
ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ENTRYPOINT ["/usr/local/bin/seednet"]
EOF
  rm -rf "$(seed::cache_dir)/images/ctx"

  # What build-node-image.sh assembles the node image from.
  local inputs
  inputs="$(seed::cache_dir)/node/$version/inputs.env"
  mkdir -p "$(dirname "$inputs")"
  cat >"$inputs.tmp" <<EOF
ROOTFS_TAR=$rootfs_tar
KUBE_BIN=$kube_bin
SANDBOX_IMAGE=$pause_ref
SEEDNET_IMAGE=$seednet_ref
IMAGES="${images[*]} $seednet_ref"
EOF
  mv "$inputs.tmp" "$inputs"
  # Providers without this node image (AWS) ship seednet's image themselves:
  # `seed up --network-image "$(cat bin/network-image)"`.
  mkdir -p "$root/bin"
  echo "$seednet_ref" >"$root/bin/network-image"
  seed::log "Component images ready in $((SECONDS - start))s"
  "$root/hack/build-node-image.sh" "$version"
}

main "$@"
