#!/usr/bin/env bash
# Prints the performance figures the issues set goals for. Benchmarks, not
# tests: nothing here fails on a slow machine, it reports.
#   hack/bench.sh            everything
#   hack/bench.sh unit       planner, spec-edit latency (real kube-apiserver), provider call counts
#   hack/bench.sh cluster    seed up hand-off vs raw kubeadm init (real clusters in Docker)
#   hack/bench.sh upgrade    a v1.33 → v1.34 upgrade of 1 control plane + 2 workers under load
#   hack/bench.sh scale      bin/agent at 10 and 1,000 simulated machines (kwok); SEED_BENCH_SCALE_SIZES=10,1000,5000 adds 5,000;
#                            then the autoscale burst below
#   hack/bench.sh autoscale  a burst of N pending pods on an autoscaled pool of 0..N (SEED_BENCH_BURST_SIZES, default 10,1000),
#                            then 30 small pods a node at rest (SEED_BENCH_REST_PODS_PER_NODE, 0 skips)
#   hack/bench.sh backup     seed backup and seed restore of the restore drill's namespace (one real cluster in Docker)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(seed::root)"
mode=${1:-all}
runs=${SEED_BENCH_RUNS:-5}

unit() {
  SEED_KUBE_BIN_DIR=$(hack/build-kube.sh | tail -n1)
  SEED_ETCD_BIN_DIR=$(hack/build-etcd.sh | tail -n1)
  export SEED_KUBE_BIN_DIR SEED_ETCD_BIN_DIR
  seed::log "Planner over 1,000 machines"
  go test ./pkg/plan/ -run '^$' -bench . -benchmem
  seed::log "Spec ConfigMap edit → first provider call (real kube-apiserver, fake provider)"
  go test ./agent/controller/ -run '^$' -bench BenchmarkSpecEditToProviderCall -benchtime=30x
  if [ -d providers/aws ]; then
    seed::log "AWS provider: EC2 calls per scale-up and per idle minute"
    go test ./providers/aws/... -run '^$' -bench . -benchtime=1x
  fi
}

cluster() {
  hack/ensure-docker.sh
  SEED_NODE_IMAGE=$(hack/build-images.sh | tail -n1)
  SEED_AGENT_IMAGE=$(hack/build-agent-image.sh | tail -n1)
  export SEED_NODE_IMAGE SEED_AGENT_IMAGE SEED_E2E=1
  seed::log "seed up to hand-off vs raw kubeadm init, $runs runs each (cached images)"
  go test ./e2e/ -run '^$' -bench 'BenchmarkHandOff|BenchmarkRawKubeadmInit' -benchtime="${runs}x" -timeout 60m
  seed::log "Self-management: edit → machine, 0→3 Ready vs 3 raw joins, removed worker replaced, agent RSS"
  go test ./e2e/ -run '^$' -bench 'BenchmarkSelfManagement' -benchtime="${SEED_BENCH_SCALE_RUNS:-3}x" -timeout 60m
  seed::log "Binary sizes: seed $(du -h bin/seed | cut -f1), agent $(du -h bin/agent | cut -f1)"
}

# upgrade_version NAME prints the version e2e/upgrade_test.go upgrades from
# (upgradeFrom) or to (upgradeTo): the one place they are set.
upgrade_version() {
  local value
  value=$(sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*\"\(v[0-9.]*\)\"/\1/p" e2e/upgrade_test.go)
  [[ $value =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || seed::die "cannot read $1 from e2e/upgrade_test.go (got '$value')"
  echo "$value"
}

upgrade() {
  hack/ensure-docker.sh
  local from to
  from=$(upgrade_version upgradeFrom)
  to=$(upgrade_version upgradeTo)
  # Each version's own node image, under its default name: the upgrade
  # needs both, and the spec pins neither.
  hack/build-images.sh "$from" >/dev/null
  hack/build-images.sh "$to" >/dev/null
  SEED_AGENT_IMAGE=$(hack/build-agent-image.sh | tail -n1)
  export SEED_AGENT_IMAGE SEED_E2E=1
  unset SEED_NODE_IMAGE
  seed::log "Upgrade $from → $to (1 control plane, 2 workers, a workload under a budget), ${SEED_BENCH_UPGRADE_RUNS:-1} run(s)"
  go test ./e2e/ -run '^$' -bench 'BenchmarkUpgrade' -benchtime="${SEED_BENCH_UPGRADE_RUNS:-1}x" -timeout 90m
}

# scale_tools builds (cached) what the scale harness runs: kube-apiserver
# and the other control-plane binaries, etcd and kwok.
scale_tools() {
  SEED_KUBE_BIN_DIR=$(hack/build-kube.sh | tail -n1)
  SEED_ETCD_BIN_DIR=$(hack/build-etcd.sh | tail -n1)
  SEED_KWOK_BIN_DIR=$(hack/build-kwok.sh | tail -n1)
  export SEED_KUBE_BIN_DIR SEED_ETCD_BIN_DIR SEED_KWOK_BIN_DIR
}

scale() {
  scale_tools
  seed::log "Agent at scale (${SEED_BENCH_SCALE_SIZES:-10,1000} simulated machines): RSS, pass p50/p99, API requests, object sizes"
  go test ./pkg/scaleenv/ -run '^$' -bench BenchmarkAgentScale -benchtime=1x -timeout 120m -v
  autoscale
}

autoscale() {
  scale_tools
  seed::log "Autoscaler burst (${SEED_BENCH_BURST_SIZES:-10,1000} pending pods, one machine each): decision latency, creates issued, pods Running, over-provisioning, RSS, API requests; RSS at rest with ${SEED_BENCH_REST_PODS_PER_NODE:-30} pods a node"
  go test ./pkg/scaleenv/ -run '^$' -bench BenchmarkAutoscaleBurst -benchtime=1x -timeout 120m -v
}

backup() {
  hack/ensure-docker.sh
  SEED_NODE_IMAGE=$(hack/build-images.sh | tail -n1)
  SEED_AGENT_IMAGE=$(hack/build-agent-image.sh | tail -n1)
  hack/build-velero.sh >/dev/null
  SEED_BACKUP_STORE_IMAGE=$(hack/build-versitygw.sh | tail -n1)
  export SEED_NODE_IMAGE SEED_AGENT_IMAGE SEED_BACKUP_STORE_IMAGE SEED_E2E=1
  seed::log "seed backup and seed restore of the drill's namespace (ConfigMap, Secret, Deployment), ${SEED_BENCH_BACKUP_RUNS:-5} runs on one cluster"
  go test ./e2e/ -run '^$' -bench 'BenchmarkBackupRestore' -benchtime="${SEED_BENCH_BACKUP_RUNS:-5}x" -timeout 40m
}

case "$mode" in
  unit) unit ;;
  backup) backup ;;
  scale) scale ;;
  autoscale) autoscale ;;
  cluster) cluster ;;
  upgrade) upgrade ;;
  all) unit; scale; cluster; upgrade; backup ;;
  *) seed::die "unknown mode $mode: use all, unit, scale, autoscale, cluster, upgrade or backup" ;;
esac
