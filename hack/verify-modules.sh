#!/usr/bin/env bash
# go.mod and go.sum are tidy.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(seed::root)"
if ! diff=$(go mod tidy -diff 2>&1); then
  echo "$diff" >&2
  seed::die "go.mod/go.sum are not tidy: run go mod tidy"
fi
