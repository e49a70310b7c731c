#!/usr/bin/env bash
# Containers for the testcontainers path, on a machine without a Docker engine: podman
# (with runc) serves the Docker API, and each store's image is built here from Debian
# packages (no image registry is needed).
#
#   bash scripts/containers.sh start [store...]  install podman, build the images, start the socket
#   bash scripts/containers.sh env [store...]    print DOCKER_HOST and CACHE_TEST_<STORE>_IMAGE as `export` lines
#   bash scripts/containers.sh check             fail if a test container is left
#   bash scripts/containers.sh suite             CI: the conformance suite through containers
#                                                (no CACHE_TEST_* server variable set), a killed
#                                                test process's container removed by the next,
#                                                and none left afterwards
#   bash scripts/containers.sh stop              remove the test containers, stop the socket
#
# Stores: the files scripts/containers/<store>.Containerfile (a new store adds a file).
# An image is tagged with its Containerfile's digest, so it is rebuilt only when that
# file changes; the base image is a debootstrap of Debian bookworm (minbase).
# State: .containers/ (containers.conf, the socket, its pid and log).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${CONTAINERS_DIR:-$ROOT/.containers}"
FILES="$ROOT/scripts/containers"
BASE=localhost/cachekit-debian:bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
LABEL=cachekit.test.owner

log() { echo "containers: $*" >&2; }
# _need_apt (installs missing Debian packages), shared with the server scripts.
source "$ROOT/scripts/servers.sh"

export CONTAINERS_CONF="$DIR/containers.conf"

stores() {
  if (($#)); then printf '%s\n' "$@"; else
    for f in "$FILES"/*.Containerfile; do basename "$f" .Containerfile; done
  fi
}

tag() { # the image of store $1: its Containerfile's digest as the tag
  echo "localhost/cachekit-$1:$(sha256sum "$FILES/$1.Containerfile" | cut -c1-12)"
}

install() {
  _need_apt podman runc debootstrap
  mkdir -p "$DIR"
  # crun refuses this machine's hybrid cgroups (runc works); the default ulimits fail
  # to apply; there is no systemd to manage cgroups or journald to log events.
  cat >"$CONTAINERS_CONF" <<CONF
[containers]
default_ulimits = []
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
}

base() {
  podman image exists "$BASE" && return 0
  local root="$DIR/rootfs"
  log "debootstrap bookworm (minbase) from $MIRROR"
  rm -rf "$root"
  debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$DIR/debootstrap.log" 2>&1 ||
    { tail -5 "$DIR/debootstrap.log" >&2; return 1; }
  tar -C "$root" -c . | podman import - "$BASE" >/dev/null 2>&1
  rm -rf "$root"
}

build() { # build the image of store $1 unless this Containerfile's is there
  local image; image=$(tag "$1")
  podman image exists "$image" && return 0
  log "building $image"
  # The context: the Containerfile and this machine's CA bundle (pip inside the build
  # goes through the same TLS setup as the machine's own).
  local ctx="$DIR/context-$1"
  rm -rf "$ctx"; mkdir -p "$ctx"
  cp "$FILES/$1.Containerfile" "$ctx/Containerfile"
  cp "${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" "$ctx/ca-certificates.crt"
  podman build -q --runtime runc -t "$image" "$ctx" >"$DIR/build-$1.log" 2>&1 ||
    { tail -20 "$DIR/build-$1.log" >&2; return 1; }
  rm -rf "$ctx"
}

socket() {
  local sock="$DIR/podman.sock"
  if [[ -f "$DIR/pid" ]] && kill -0 "$(cat "$DIR/pid")" 2>/dev/null; then return 0; fi
  rm -f "$sock"
  nohup podman system service --time=0 "unix://$sock" >"$DIR/service.log" 2>&1 &
  echo $! >"$DIR/pid"
  local n=0
  until [[ -S "$sock" ]]; do
    ((n++ < 200)) || { log "the podman socket did not come up"; tail -5 "$DIR/service.log" >&2; return 1; }
    sleep 0.05
  done
  log "up: Docker API at unix://$sock"
}

left() { podman ps -a -q --filter "label=$LABEL"; }

# The README's command for a machine with Docker: every crate's conformance suite
# (every networked store through a container: Redis, Memcached and PostgreSQL from
# Debian packages, SecantusDB and moto from PyPI, the Firestore emulator from npm),
# but the cases that need more than the one server a container gives (a cluster, TLS,
# a ring of three). Each crate's integration tests are one binary, `it`; the suite is its
# module `conformance`.
SUITE_SKIP=(--skip cluster:: --skip tls:: --skip ring::)

suite() {
  bash "$0" start
  eval "$(bash "$0" env)"
  local v
  for v in $(compgen -e | grep '^CACHE_TEST_' | grep -v '_IMAGE$'); do unset "$v"; done
  # libtest's default threads (one a core): the MongoDB and DynamoDB servers are one
  # Python process each, and more threads make their timing-bound cases flaky.
  cargo test --workspace --all-features --test it -- conformance:: "${SUITE_SKIP[@]}"
  bash "$0" check

  # A test process killed (no exit hook) leaves its container; the next one removes it.
  local bin pid n=0
  bin=$(cargo test --workspace --all-features --test it --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["package_id"].split("#")[0].endswith("/cache-redis"):
        print(m["executable"])')
  [[ -x "$bin" ]] || { log "cannot find the Redis test binary"; return 1; }
  "$bin" --test-threads 1 conformance:: "${SUITE_SKIP[@]}" >/dev/null 2>&1 &
  pid=$!
  until [[ -n "$(left)" ]]; do
    ((n++ < 600)) || { log "no container came up for the killed run"; kill -9 "$pid"; return 1; }
    sleep 0.1
  done
  kill -9 "$pid"; wait "$pid" 2>/dev/null || true
  [[ -n "$(left)" ]] || { log "expected the killed run's container to be left"; return 1; }
  log "killed a test run: its container is left, as expected"
  "$bin" "${SUITE_SKIP[@]}" conformance::conformance::get_now_agrees_with_get >/dev/null
  bash "$0" check
  bash "$0" stop
}

case "${1:-}" in
  suite) suite ;;
  start)
    shift
    install
    base
    for s in $(stores "$@"); do build "$s"; done
    socket
    ;;
  env)
    shift
    echo "export CONTAINERS_CONF=$CONTAINERS_CONF"
    echo "export DOCKER_HOST=unix://$DIR/podman.sock"
    for s in $(stores "$@"); do
      echo "export CACHE_TEST_$(tr '[:lower:]' '[:upper:]' <<<"$s")_IMAGE=$(tag "$s")"
    done
    # The firestore crate finds its emulator through this variable only: the
    # container is published on its port.
    echo "export FIRESTORE_EMULATOR_HOST=127.0.0.1:${FIRESTORE_CONTAINER_PORT:-28180}"
    ;;
  check)
    ids=$(left)
    if [[ -n "$ids" ]]; then
      log "test containers left behind:"; podman ps -a --filter "label=$LABEL" >&2; exit 1
    fi
    log "no test container left"
    ;;
  stop)
    if command -v podman >/dev/null && [[ -f "$CONTAINERS_CONF" ]]; then
      ids=$(left || true)
      [[ -z "$ids" ]] || podman rm -f $ids >/dev/null
    fi
    if [[ -f "$DIR/pid" ]]; then
      kill "$(cat "$DIR/pid")" 2>/dev/null || true
      rm -f "$DIR/pid" "$DIR/podman.sock"
    fi
    ;;
  *)
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
