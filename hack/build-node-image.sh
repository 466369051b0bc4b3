#!/usr/bin/env bash
# Assembles the node image seed-node:VERSION from what hack/build-images.sh
# built: the Debian root filesystem, the Kubernetes binary, the recipe in
# images/node, and the component images, preloaded into the node's
# containerd (namespace k8s.io) so that nothing is ever pulled.
#
#   hack/build-node-image.sh [VERSION]     VERSION defaults to v1.34.2
#
# Run hack/build-images.sh instead: it builds the inputs and then calls this.
# The image carries the label dev.seed.node.hash, a hash of every input; a
# run whose inputs are unchanged returns at once. The last stdout line is the
# image reference.
set -euo pipefail
shopt -s inherit_errexit
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

readonly DEFAULT_VERSION=v1.34.2
readonly HASH_LABEL=dev.seed.node.hash
# The images preloaded into the node's containerd, normalized, space-separated
# (providers/docker reads it: LabelPreloadedImages).
readonly PRELOADED_LABEL=dev.seed.preloaded
# The flags the preload container needs: mounts (overlayfs snapshots).
readonly PRELOAD_FLAGS=(--cap-add=ALL --cap-drop=SYS_RESOURCE
  --security-opt seccomp=unconfined --security-opt apparmor=unconfined)

hash_of() { sha256sum | cut -d' ' -f1; }

