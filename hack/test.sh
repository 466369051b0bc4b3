#!/usr/bin/env bash
# Runs the tests:
#   hack/test.sh all          unit + integration + e2e (what `make test` and CI run)
#   hack/test.sh unit         packages that need nothing but Go
#   hack/test.sh integration  everything but e2e, with a real kube-apiserver + etcd
#   hack/test.sh e2e          end-to-end: real clusters in Docker, through `seed up`
#
# Heavy inputs (Kubernetes and etcd built from source, node images) are built
# on first use and cached outside the repository (see hack/lib.sh). Under
# CI=true nothing is skipped: a missing prerequisite fails the run, saying why.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(seed::root)"

mode=${1:-all}
# The version TestUpgrade upgrades from: the newest v1.33 patch the Go module
# proxy serves (the default, v1.34.2, is where it goes).
readonly UPGRADE_FROM=v1.33.13
start=$(date +%s)
package_list=$(go list ./... | grep -v '/e2e')
mapfile -t packages <<<"$package_list"

integration_env() {
  seed::log "Building Kubernetes, etcd and kwok from source (cached)"
  SEED_KUBE_BIN_DIR=$(hack/build-kube.sh | tail -n1)
  SEED_ETCD_BIN_DIR=$(hack/build-etcd.sh | tail -n1)
  # agent/backup runs the real Velero server against the store.
  seed::log "Building Velero and its S3 plugin from source (cached)"
  SEED_VELERO_BIN_DIR=$(hack/build-velero.sh --bin-dir | tail -n1)
  # kwok plays the kubelets of pkg/scaleenv's simulated machines (TestScale1000).
  SEED_KWOK_BIN_DIR=$(hack/build-kwok.sh | tail -n1)
  export SEED_KUBE_BIN_DIR SEED_ETCD_BIN_DIR SEED_VELERO_BIN_DIR SEED_KWOK_BIN_DIR
}

# store_image builds the Docker provider's backup store (versitygw), which
# its real-engine test and agent/backup's Velero test run; without an
# engine those skip anyway.
store_image() {
  if docker info >/dev/null 2>&1; then
    seed::log "Building the backup store image (cached)"
    SEED_BACKUP_STORE_IMAGE=$(hack/build-versitygw.sh | tail -n1)
    export SEED_BACKUP_STORE_IMAGE
  fi
}

run_unit() {
  seed::log "Unit tests"
  # testenv-backed packages skip without binaries outside CI; unit mode is
  # meant for a quick loop, so point them at nothing and let them skip.
  CI='' SEED_KUBE_BIN_DIR=/nonexistent go test -count=1 "${packages[@]}"
  run_monitoring
  run_parity
}

# run_monitoring checks manifests/monitoring, a module of its own so that
# Prometheus' rule parser stays out of the root module.
run_monitoring() {
  seed::log "Monitoring manifests (manifests/monitoring/check)"
  (cd manifests/monitoring/check && go test -count=1 ./...)
}

# run_parity checks pkg/autoscale's fit checks against kube-scheduler's own
# filter plugins, in a module of its own so that k8s.io/kubernetes stays out
# of the root module (see hack/parity.sh).
run_parity() {
  seed::log "Parity with kube-scheduler (pkg/autoscale/parity)"
  hack/parity.sh
}

run_integration() {
  # The Docker provider's real-engine test runs with the integration tests;
  # under CI it must not skip, so the engine is installed and started first.
  if [ -n "${CI:-}" ]; then
    hack/ensure-docker.sh
  else
    hack/ensure-docker.sh || seed::log "No Docker engine: the Docker provider's real-engine test will skip"
  fi
  integration_env
  store_image
  seed::log "Unit and integration tests"
  go test -count=1 -timeout 30m "${packages[@]}"
  if [[ -n ${checks_later:-} ]]; then
    # A full run checks the two side modules in the background of the
    # end-to-end tests (see run_all); their verdict comes at the end.
    return
  fi
  run_monitoring
  run_parity
}

# run_all is every test. What is not timing-sensitive and only compiles
# and runs Go (the side modules' checks) or builds what only later tests
# need runs at the lowest priority beside the rest, in the CPU that builds'
# links and downloads and the tests' waits leave idle; on a cold machine
# that is most of half an hour of builds.
run_all() {
  hack/ensure-docker.sh
  local dir
  dir=$(seed::cache_dir)
  # The upgrade tests' Kubernetes (the previous minor). Nothing waits for
  # it: the node image's build in the end-to-end phase asks for it again,
  # which waits on its lock (and builds it again had it failed).
  nice -n 19 hack/build-kube.sh "$UPGRADE_FROM" >"$dir/background-kube.log" 2>&1 &
  checks_later=1
  run_integration
  (
    exec >"$dir/background-checks.log" 2>&1
    renice -n 19 "$BASHPID" >/dev/null
    run_monitoring && run_parity
  ) &
  local checks=$!
  local rc=0
  # A process of its own, so that errexit holds in it (a function called
  # left of || runs without it).
  "$(seed::root)/hack/test.sh" e2e || rc=$?
  if wait "$checks"; then
    seed::log "Side modules (monitoring manifests, parity with kube-scheduler) passed in the background"
  else
    cat "$dir/background-checks.log" >&2
    seed::log "Side module checks failed (above; log: $dir/background-checks.log)"
    rc=1
  fi
  return "$rc"
}

