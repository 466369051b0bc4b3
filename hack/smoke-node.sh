#!/usr/bin/env bash
# Proves the node image by hand, without the Docker provider: runs a node
# container with the documented flags, gives it pkg/bootstrap's ControlPlane
# files and script the way the provider does (docker cp before start), then
# checks that kubeadm init succeeds, the Node becomes Ready, CoreDNS becomes
# Ready and a pod resolves kubernetes.default. Then a second container joins
# as a worker (pkg/bootstrap's Join, with a token from `kubeadm token create`)
# and a pod on the control plane fetches from a pod on the worker. Everything
# it made is removed at the end, unless SEED_SMOKE_KEEP=1.
#
#   hack/smoke-node.sh [VERSION]     VERSION defaults to v1.34.2
#   SEED_SMOKE_WORKER=0              skip the worker half
set -euo pipefail
shopt -s inherit_errexit
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

readonly DEFAULT_VERSION=v1.34.2
readonly PREFIX=seed-smoke
readonly NETWORK=$PREFIX
readonly CP=$PREFIX-control-plane
readonly WORKER=$PREFIX-worker
readonly PROBE_IMAGE=seed.local/probe:smoke
readonly TIMEOUT=${SEED_SMOKE_TIMEOUT:-300}

# The flags of images/node/README.md: keep the two in step.
node_flags() {
  local name=$1
  printf '%s\n' \
    --name "$name" --hostname "$name" --network "$NETWORK" \
    --label "seed.dev/cluster=smoke" --label "seed.dev/machine=$name" \
    --cgroupns=private \
    --cap-add=ALL --cap-drop=SYS_RESOURCE \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
    --security-opt systempaths=unconfined \
    --device-cgroup-rule 'a *:* rwm' \
    --tmpfs /run --tmpfs /tmp \
    --volume /var \
    --stop-signal SIGRTMIN+3
}

cleanup() {
  local rc=$?
  if [[ ${SEED_SMOKE_KEEP:-0} == 1 ]]; then
    seed::log "Keeping $CP, $WORKER and network $NETWORK (SEED_SMOKE_KEEP=1)"
  else
    docker rm -f -v "$CP" "$WORKER" >/dev/null 2>&1 || true
    docker network rm "$NETWORK" >/dev/null 2>&1 || true
    docker rmi "$PROBE_IMAGE" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
  exit $rc
}

# elapsed prints seconds since the control plane started, to a tenth.
elapsed() { echo "$(( ($(date +%s%N) - T0) / 100000000 ))" | sed 's/.$/.&/'; }

kubectl_cp() { docker exec "$CP" kubectl --kubeconfig /etc/kubernetes/admin.conf "$@"; }
kubectl_apply() { docker exec -i "$CP" kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f - >/dev/null; }

# wait_for runs "$@" until it succeeds or TIMEOUT passes, quietly.
wait_for() {
  local what=$1
  shift
  local deadline=$((SECONDS + TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS > deadline)); then
      seed::log "Timed out waiting for $what; last attempt said:"
      "$@" >&2 || true
      dump
      seed::die "$what did not happen within ${TIMEOUT}s"
    fi
    sleep 0.5
  done
}

dump() {
  local n
  for n in "$CP" "$WORKER"; do
    docker inspect "$n" >/dev/null 2>&1 || continue
    seed::log "--- $n: bootstrap log, failed units, kubelet"
    docker exec "$n" cat /var/log/seed-bootstrap.log >&2 || true
    docker exec "$n" systemctl --failed --no-pager >&2 || true
    docker exec "$n" journalctl -u kubelet --no-pager -n 30 >&2 || true
  done
  kubectl_cp get nodes,pods -A -o wide >&2 || true
}

# start_node creates a node container, copies the machine's files into it
# (as the Docker provider does, before the first boot), and starts it.
start_node() {
  local name=$1 dir=$2
  local -a flags
  mapfile -t flags < <(node_flags "$name")
  docker create "${flags[@]}" "$NODE_IMAGE" >/dev/null
  docker cp "$dir/." "$name:/"
  docker start "$name" >/dev/null
}

load_probe() { docker exec -i "$1" ctr -n k8s.io images import - <"$WORK/probe.tar" >/dev/null; }

