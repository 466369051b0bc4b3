#!/usr/bin/env bash
# The provider seam is closed: only providers/ knows the concrete providers.
# Outside providers/, no package (tests included) imports providers/docker,
# providers/aws or providers/simulated; it builds a provider through
# providers/registry and acts on what the provider declares
# (providers.Capabilities). Nothing outside
# providers/ and the spec API (pkg/api) branches on spec.provider.docker or
# spec.provider.aws.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(seed::root)"

module=$(go list -m)
concrete="^${module}/providers/(docker|aws|simulated)(/|\$)"
failed=0

# Every package with its imports, test imports included.
imports=$(go list -f '{{.ImportPath}}{{range .Imports}} {{.}}{{end}}{{range .TestImports}} {{.}}{{end}}{{range .XTestImports}} {{.}}{{end}}' ./...)
while read -r pkg deps; do
  case "$pkg" in
    "$module"/providers/*) continue ;;
  esac
  for dep in $deps; do
    if [[ "$dep" =~ $concrete ]]; then
      echo "$pkg imports $dep: build providers with providers/registry and use their Capabilities" >&2
      failed=1
    fi
  done
done <<<"$imports"

if refs=$(git grep -n -E '\bProvider\.(Docker|AWS)\b' -- '*.go' ':!providers/' ':!pkg/api/'); then
  echo "$refs" >&2
  echo "the lines above branch on the spec's provider outside providers/ and pkg/api: declare the difference in providers.Capabilities" >&2
  failed=1
fi

[ "$failed" -eq 0 ] || seed::die "the provider seam is open"
seed::log "No package outside providers/ knows a concrete provider"