# background_builds starts, at the lowest priority, what only the later
# end-to-end tests need: the previous minor's node image, which the upgrade
# tests wait for, holding no cluster slot, through SEED_UPGRADE_FROM_STATUS, then
# upstream's conformance binaries and images, needed after the Go tests.
# Most of an end-to-end test is waiting, so they take the CPU the clusters
# leave idle; on a cold machine that hides a quarter of an hour of builds.
background_builds() {
  local dir
  dir=$(seed::cache_dir)
  SEED_UPGRADE_FROM_IMAGE=seed-node:$UPGRADE_FROM
  SEED_UPGRADE_FROM_STATUS="$dir/upgrade-image.status"
  rm -f "$SEED_UPGRADE_FROM_STATUS"
  (
    exec >"$dir/background-build.log" 2>&1
    if img=$(nice -n 19 hack/build-images.sh "$UPGRADE_FROM" | tail -n1) && [[ $img == "$SEED_UPGRADE_FROM_IMAGE" ]]; then
      echo "ok $img" >"$SEED_UPGRADE_FROM_STATUS.new"
    else
      echo "failed: hack/build-images.sh $UPGRADE_FROM (log: $dir/background-build.log)" >"$SEED_UPGRADE_FROM_STATUS.new"
    fi
    mv "$SEED_UPGRADE_FROM_STATUS.new" "$SEED_UPGRADE_FROM_STATUS"
    if want_conformance; then
      nice -n 19 hack/build-conformance.sh "$CONFORMANCE_VERSION"
    fi
  ) &
  background=$!
}

run_e2e() {
  hack/ensure-docker.sh
  seed::guard_cluster_ranges
  seed::log "Building images for end-to-end tests (cached)"
  SEED_NODE_IMAGE=$(hack/build-images.sh | tail -n1)
  SEED_AGENT_IMAGE=$(hack/build-agent-image.sh | tail -n1)
  # Clusters with backups enabled: Velero's images go to their control
  # planes, and seed up runs the store from its image, which the backup
  # drills (e2e/backup_test.go) find in SEED_BACKUP_STORE_IMAGE.
  hack/build-velero.sh >/dev/null
  SEED_BACKUP_STORE_IMAGE=$(hack/build-versitygw.sh | tail -n1)
  background_builds
  export SEED_NODE_IMAGE SEED_UPGRADE_FROM_IMAGE SEED_UPGRADE_FROM_STATUS SEED_AGENT_IMAGE SEED_BACKUP_STORE_IMAGE SEED_E2E=1
  seed::log "End-to-end tests (node image $SEED_NODE_IMAGE, agent image $SEED_AGENT_IMAGE)"
  local log rc
  log="$(seed::cache_dir)/e2e-last.log"
  # The full log goes to a file; the console gets test names, verdicts and
  # failure lines as they happen.
  set +e
  # framework.Parallel bounds the clusters at once (SEED_E2E_PARALLEL, 2
  # by default); -parallel only has to let every test wait for a slot.
  go test -count=1 -timeout 60m -parallel 64 -v ./e2e/ 2>&1 | tee "$log" | grep --line-buffered -E '^(=== (RUN|CONT)|--- |PASS|FAIL|ok|panic)|_test.go:[0-9]+:'
  rc=${PIPESTATUS[0]}
  set -e
  [ "$rc" -eq 0 ] || seed::log "End-to-end tests failed; full log: $log"
  if ! wait "$background"; then
    seed::log "A background build failed (log: $(seed::cache_dir)/background-build.log); hack/conformance.sh tries again"
  fi
  # Upstream's conformance specs run whatever the Go tests made of the
  # cluster code, so they run even after a failure: two verdicts per run.
  local conformance=0
  run_conformance_subset || conformance=$?
  [ "$rc" -eq 0 ] || return "$rc"
  return "$conformance"
}

# The Kubernetes version hack/conformance.sh tests (its VERSION).
readonly CONFORMANCE_VERSION=v1.34.2

want_conformance() { [[ ${CI:-} == true || ${SEED_CONFORMANCE:-} == 1 ]]; }

# run_conformance_subset runs the CI subset of upstream's [Conformance]
# specs (hack/conformance.sh ci: Services, DNS, pod networking, Pods,
# Deployments) against a fresh cluster. It costs minutes, so outside CI it
# runs only when asked (SEED_CONFORMANCE=1); `make conformance` runs them all.
run_conformance_subset() {
  if ! want_conformance; then
    seed::log "Not running the upstream conformance subset (CI is not true; SEED_CONFORMANCE=1 or hack/conformance.sh ci runs it)"
    return 0
  fi
  hack/conformance.sh ci
}

case "$mode" in
  unit) run_unit ;;
  integration) run_integration ;;
  e2e) run_e2e ;;
  all) run_all ;;
  *) seed::die "unknown mode $mode: use all, unit, integration or e2e" ;;
esac
seed::log "Tests ($mode) passed in $(( $(date +%s) - start ))s"
