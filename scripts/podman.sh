#!/usr/bin/env bash
# A real container engine for the test suite and the demo, on this machine, with no registry:
# Debian's Podman (runc, vfs storage) serving the Docker Engine API on a unix socket, and a test
# image built offline from Debian's busybox-static.
#
#   scripts/podman.sh start [DIR]   install what is missing (apt-get), write DIR/containers.conf
#                                   and DIR/storage.conf, import the image, start
#                                   `podman system service` on DIR/podman.sock, and print the
#                                   environment to use it (eval "$(scripts/podman.sh start)")
#   scripts/podman.sh stop [DIR]    stop the service started from DIR
#
# DIR defaults to target/podman. Nothing outside DIR is configured: the project's own
# containers.conf (runtime runc, cgroupfs, default ulimits no higher than the hard limits) and
# storage.conf are passed by CONTAINERS_CONF / CONTAINERS_STORAGE_CONF.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE="localhost/gridlease-test:busybox"
cmd="${1:-}"
dir="$(realpath -m "${2:-target/podman}")"

log() { echo "podman.sh: $*" >&2; }

case "$cmd" in
start)
  missing=()
  command -v podman >/dev/null || missing+=(podman)
  command -v runc >/dev/null || missing+=(runc)
  [[ -x /bin/busybox ]] || missing+=(busybox-static)
  if ((${#missing[@]})); then
    if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
      log "needs ${missing[*]}: install them (Debian: apt-get install podman runc busybox-static)"
      exit 1
    fi
    log "installing ${missing[*]} (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >&2 || { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; }
  fi
  mkdir -p "$dir"
  nofile=$(ulimit -Hn); nproc=$(ulimit -Hu)
  [[ $nofile == unlimited || $nofile -gt 1024 ]] && nofile=1024
  # RLIMIT_NPROC counts every process of a uid on the host, and every job runs as uid 65534: a low
  # default would let one job's fork bomb starve the others (a job's own limit is its pids cgroup).
  # Not above 32768: the service runs with that hard limit, and a container without
  # CAP_SYS_RESOURCE cannot raise its own (runc: "error setting rlimit type 6").
  [[ $nproc == unlimited || $nproc -gt 32768 ]] && nproc=32768
  cat > "$dir/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
  cat > "$dir/storage.conf" <<CONF
[storage]
driver = "vfs"
graphroot = "$dir/storage"
runroot = "$dir/run"
CONF
  export CONTAINERS_CONF="$dir/containers.conf" CONTAINERS_STORAGE_CONF="$dir/storage.conf"
  if ! podman image exists "$IMAGE" 2>/dev/null; then
    rootfs="$dir/rootfs"
    rm -rf "$rootfs" && mkdir -p "$rootfs"/{bin,tmp,etc,proc,sys,dev}
    chmod 1777 "$rootfs/tmp"
    cp /bin/busybox "$rootfs/bin/busybox"
    for applet in $(/bin/busybox --list); do
      [[ $applet == busybox ]] || ln -sf busybox "$rootfs/bin/$applet"
    done
    printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' > "$rootfs/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' > "$rootfs/etc/group"
    tar -C "$rootfs" -c . | podman import --change 'ENV PATH=/bin' - "$IMAGE" >/dev/null
    log "imported $IMAGE"
  fi
  sock="$dir/podman.sock"
  if [[ -f "$dir/service.pid" ]] && kill -0 "$(cat "$dir/service.pid")" 2>/dev/null; then
    log "already serving on $sock"
  else
    rm -f "$sock"
    # From inside DIR: conmon writes files (an `oom` marker when a container is OOM-killed) in
    # the service's working directory.
    (cd "$dir" && exec nohup podman system service --time=0 "unix://$sock" > "$dir/service.log" 2>&1) &
    echo $! > "$dir/service.pid"
    for _ in $(seq 100); do
      [[ -S "$sock" ]] && { ! command -v curl >/dev/null || curl -sf --unix-socket "$sock" http://d/_ping >/dev/null 2>&1; } && break
      sleep 0.1
    done
    [[ -S "$sock" ]] || { log "the service did not start: $(tail -5 "$dir/service.log")"; exit 1; }
    log "serving the Docker API on $sock"
  fi
  echo "export CONTAINERS_CONF=$dir/containers.conf CONTAINERS_STORAGE_CONF=$dir/storage.conf"
  echo "export GRIDLEASE_ENGINE_SOCKET=$sock GRIDLEASE_ENGINE_IMAGE=$IMAGE"
  ;;
stop)
  # Every container the tests left (a node killed with -9 leaves its job's running) goes first:
  # a stopped service would leave them running, their mounts and monitors on the host.
  if [[ -f "$dir/storage.conf" ]]; then
    CONTAINERS_CONF="$dir/containers.conf" CONTAINERS_STORAGE_CONF="$dir/storage.conf" \
      podman rm --all --force --time 0 >/dev/null 2>&1 || true
  fi
  if [[ -f "$dir/service.pid" ]]; then
    kill "$(cat "$dir/service.pid")" 2>/dev/null || true
    rm -f "$dir/service.pid" "$dir/podman.sock"
    log "stopped"
  fi
  ;;
*)
  echo "usage: scripts/podman.sh start|stop [DIR]" >&2
  exit 2
  ;;
esac
