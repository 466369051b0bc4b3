#!/usr/bin/env bash
# Builds the agent image FROM scratch around bin/agent, tagged with the
# binary's content hash (never :latest, so nothing is ever pulled). An image
# with that tag already in the engine is reused.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(seed::root)"

hack/build.sh
image=$(cat bin/agent-image)
if docker image inspect "$image" >/dev/null 2>&1; then
  seed::log "Agent image $image is up to date"
  echo "$image"
  exit 0
fi
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp bin/agent "$ctx/agent"
cp images/agent/Dockerfile "$ctx/Dockerfile"
seed::log "Building agent image $image"
DOCKER_BUILDKIT=0 docker build -q -t "$image" "$ctx" >/dev/null 2>&1 || DOCKER_BUILDKIT=0 docker build -t "$image" "$ctx"
echo "$image"
