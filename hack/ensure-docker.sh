#!/usr/bin/env bash
# Makes sure a Docker engine answers on /var/run/docker.sock: installs
# Debian's docker.io when the engine is missing and starts dockerd by hand when
# no service manager does. Fails, saying why, when it cannot.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Every machine is a container whose systemd, kubelet and containerd hold
# inotify instances as root on the host: about 15 a machine, against
# Linux's default of 128 for all of root. Past about eight machines (two
# clusters of four, say) a new machine's systemd gets none: its path units
# fail (seed-load-images.path among them) and its bootstrap stalls for
# minutes. kind's users meet the same limit. Raise, never lower, both
# limits; without root, say what to run.
raise_inotify() {
  local key want have
  for key in max_user_instances:8192 max_user_watches:524288; do
    want=${key#*:} key=fs.inotify.${key%%:*}
    have=$(sysctl -n "$key" 2>/dev/null) || continue
    [ "$have" -lt "$want" ] || continue
    if [ "$(id -u)" = 0 ] && sysctl -q -w "$key=$want" 2>/dev/null; then
      seed::log "Raised $key from $have to $want (each machine holds some; see hack/ensure-docker.sh)"
    else
      seed::log "warning: $key is $have: with many machines running, new ones may fail to boot; raise it: sudo sysctl -w $key=$want"
    fi
  done
}
raise_inotify

if docker info >/dev/null 2>&1; then
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || seed::die "Docker is not installed and installing it needs root: run 'sudo apt-get install docker.io' or install Docker yourself"
  seed::log "Installing Debian's docker.io"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || seed::die "apt-get update failed; Docker cannot be installed"
  apt-get install -y -qq docker.io >/dev/null || seed::die "apt-get install docker.io failed"
fi

if ! docker info >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || seed::die "the Docker engine is not running and starting it needs root"
  log="$(seed::cache_dir)/dockerd.log"
  seed::log "Starting dockerd (log: $log)"
  # No service manager on these machines: run the engine detached from this
  # shell so it outlives the script, and without the caller's other open
  # files: a daemon holding a caller's lock or pipe would keep it for good.
  (
    for fd in /proc/self/fd/*; do
      fd=${fd##*/}
      if [ "$fd" -gt 2 ] 2>/dev/null; then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    exec nohup setsid dockerd >"$log" 2>&1 </dev/null
  ) &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { tail -20 "$log" >&2; seed::die "dockerd did not become ready within 30s"; }
fi
seed::log "Docker engine ready: $(docker version --format '{{.Server.Version}}')"
