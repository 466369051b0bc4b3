#!/usr/bin/env bash
# Builds everything backups need, each step cached by version and content:
# Velero and its S3 plugin with their images (hack/build-velero.sh), the
# versitygw store and its image (hack/build-versitygw.sh), and etcdutl for
# every etcd version the node images run (hack/build-etcdutl.sh), for
# restoring etcd snapshots. Prints the time each step took; stdout is the
# image references.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(seed::root)"

start=$SECONDS
t=$SECONDS
hack/build-velero.sh
seed::log "Velero: $((SECONDS - t))s"
t=$SECONDS
hack/build-versitygw.sh
seed::log "versitygw: $((SECONDS - t))s"
# The etcd of each Kubernetes minor Seed builds node images for.
for etcd in v3.6.5 "$(sed -n 's/^[[:space:]]*33:[[:space:]]*"\([0-9.]*\)-[0-9]*".*/v\1/p' pkg/bootstrap/etcd.go)"; do
  t=$SECONDS
  hack/build-etcdutl.sh "$etcd" >/dev/null
  seed::log "etcdutl $etcd: $((SECONDS - t))s"
done
seed::log "Backup builds done in $((SECONDS - start))s"
