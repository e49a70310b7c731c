#!/usr/bin/env bash
# Test servers on 127.0.0.1 for the cache library, without Docker.
#
# Source it and call servers_install, servers_start, servers_env and servers_stop, or
# run `bash scripts/servers.sh start|stop|env` to keep them up while iterating:
#   bash scripts/servers.sh start && eval "$(bash scripts/servers.sh env)"
# State (data, logs, pid files, throwaway certificates) lives in .servers/.
#
# Servers and the variables the tests read:
#   Redis single     CACHE_TEST_REDIS_URL            redis://127.0.0.1:16379
#   Redis cluster    CACHE_TEST_REDIS_CLUSTER_URLS   three masters on 17000-17002
#   Redis TLS+auth   CACHE_TEST_REDIS_TLS_URL        rediss://:<random password>@127.0.0.1:16380
#                    CACHE_TEST_REDIS_TLS_CA         CA certificate (PEM) that signed the server's
#   redis-server     CACHE_TEST_REDIS_SERVER_BIN     for tests that start and kill their own server

SERVERS_DIR="${SERVERS_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.servers}"
REDIS_PORT=16379
REDIS_TLS_PORT=16380
REDIS_CLUSTER_PORTS=(17000 17001 17002)

_log() { echo "servers: $*" >&2; }

_need_apt() {
  local missing=() pkg
  for pkg in "$@"; do
    [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) == "install ok installed" ]] || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    _log "installing ${missing[*]} (apt-get)"
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo=sudo
    $sudo apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

servers_install() {
  _need_apt redis-server redis-tools openssl
}

_alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1" 2>/dev/null)" 2>/dev/null; }

_wait_for() { # _wait_for SECONDS COMMAND...
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then _log "timed out waiting for: $*"; return 1; fi
    sleep 0.05
  done
}

_redis_start() { # _redis_start NAME PORT [extra args...]
  local name=$1 port=$2; shift 2
  local dir="$SERVERS_DIR/$name"
  mkdir -p "$dir"
  _alive "$dir/pid" && return 0
  redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
    --pidfile "$dir/pid" --logfile "$dir/log" --dir "$dir" "$@"
  # A port held by another process would make the tests talk to a stranger: insist
  # that our own server is the one running.
  if ! _wait_for 5 _alive "$dir/pid"; then
    _log "$name did not start (is a port already in use?); its log says:"
    tail -5 "$dir/log" >&2 || true
    return 1
  fi
}

_redis_certs() {
  local d="$SERVERS_DIR/tls"
  [[ -f "$d/server.pem" ]] && return 0
  mkdir -p "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=cache-test-ca" \
    -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' >"$d/ext.cnf"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
    -days 2 -extfile "$d/ext.cnf" -out "$d/server.pem" 2>/dev/null
  head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$d/password"
  chmod 600 "$d"/*.key "$d/password"
}

_cluster_ok() {
  local p
  for p in "${REDIS_CLUSTER_PORTS[@]}"; do
    redis-cli -p "$p" cluster info 2>/dev/null | grep -q 'cluster_state:ok' || return 1
  done
}

servers_start() {
  mkdir -p "$SERVERS_DIR"
  # Single Redis.
  _redis_start redis "$REDIS_PORT"
  # TLS-only Redis with a password.
  _redis_certs
  local t="$SERVERS_DIR/tls"
  _redis_start redis-tls 0 --tls-port "$REDIS_TLS_PORT" --tls-cert-file "$t/server.pem" \
    --tls-key-file "$t/server.key" --tls-ca-cert-file "$t/ca.pem" --tls-auth-clients no \
    --requirepass "$(cat "$t/password")"
  # Three-master cluster.
  local p nodes=()
  for p in "${REDIS_CLUSTER_PORTS[@]}"; do
    _redis_start "redis-cluster-$p" "$p" --cluster-enabled yes --cluster-config-file nodes.conf \
      --cluster-node-timeout 2000
    nodes+=("127.0.0.1:$p")
  done
  _wait_for 10 redis-cli -p "$REDIS_PORT" ping
  for p in "${REDIS_CLUSTER_PORTS[@]}"; do _wait_for 10 redis-cli -p "$p" ping; done
  if ! _cluster_ok; then
    if redis-cli -p "${REDIS_CLUSTER_PORTS[0]}" cluster info | grep -q 'cluster_known_nodes:1'; then
      redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >"$SERVERS_DIR/cluster-create.log" 2>&1
    fi
    _wait_for 20 _cluster_ok
  fi
  _wait_for 10 redis-cli --tls --cacert "$t/ca.pem" -p "$REDIS_TLS_PORT" --no-auth-warning -a "$(cat "$t/password")" ping
  _log "up: redis :$REDIS_PORT, redis tls :$REDIS_TLS_PORT, redis cluster :${REDIS_CLUSTER_PORTS[*]}"
}

# Export the variables (when sourced) and print them as `export` lines.
servers_env() {
  local t="$SERVERS_DIR/tls" urls=() p
  for p in "${REDIS_CLUSTER_PORTS[@]}"; do urls+=("redis://127.0.0.1:$p"); done
  export CACHE_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
  export CACHE_TEST_REDIS_CLUSTER_URLS
  CACHE_TEST_REDIS_CLUSTER_URLS=$(IFS=,; echo "${urls[*]}")
  export CACHE_TEST_REDIS_TLS_URL="rediss://:$(cat "$t/password" 2>/dev/null)@127.0.0.1:$REDIS_TLS_PORT"
  export CACHE_TEST_REDIS_TLS_CA="$t/ca.pem"
  export CACHE_TEST_REDIS_SERVER_BIN
  CACHE_TEST_REDIS_SERVER_BIN=$(command -v redis-server)
  local v
  for v in CACHE_TEST_REDIS_URL CACHE_TEST_REDIS_CLUSTER_URLS CACHE_TEST_REDIS_TLS_URL \
    CACHE_TEST_REDIS_TLS_CA CACHE_TEST_REDIS_SERVER_BIN; do
    printf 'export %s=%q\n' "$v" "${!v}"
  done
}

servers_stop() {
  local pidfile
  for pidfile in "$SERVERS_DIR"/*/pid; do
    [[ -f "$pidfile" ]] || continue
    if _alive "$pidfile"; then kill "$(cat "$pidfile")" 2>/dev/null || true; fi
  done
  # Cluster state must not outlive the servers: a fresh start makes a fresh cluster.
  for pidfile in "$SERVERS_DIR"/*/pid; do
    [[ -f "$pidfile" ]] || continue
    local n=0
    while _alive "$pidfile" && ((n++ < 100)); do sleep 0.05; done
    rm -f "$pidfile"
  done
  rm -f "$SERVERS_DIR"/redis-cluster-*/nodes.conf
}

# For scripts that source this file: install, start, export the variables, and stop
# the servers when the calling shell exits.
servers_up() {
  servers_install
  trap servers_stop EXIT
  servers_start
  servers_env >/dev/null
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
  case "${1:-}" in
    start) servers_install; servers_start; servers_env >/dev/null ;;
    stop) servers_stop ;;
    env) servers_env ;;
    *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
  esac
fi
