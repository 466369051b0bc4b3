#!/usr/bin/env bash
# Copies the CustomResourceDefinitions of the Velero release Seed installs
# into manifests/velero/crds, where manifests.Velero embeds them for the agent: importing Velero's Go
# packages for them would move the root module onto Velero's dependencies.
# Run it when hack/build-velero.sh changes version; verify-velero-crds.sh
# (through make lint) checks the copies match.
#
#   hack/update-velero-crds.sh [--check]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(seed::root)"

version=$(sed -n 's/^readonly VELERO_VERSION=\(v[0-9.]*\)$/\1/p' hack/build-velero.sh)
[[ -n $version ]] || seed::die "cannot read VELERO_VERSION from hack/build-velero.sh"
dir=$(GOFLAGS=-mod=mod GOTOOLCHAIN=local go mod download -json "github.com/vmware-tanzu/velero@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[[ -d $dir/config/crd ]] || seed::die "no CRDs in github.com/vmware-tanzu/velero@$version (module dir '$dir')"

out=manifests/velero/crds
if [[ ${1:-} == --check ]]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  out=$tmp
fi
mkdir -p "$out"
rm -f "$out"/*.yaml
for f in "$dir"/config/crd/v1/bases/*.yaml "$dir"/config/crd/v2alpha1/bases/*.yaml; do
  cp "$f" "$out/$(basename "$f")"
  chmod 0644 "$out/$(basename "$f")"
done
echo "$version" >"$out/VERSION"
if [[ ${1:-} == --check ]]; then
  diff -r "$out" manifests/velero/crds >/dev/null ||
    seed::die "manifests/velero/crds differs from Velero $version's CRDs: run hack/update-velero-crds.sh"
  seed::log "manifests/velero/crds matches Velero $version"
else
  seed::log "Copied $(ls "$out"/*.yaml | wc -l) CRDs of Velero $version into $out"
fi
