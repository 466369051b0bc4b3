#!/usr/bin/env bash
# Runs upstream Kubernetes' conformance specs (e2e.test, built from source)
# against a fresh Seed cluster on Docker:
#
#   hack/conformance.sh full    every [Conformance] spec (make conformance)
#   hack/conformance.sh ci      the CI subset: the [Conformance] specs of
#                               Services, DNS, pod networking, Pods and
#                               Deployments (hack/test.sh e2e under CI=true)
#
# It builds what it needs (cached): the node and agent images and, through
# hack/build-conformance.sh, e2e.test, ginkgo and the images the specs run.
# It brings up a cluster of one control plane and two workers with
# `seed up`, as a user would, loads the test images into every machine with
# `seed load image` (so a machine the agent replaces gets them too), runs
# the specs with ginkgo, prints how many passed, failed and were skipped,
# with the names of the failures, and deletes the cluster.
#
# Nothing in the focus is skipped but the specs in SKIPS below, each for an
# image that cannot be built offline, listed with its reason. A failure is
# a finding, not a spec to skip.
#
# Results go to $(seed::cache_dir)/conformance-last/: ginkgo.log, junit.xml,
# report.json (ginkgo's), summary.txt, and on failure the cluster's state.
#
#   SEED_CONFORMANCE_PROCS=N    ginkgo processes (default 4)
#   SEED_CONFORMANCE_FOCUS=RE   run only the specs matching RE (debugging)
#   SEED_CONFORMANCE_KEEP=1     keep the cluster afterwards
set -euo pipefail
shopt -s inherit_errexit
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(seed::root)"

# The Kubernetes version the cluster runs and e2e.test is built at: Seed's
# default (pkg/api/v1alpha1).
readonly VERSION=v1.34.2
# The CI subset: about 50 specs, two minutes on two cores.
readonly CI_FOCUS='\[sig-network\] (Services|DNS|Networking) .*\[Conformance\]|\[sig-node\] Pods .*\[Conformance\]|\[sig-apps\] Deployment .*\[Conformance\]'
readonly FULL_FOCUS='\[Conformance\]'
# Specs not run for want of an image that can be built offline: "regular
# expression|reason", one per entry. hack/build-conformance.sh builds every
# image the [Conformance] specs of v1.34.2 run (its missing-images.txt
# lists the suite's others, which only non-conformance specs use), so the
# list is empty; a spec that fails pulling an image is reported as such.
readonly SKIPS=()
readonly WORKERS=2

mode=${1:-full}
case $mode in
  full) focus=$FULL_FOCUS timeout=4h ;;
  ci) focus=$CI_FOCUS timeout=40m ;;
  *) seed::die "unknown mode $mode: use full or ci" ;;
esac
focus=${SEED_CONFORMANCE_FOCUS:-$focus}
procs=${SEED_CONFORMANCE_PROCS:-4}

out="$(seed::cache_dir)/conformance-last"
cluster="conformance-$(date +%s%N | tail -c 7)"
spec="$out/cluster.yaml"
kubeconfig="$out/kubeconfig"
kubectl=  # set by main: the kubectl of the cluster's version

# teardown deletes the cluster, unless asked to keep it.
teardown() {
  local rc=$?
  if [[ ${SEED_CONFORMANCE_KEEP:-} == 1 ]]; then
    seed::log "Keeping cluster $cluster (SEED_CONFORMANCE_KEEP=1): kubectl --kubeconfig $kubeconfig; bin/seed down -f $spec --kubeconfig $kubeconfig"
  elif [[ -f $spec ]]; then
    seed::log "Deleting cluster $cluster"
    bin/seed down -f "$spec" --kubeconfig "$kubeconfig" >&2 || seed::log "Warning: seed down failed; run bin/seed down -f $spec"
  fi
  return "$rc"
}

