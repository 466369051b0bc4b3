#!/usr/bin/env bash
# Brings up a local cluster on a fresh machine: Docker (installed and started
# if missing), the images (built if missing, cached), then `seed up`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(seed::root)"

hack/ensure-docker.sh
hack/build-images.sh >/dev/null
image=$(hack/build-agent-image.sh)
# The pod network image matters only to providers without this node image
# (AWS: `hack/up.sh -f cluster.yaml` stages it); build-images.sh wrote it.
exec bin/seed up --agent-image "$image" --network-image "$(cat bin/network-image)" "$@"
