#!/usr/bin/env bash
# golangci-lint, pinned in hack/tools/go.mod and run with `go tool`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(seed::root)"
go tool -modfile=hack/tools/go.mod golangci-lint run ./...