main() {
  local version=${1:-$DEFAULT_VERSION}
  local root cache inputs
  root=$(seed::root)
  cache="$(seed::cache_dir)/node/$version"
  inputs="$cache/inputs.env"
  [[ -f $inputs ]] || seed::die "no inputs for $version in $inputs: run hack/build-images.sh $version"
  local ROOTFS_TAR KUBE_BIN SANDBOX_IMAGE SEEDNET_IMAGE IMAGES
  # shellcheck source=/dev/null
  source "$inputs"
  # crictl, for debugging nodes (/etc/crictl.yaml points it at containerd).
  local crictl_bin
  crictl_bin=$("$root/hack/build-crictl.sh" | tail -1)
  local ref="seed-node:$version"
  local -a images
  read -r -a images <<<"$IMAGES"

  exec 9>"$cache/.lock"
  flock 9

  # Everything the image is made of, hashed: the recipe, this script, the
  # rootfs (its name is its own inputs hash), the binary, the images' IDs.
  local img id ids=() key
  for img in "${images[@]}"; do
    id=$(docker image inspect -f '{{.Id}}' "$img" 2>/dev/null) ||
      seed::die "image $img is missing: run hack/build-images.sh $version"
    ids+=("$img=$id")
  done
  key=$({
    echo "$version $SANDBOX_IMAGE $SEEDNET_IMAGE $(basename "$ROOTFS_TAR")"
    printf '%s\n' "${ids[@]}"
    sha256sum "${BASH_SOURCE[0]}" "$root/manifests/network/seednet.yaml" "$KUBE_BIN/kube" | cut -d' ' -f1
    sha256sum "$crictl_bin/crictl" | cut -d' ' -f1
    (cd "$root/images/node" && find Dockerfile files \( -type f -o -type l \) -printf '%p %l %m\n' | LC_ALL=C sort &&
      find Dockerfile files -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
  } | hash_of)
  local current
  current=$(docker image inspect -f "{{index .Config.Labels \"$HASH_LABEL\"}}" "$ref" 2>/dev/null || true)
  if [[ $current == "$key" ]]; then
    seed::log "Node image $ref is up to date"
    echo "$ref"
    return
  fi
  local old_id
  old_id=$(docker image inspect -f '{{.Id}}' "$ref" 2>/dev/null || true)

  local start=$SECONDS
  # The root filesystem as a base image, once per rootfs.
  local base
  base="seed-node-rootfs:$(basename "$ROOTFS_TAR" .tar | sed 's/^rootfs-//')"
  if ! docker image inspect "$base" >/dev/null 2>&1; then
    seed::log "Importing the root filesystem as $base"
    docker import "$ROOTFS_TAR" "$base" >/dev/null || seed::die "docker import of $ROOTFS_TAR failed"
  fi

  work="$cache/work"
  rm -rf "$work"
  mkdir -p "$work/ctx/kube" "$work/ctx/manifests"
  trap "rm -rf '$work'; docker rm -f 'seed-node-preload-$version' >/dev/null 2>&1 || true" EXIT

  seed::log "Building $ref from $base"
  cp -a "$root/images/node/files" "$work/ctx/files"
  sed -i "s|@SANDBOX_IMAGE@|$SANDBOX_IMAGE|" "$work/ctx/files/etc/containerd/config.toml"
  mkdir -p "$work/ctx/files/etc/seed"
  echo "$version" >"$work/ctx/files/etc/seed/kubernetes-version"
  ln -f "$KUBE_BIN/kube" "$work/ctx/kube/kube" 2>/dev/null || cp -a "$KUBE_BIN/kube" "$work/ctx/kube/kube"
  local c
  for c in kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet kubeadm kubectl; do
    ln -s kube "$work/ctx/kube/$c"
  done
  cp "$crictl_bin/crictl" "$work/ctx/kube/crictl"
  sed -e "s|@IMAGE@|$SEEDNET_IMAGE|" -e "s|@BACKEND@|route|" "$root/manifests/network/seednet.yaml" >"$work/ctx/manifests/10-seednet.yaml"
  cp "$root/images/node/Dockerfile" "$work/ctx/Dockerfile"
  DOCKER_BUILDKIT=0 docker build -q --build-arg "BASE=$base" -t "seed-node-build:$version" "$work/ctx" >/dev/null 2>"$work/build.log" ||
    { cat "$work/build.log" >&2; seed::die "docker build of the node image failed"; }

  # Preload: a containerd of the node image's own version imports the
  # images into a directory on the host (containerd's overlayfs snapshotter
  # cannot sit on the image's own overlayfs), which then becomes part of
  # the image. Unpacking here, once, keeps it off every node's first boot;
  # only the unpacked layers are kept.
  seed::log "Preloading ${#images[@]} images into containerd"
  mkdir -p "$work/containerd"
  docker save "${images[@]}" -o "$work/images.tar" || seed::die "docker save failed"
  docker run --rm --name "seed-node-preload-$version" "${PRELOAD_FLAGS[@]}" \
    -v "$work/containerd:/var/lib/containerd" -v "$work/images.tar:/images.tar:ro" \
    --entrypoint /bin/bash "seed-node-build:$version" -c '
      set -euo pipefail
      containerd >/tmp/containerd.log 2>&1 &
      for _ in $(seq 1 100); do [[ -S /run/containerd/containerd.sock ]] && break; sleep 0.1; done
      ctr -n k8s.io images import /images.tar >/dev/null
      # Once unpacked, the layer blobs are never read again (nothing is
      # pushed, and image GC is off): drop them, so each machine copies
      # half as much into its /var volume when it is created.
      layers=$(for manifest in $(ctr -n k8s.io images ls | awk "NR > 1 { print \$3 }" | sort -u); do
        ctr -n k8s.io content get "$manifest" | sed "s/.*\"layers\"//" | grep -o "sha256:[0-9a-f]\{64\}"
      done | sort -u)
      ctr -n k8s.io content rm $layers >/dev/null
      ctr -n k8s.io images ls -q
      kill -TERM %1
      wait
      # containerd forgets the blobs at once but deletes their files at its
      # next garbage collection; do it now.
      for d in $layers; do rm -f "/var/lib/containerd/io.containerd.content.v1.content/blobs/sha256/${d#sha256:}"; done' >"$work/preloaded.txt" || seed::die "preloading images failed"
  for img in "${images[@]}"; do
    grep -qxF "$(normalize "$img")" "$work/preloaded.txt" ||
      seed::die "$img is not in containerd after the import (got: $(paste -sd' ' "$work/preloaded.txt"))"
  done

  local cid
  cid=$(docker create "seed-node-build:$version")
  tar -C "$work/containerd" --numeric-owner -cf - . | docker cp - "$cid:/var/lib/containerd" ||
    seed::die "copying the preloaded images into the image failed"
  # What the node's containerd holds, as containerd names it: the Docker
  # provider ships a machine only the images its node image lacks.
  local preloaded
  preloaded=$(for img in "${images[@]}"; do normalize "$img"; done | paste -sd' ')
  docker commit \
    --change "LABEL $HASH_LABEL=$key" \
    --change "LABEL $PRELOADED_LABEL=\"$preloaded\"" \
    --change "LABEL dev.seed.kubernetes-version=$version" \
    "$cid" "$ref" >/dev/null || seed::die "docker commit failed"
  docker rm "$cid" >/dev/null
  docker rmi "seed-node-build:$version" >/dev/null 2>&1 || true
  if [[ -n $old_id && $old_id != "$(docker image inspect -f '{{.Id}}' "$ref")" ]]; then
    docker rmi "$old_id" >/dev/null 2>&1 || true
  fi
  seed::log "Built $ref in $((SECONDS - start))s ($(docker image inspect -f '{{.Size}}' "$ref" | numfmt --to=iec))"
  echo "$ref"
}

# normalize prints an image reference as containerd names it (keep in step
# with normalizeImageRef in providers/docker).
normalize() {
  local ref=$1
  if [[ $ref != */* ]]; then
    ref="docker.io/library/$ref"
  else
    case "${ref%%/*}" in
      *.*|*:*|localhost) ;;
      *) ref="docker.io/$ref" ;;
    esac
  fi
  local name=${ref##*/}
  if [[ $name != *:* && $name != *@* ]]; then
    ref="$ref:latest"
  fi
  echo "$ref"
}

main "$@"
