#!/usr/bin/env bash
# The seed stays tiny: it carries no agent, controller or control-plane code.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(seed::root)"
forbidden='^(k8s.io/kubernetes|sigs.k8s.io/controller-runtime|github.com/vmware-tanzu/velero|github.com/seedhq/seed/agent|k8s.io/client-go/tools/leaderelection|k8s.io/client-go/informers)(/|$)'
bad=$(go list -deps ./seed/... | grep -E "$forbidden" || true)
[ -z "$bad" ] || seed::die "seed imports agent or control-plane code:
$bad"
seed::log "seed imports no agent or control-plane code ($(go list -deps ./seed/... | wc -l) packages)"
