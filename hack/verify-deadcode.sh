#!/usr/bin/env bash
# No dead code: every function is reachable from a program's main or from a
# test. deadcode (golang.org/x/tools, pinned in hack/tools/go.mod and run
# with `go tool`) walks the call graph from every main package of the module
# (seed, agent, seednet and the node image's helpers) and, with -test, from
# every test, so a helper only tests use counts as used.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(seed::root)"

# Functions deadcode may report, as <import path>.<func> or
# <import path>.<type>.<method>, each with the reason it stays. Keep it short:
# code with no caller is deleted, not listed here.
allowed=(
)

found=$(go tool -modfile=hack/tools/go.mod deadcode -test \
  -f '{{range .Funcs}}{{$.Path}}.{{.Name}} {{.Position}}{{"\n"}}{{end}}' ./...)

bad=()
while read -r fn where; do
  [ -n "$fn" ] || continue
  if [[ " ${allowed[*]} " != *" $fn "* ]]; then
    bad+=("${where#"$PWD/"}: $fn")
  fi
done <<<"$found"

if [ ${#bad[@]} -gt 0 ]; then
  printf '%s\n' "${bad[@]}" >&2
  seed::die "${#bad[@]} unreachable functions: delete them, or list them in hack/verify-deadcode.sh with the reason they stay"
fi
seed::log "No dead code"