node_ready() {
  [[ $(kubectl_cp get node "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}') == True ]]
}

coredns_ready() {
  local ready
  ready=$(kubectl_cp -n kube-system get pods -l k8s-app=kube-dns \
    -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}')
  [[ -n $ready && $ready != *False* ]]
}

pod_succeeded() { [[ $(kubectl_cp get pod "$1" -o jsonpath='{.status.phase}') == Succeeded ]]; }
pod_running() { [[ $(kubectl_cp get pod "$1" -o jsonpath='{.status.phase}') == Running ]]; }

# run_probe runs the probe image as a pod on node $2 with arguments $3...
run_probe() {
  local pod=$1 node=$2
  shift 2
  local args
  args=$(printf '"%s",' "$@")
  kubectl_apply <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $pod
  labels: {app: $pod}
spec:
  nodeName: $node
  restartPolicy: Never
  containers:
    - name: probe
      image: $PROBE_IMAGE
      imagePullPolicy: Never
      command: ["/probe", ${args%,}]
EOF
}

main() {
  local version=${1:-$DEFAULT_VERSION}
  local root
  root=$(seed::root)
  "$root/hack/ensure-docker.sh"

  NODE_IMAGE=$("$root/hack/build-images.sh" "$version" | tail -1)
  WORK=$(mktemp -d)
  trap cleanup EXIT
  docker rm -f -v "$CP" "$WORKER" >/dev/null 2>&1 || true
  docker network rm "$NETWORK" >/dev/null 2>&1 || true

  seed::log "Building the probe image"
  (cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$WORK/probe-ctx/probe" ./images/node/probe)
  printf 'FROM scratch\nCOPY probe /probe\nENTRYPOINT ["/probe"]\n' >"$WORK/probe-ctx/Dockerfile"
  DOCKER_BUILDKIT=0 docker build -q -t "$PROBE_IMAGE" "$WORK/probe-ctx" >/dev/null
  docker save "$PROBE_IMAGE" -o "$WORK/probe.tar"

  seed::log "Rendering the control plane's bootstrap"
  (cd "$root" && go build -o "$WORK/render" ./images/node/render)
  "$WORK/render" --role control-plane --out "$WORK/cp" --ca-dir "$WORK/ca" --cluster smoke \
    --version "$version" --endpoint "$CP:6443" --machine "$CP" --pool control-plane \
    --sans "$CP,localhost,127.0.0.1" --provider-id "seed://docker/smoke/$CP"

  docker network create --label seed.dev/cluster=smoke "$NETWORK" >/dev/null
  seed::log "Starting $CP from $NODE_IMAGE"
  T0=$(date +%s%N)
  start_node "$CP" "$WORK/cp"

  wait_for "the API server" docker exec "$CP" kubectl --kubeconfig /etc/kubernetes/admin.conf get --raw /readyz
  local t_api t_ready t_dns
  t_api=$(elapsed)
  seed::log "API server ready after ${t_api}s"
  wait_for "Node $CP Ready" node_ready "$CP"
  t_ready=$(elapsed)
  seed::log "Node Ready after ${t_ready}s"
  wait_for "CoreDNS pods" coredns_ready
  t_dns=$(elapsed)
  seed::log "CoreDNS Ready after ${t_dns}s"
  wait_for "the bootstrap marker" docker exec "$CP" test -e /var/lib/seed/bootstrap/done

  local provider_id
  provider_id=$(kubectl_cp get node "$CP" -o jsonpath='{.spec.providerID}')
  [[ $provider_id == "seed://docker/smoke/$CP" ]] || seed::die "Node providerID is '$provider_id'"
  [[ $(kubectl_cp get node "$CP" -o jsonpath='{.metadata.labels.seed\.dev/pool}') == control-plane ]] ||
    seed::die "Node lacks the seed.dev/pool label"
  if docker exec "$CP" journalctl -u seed-bootstrap --no-pager | grep -Eq '[a-z0-9]{6}\.[a-z0-9]{16}'; then
    seed::die "the bootstrap journal shows a token"
  fi
  # A second run of the script must do nothing.
  local again
  again=$(docker exec "$CP" bash /var/lib/seed/bootstrap/script 2>&1)
  [[ $again == *"nothing to do"* ]] || seed::die "a second run of the bootstrap script did not stop at the marker: $again"

  seed::log "Resolving kubernetes.default from a pod"
  load_probe "$CP"
  run_probe dns-cp "$CP" resolve kubernetes.default
  wait_for "pod dns-cp to resolve kubernetes.default" pod_succeeded dns-cp
  seed::log "$(kubectl_cp logs dns-cp | tail -1)"

  local t_worker="skipped"
  if [[ ${SEED_SMOKE_WORKER:-1} == 1 ]]; then
    seed::log "Joining $WORKER"
    # The token goes from the control plane to a file, never to the terminal.
    (umask 077 && docker exec "$CP" kubeadm token create --ttl 15m >"$WORK/token")
    "$WORK/render" --role worker --out "$WORK/worker" --ca-dir "$WORK/ca" --cluster smoke \
      --version "$version" --endpoint "$CP:6443" --machine "$WORKER" --pool workers \
      --token-file "$WORK/token" --provider-id "seed://docker/smoke/$WORKER"
    local tw0=$(date +%s%N)
    start_node "$WORKER" "$WORK/worker"
    wait_for "Node $WORKER Ready" node_ready "$WORKER"
    t_worker=$(( ($(date +%s%N) - tw0) / 1000000000 ))
    seed::log "Worker Ready ${t_worker}s after its start"
    docker exec "$WORKER" test ! -e /var/lib/seed/bootstrap/kubeadm.yaml ||
      seed::die "the worker kept its join configuration (and token) on disk"

    load_probe "$WORKER"
    run_probe web-worker "$WORKER" serve :8080
    wait_for "pod web-worker to run" pod_running web-worker
    local ip
    ip=$(kubectl_cp get pod web-worker -o jsonpath='{.status.podIP}')
    seed::log "Fetching from a pod on $WORKER ($ip) through a pod on $CP"
    run_probe get-cp "$CP" get "http://$ip:8080/"
    wait_for "pod get-cp to reach the worker's pod" pod_succeeded get-cp
    seed::log "$(kubectl_cp logs get-cp | tail -1)"
    run_probe dns-worker "$WORKER" resolve kubernetes.default.svc.cluster.local
    wait_for "pod dns-worker to resolve through CoreDNS on the other node" pod_succeeded dns-worker
    seed::log "$(kubectl_cp logs dns-worker | tail -1)"
  fi

  seed::log "PASS: API ${t_api}s, Node Ready ${t_ready}s, CoreDNS Ready ${t_dns}s after docker start; worker Ready ${t_worker}s after its start"
}

main "$@"
