# Redis for the tests (sourced by scripts/servers.sh): a single server, a TLS-only
# server with a password, and a three-master cluster.
#   CACHE_TEST_REDIS_URL            redis://127.0.0.1:16379
#   CACHE_TEST_REDIS_CLUSTER_URLS   three masters on 17000-17002
#   CACHE_TEST_REDIS_TLS_URL        rediss://:<random password>@127.0.0.1:16380
#   CACHE_TEST_REDIS_TLS_CA         CA certificate (PEM) that signed the server's
#   CACHE_TEST_REDIS_SERVER_BIN     for tests that start and kill their own server

REDIS_PORT=16379
REDIS_TLS_PORT=16380
REDIS_CLUSTER_PORTS=(17000 17001 17002)

redis_install() { _need_apt redis-server redis-tools openssl; }

_redis_run() { # _redis_run NAME PORT [extra args...]
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
  local d="$SERVERS_DIR/redis-tls/certs"
  _certs "$d"
  [[ -f "$d/password" ]] && return 0
  head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$d/password"
  chmod 600 "$d/password"
}

_redis_cluster_ok() {
  local p
  for p in "${REDIS_CLUSTER_PORTS[@]}"; do
    redis-cli -p "$p" cluster info 2>/dev/null | grep -q 'cluster_state:ok' || return 1
  done
}

redis_start() {
  _redis_run redis "$REDIS_PORT"
  _redis_certs
  local t="$SERVERS_DIR/redis-tls/certs"
  _redis_run redis-tls 0 --tls-port "$REDIS_TLS_PORT" --tls-cert-file "$t/server.pem" \
    --tls-key-file "$t/server.key" --tls-ca-cert-file "$t/ca.pem" --tls-auth-clients no \
    --requirepass "$(cat "$t/password")"
  local p nodes=()
  for p in "${REDIS_CLUSTER_PORTS[@]}"; do
    _redis_run "redis-cluster-$p" "$p" --cluster-enabled yes --cluster-config-file nodes.conf \
      --cluster-node-timeout 2000
    nodes+=("127.0.0.1:$p")
  done
  _wait_for 10 redis-cli -p "$REDIS_PORT" ping
  for p in "${REDIS_CLUSTER_PORTS[@]}"; do _wait_for 10 redis-cli -p "$p" ping; done
  if ! _redis_cluster_ok; then
    if redis-cli -p "${REDIS_CLUSTER_PORTS[0]}" cluster info | grep -q 'cluster_known_nodes:1'; then
      redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes \
        >"$SERVERS_DIR/redis-cluster-create.log" 2>&1
    fi
    _wait_for 20 _redis_cluster_ok
  fi
  _wait_for 10 redis-cli --tls --cacert "$t/ca.pem" -p "$REDIS_TLS_PORT" --no-auth-warning \
    -a "$(cat "$t/password")" ping
  _log "up: redis :$REDIS_PORT, redis tls :$REDIS_TLS_PORT, redis cluster :${REDIS_CLUSTER_PORTS[*]}"
}

redis_env() {
  local t="$SERVERS_DIR/redis-tls/certs" urls=() p
  for p in "${REDIS_CLUSTER_PORTS[@]}"; do urls+=("redis://127.0.0.1:$p"); done
  _export CACHE_TEST_REDIS_URL "redis://127.0.0.1:$REDIS_PORT"
  _export CACHE_TEST_REDIS_CLUSTER_URLS "$(IFS=,; echo "${urls[*]}")"
  _export CACHE_TEST_REDIS_TLS_URL "rediss://:$(cat "$t/password" 2>/dev/null)@127.0.0.1:$REDIS_TLS_PORT"
  _export CACHE_TEST_REDIS_TLS_CA "$t/ca.pem"
  _export CACHE_TEST_REDIS_SERVER_BIN "$(command -v redis-server)"
}

redis_stop() {
  # Cluster state must not outlive the servers: a fresh start makes a fresh cluster.
  local d
  for d in "$SERVERS_DIR"/redis-cluster-*; do [[ -d "$d" ]] && _stop_dir "$d"; done
  rm -f "$SERVERS_DIR"/redis-cluster-*/nodes.conf
}
