#!/usr/bin/env bash
# The linker drops the methods nothing calls, unless the program can reach
# a function the compiler marked <ReflectMethod>: one that looks methods up
# by an index or a name known only at run time (text/template's evaluator,
# reflect.Value.Method, Go 1.26's reflect method iterators). Then it keeps
# every exported method of every type held in an interface, and the seed
# carried every EC2, IAM and S3 operation: 89 MiB instead of 19. This fails
# when the seed can reach such a function again, printing how, and when it
# imports what put it there or made it big.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(seed::root)"

# The agent too: google.golang.org/protobuf before v1.36.12 asked for a
# method named "Methods" (golang/protobuf#1704), which keeps Go 1.26's
# reflect.Value.Methods and with it every method (96 MB; 37 MB since).
binaries=(./seed ./agent)

# What the seed must not import, and why:
#  - google.golang.org/protobuf: reaches reflect.Value.Methods (above).
#  - client-go's clientset, typed clients and discovery: they link protobuf.
#  - k8s.io/api: each group registers every type with gogo protobuf at init
#    (3 MB for core/v1); pkg/kube reads the few fields the seed needs.
forbidden='^(google\.golang\.org/protobuf|k8s\.io/client-go/(kubernetes|discovery|applyconfigurations)|k8s\.io/api)(/|$)'

deps=$(mktemp)
trap 'rm -f "$deps"' EXIT
failed=0
for pkg in "${binaries[@]}"; do
  # The agent uses client-go and protobuf for real; the one-shot seed must not.
  bad=""
  [ "$pkg" != ./seed ] || bad=$(go list -deps "$pkg" | grep -E "$forbidden" || true)
  if [ -n "$bad" ]; then
    seed::log "$pkg imports packages that make it big (see this script):"
    sed 's/^/  /' <<<"$bad" >&2
    failed=1
  fi

  # Built as hack/build.sh builds it; -dumpdep prints one "from -> to" line
  # as the linker first reaches each symbol, with the symbol's flags.
  if ! CGO_ENABLED=0 go build -trimpath -ldflags=-dumpdep -o /dev/null "$pkg" >"$deps" 2>&1; then
    grep -v ' -> ' "$deps" >&2 || true
    seed::die "building $pkg failed"
  fi
  grep -q -- '-> main\.main$' "$deps" || seed::die "the linker printed no dependencies for $pkg (-dumpdep): this check cannot tell"
  # The first flagged symbol reached is the cause: everything it makes the
  # linker keep is reached after it.
  if ! chain=$(awk '
    {
      n = index($0, " -> "); if (!n) next
      from = substr($0, 1, n - 1); to = substr($0, n + 4)
      flagged = to ~ /<ReflectMethod>/
      sub(/ (<[A-Za-z]+>)+$/, "", from); sub(/ (<[A-Za-z]+>)+$/, "", to)
      if (!(to in parent)) parent[to] = from
      if (flagged && first == "") first = to
    }
    END {
      if (first == "") exit 0
      print "  " first
      for (s = parent[first]; s != "" && s != "_" && depth++ < 40; s = parent[s]) print "    reached from " s
      exit 1
    }' "$deps"); then
    seed::log "$pkg can reach a method lookup the linker cannot follow, so it keeps every exported method:"
    echo "$chain" >&2
    seed::log "If that is one of reflect's Methods iterators, something asks for a method named Methods"
    echo "  (MethodByName(\"Methods\"), or .Methods() on a type parameter). Confirm: go build -ldflags=-v=2 $pkg 2>&1 | grep 'iface method: Methods\$'" >&2
    echo "  Find it: grep -rn 'MethodByName(\"Methods\")' \$(go list -deps -f '{{.Dir}}' $pkg)" >&2
    failed=1
  fi
done
[ "$failed" = 0 ] || seed::die "method elimination is off, or about to be (see above)"
seed::log "${binaries[*]}: the linker can drop every method nothing calls"
