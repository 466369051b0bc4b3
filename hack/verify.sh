#!/usr/bin/env bash
# Runs every hack/verify-*.sh check and reports all failures, not the first.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(seed::root)"

failed=()
for check in hack/verify-*.sh; do
  seed::log "Running $check"
  if ! "$check"; then
    failed+=("$check")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  seed::die "failed: ${failed[*]}"
fi
seed::log "All checks passed"
