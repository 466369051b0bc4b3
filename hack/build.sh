#!/usr/bin/env bash
# Builds bin/agent and bin/seed. The seed is stamped with the agent image it
# installs by default, whose tag is the agent binary's content hash.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(seed::root)"

mkdir -p bin
export CGO_ENABLED=0
seed::log "Building bin/agent"
go build -trimpath -ldflags "-s -w" -o bin/agent ./agent
agent_tag=$(sha256sum bin/agent | cut -c1-12)
version=$(git describe --always --dirty 2>/dev/null || echo dev)
seed::log "Building bin/seed (agent image seed-agent:${agent_tag})"
go build -trimpath -ldflags "-s -w \
  -X github.com/seedhq/seed/pkg/version.Version=${version} \
  -X github.com/seedhq/seed/pkg/version.AgentImage=seed-agent:${agent_tag}" \
  -o bin/seed ./seed
echo "seed-agent:${agent_tag}" > bin/agent-image
seed::log "bin/seed $(du -h bin/seed | cut -f1), bin/agent $(du -h bin/agent | cut -f1)"