# wait_for_nodes waits until N nodes are Ready.
wait_for_nodes() {
  local want=$1 deadline=$((SECONDS + 600)) ready=0
  while ((SECONDS < deadline)); do
    ready=$("$kubectl" --kubeconfig "$kubeconfig" get nodes \
      -o jsonpath='{range .items[*]}{range .status.conditions[?(@.type=="Ready")]}{.status}{"\n"}{end}{end}' 2>/dev/null | grep -c '^True$' || true)
    ((ready >= want)) && return 0
    sleep 5
  done
  "$kubectl" --kubeconfig "$kubeconfig" get nodes -o wide >&2 || true
  seed::die "only $ready of $want nodes Ready after 10 minutes"
}

# diagnostics saves what the cluster looks like, for a failed run.
diagnostics() {
  {
    "$kubectl" --kubeconfig "$kubeconfig" get nodes -o wide
    "$kubectl" --kubeconfig "$kubeconfig" get pods -A -o wide
    bin/seed status --name "$cluster" --kubeconfig "$kubeconfig"
  } >"$out/cluster-state.txt" 2>&1 || true
}

# summarize reads ginkgo's JSON report and prints the figures; its exit
# status says whether every selected spec ran and passed.
summarize() {
  local report=$1 skip_re=$2 wall=$3
  # One line per spec: its state, whether it was attempted (a spec the
  # focus or skip leaves out is "skipped" with no attempt), its full name,
  # the first line of its failure or skip message.
  local specs
  specs=$(jq -r '.[].SpecReports[]? | select(.LeafNodeType == "It")
    | [.State, (if (.NumAttempts // 0) > 0 then "attempted" else "left-out" end),
       (((.ContainerHierarchyTexts // []) + [.LeafNodeText]) | join(" ")),
       ((.Failure.Message // "") | split("\n") | map(select(length > 0)) | first // "")] | @tsv' "$report")
  local conformance selected passed failed runtime_skips image_skips
  conformance=$(awk -F'\t' 'index($3, "[Conformance]")' <<<"$specs")
  selected=$(awk -F'\t' '{ print $3 }' <<<"$conformance" | grep -E -- "$focus" || true)
  passed=$(awk -F'\t' '$2 == "attempted" && $1 == "passed"' <<<"$specs")
  failed=$(awk -F'\t' '$2 == "attempted" && $1 != "passed" && $1 != "skipped"' <<<"$specs")
  runtime_skips=$(awk -F'\t' '$2 == "attempted" && $1 == "skipped"' <<<"$specs")
  image_skips=
  if [[ -n $skip_re ]]; then
    image_skips=$(grep -E -- "$skip_re" <<<"$selected" || true)
  fi
  local n_total n_selected n_passed n_failed n_runtime n_image n_not_run
  n_total=$(grep -c . <<<"$conformance" || true)
  n_selected=$(grep -c . <<<"$selected" || true)
  n_passed=$(grep -c . <<<"$passed" || true)
  n_failed=$(grep -c . <<<"$failed" || true)
  n_runtime=$(grep -c . <<<"$runtime_skips" || true)
  n_image=$(grep -c . <<<"$image_skips" || true)
  n_not_run=$((n_selected - n_passed - n_failed - n_runtime - n_image))
  {
    echo "Conformance ($mode), Kubernetes $VERSION, 1 control plane + $WORKERS workers, $procs ginkgo processes"
    echo "  [Conformance] specs in e2e.test: $n_total"
    echo "  selected (/$focus/): $n_selected"
    echo "  ran: $((n_passed + n_failed)) (passed $n_passed, failed $n_failed)"
    echo "  skipped by the specs themselves: $n_runtime"
    echo "  not run for want of an image: $n_image"
    ((n_not_run == 0)) || echo "  selected but never started (the suite stopped early): $n_not_run"
    echo "  wall time of the specs: ${wall}s"
    if ((n_failed > 0)); then
      echo "Failed:"
      awk -F'\t' '{ printf "  - %s\n      %s: %s\n", $3, $1, $4 }' <<<"$failed"
    fi
    if ((n_runtime > 0)); then
      echo "Skipped by the specs themselves:"
      awk -F'\t' '{ printf "  - %s\n      %s\n", $3, $4 }' <<<"$runtime_skips"
    fi
    if ((n_image > 0)); then
      echo "Not run for want of an image (SKIPS in hack/conformance.sh):"
      local entry
      for entry in "${SKIPS[@]}"; do
        echo "  - /${entry%%|*}/: ${entry#*|}"
      done
      awk '{ print "    " $0 }' <<<"$image_skips"
    fi
  } | tee "$out/summary.txt" >&2
  ((n_failed == 0 && n_not_run == 0 && n_passed > 0))
}

main() {
  local start=$SECONDS
  hack/ensure-docker.sh
  seed::need jq
  seed::guard_cluster_ranges
  seed::log "Building the node and agent images and the conformance binaries and images (cached)"
  local agent_image bin
  # The spec's default node image, seed-node:$VERSION.
  hack/build-images.sh "$VERSION" >/dev/null
  agent_image=$(hack/build-agent-image.sh | tail -1)
  bin=$(hack/build-conformance.sh "$VERSION" | tail -1)
  kubectl="$bin/kubectl"
  [[ -x $bin/e2e.test && -x $bin/ginkgo && -x $kubectl ]] || seed::die "hack/build-conformance.sh left no e2e.test, ginkgo or kubectl in $bin"

  rm -rf "$out"
  mkdir -p "$out"
  cat >"$spec" <<EOF
apiVersion: seed.dev/v1alpha1
kind: Cluster
metadata:
  name: $cluster
spec:
  kubernetesVersion: $VERSION
  provider:
    docker: {}
  nodePools:
  - name: workers
    replicas: $WORKERS
EOF
  trap teardown EXIT
  seed::log "Bringing up cluster $cluster (1 control plane + $WORKERS workers)"
  local t=$SECONDS
  bin/seed up -f "$spec" --kubeconfig "$kubeconfig" --agent-image "$agent_image" >&2
  wait_for_nodes $((1 + WORKERS))
  seed::log "Cluster up with $((1 + WORKERS)) Ready nodes in $((SECONDS - t))s"

  local -a images
  mapfile -t images < <(grep . "$bin/images.txt")
  t=$SECONDS
  bin/seed load image --name "$cluster" --kubeconfig "$kubeconfig" "${images[@]}" >&2
  seed::log "Loaded ${#images[@]} images into every machine in $((SECONDS - t))s"

  local skip_re="" entry
  for entry in "${SKIPS[@]}"; do
    skip_re+="${skip_re:+|}${entry%%|*}"
  done
  local -a skip_flag=()
  [[ -z $skip_re ]] || skip_flag=("--skip=$skip_re")
  seed::log "Running the specs matching /$focus/ with $procs processes (log: $out/ginkgo.log)"
  t=$SECONDS
  local rc=0
  set +e
  "$bin/ginkgo" --procs="$procs" --timeout="$timeout" --no-color --silence-skips \
    --focus="$focus" "${skip_flag[@]}" \
    --output-dir="$out" --junit-report=junit.xml --json-report=report.json \
    "$bin/e2e.test" -- \
    --provider=skeleton --kubeconfig="$kubeconfig" --kubectl-path="$kubectl" 2>&1 |
    tee "$out/ginkgo.log" |
    grep --line-buffered -E '^(Will run|Running in parallel|Ran |SUCCESS|FAIL)|\[(FAILED|PANICKED|TIMEDOUT|INTERRUPTED)\]'
  rc=${PIPESTATUS[0]}
  set -e
  local wall=$((SECONDS - t))
  [[ -s $out/report.json ]] || seed::die "ginkgo wrote no report (exit $rc); see $out/ginkgo.log"
  local verdict=0
  summarize "$out/report.json" "$skip_re" "$wall" || verdict=1
  if ((rc != 0 || verdict != 0)); then
    diagnostics
    seed::die "conformance ($mode) failed (ginkgo exit $rc); results in $out"
  fi
  seed::log "Conformance ($mode) passed in $((SECONDS - start))s; results in $out"
}

main "$@"
