# Memcached for the tests (sourced by scripts/servers.sh): Debian's memcached 1.6, three
# processes on 127.0.0.1 (the single-server suite uses the first, the ring all three),
# 64 MB each, the default 1 MiB item limit; pid files and logs under .servers/memcached-N/.
#   CACHE_TEST_MEMCACHED_URL       127.0.0.1:21211
#   CACHE_TEST_MEMCACHED_SERVERS   127.0.0.1:21211,127.0.0.1:21212,127.0.0.1:21213
#   CACHE_TEST_MEMCACHED_BIN       the memcached binary (the fault test runs its own)

MEMCACHED_PORTS=(21211 21212 21213)

memcached_install() { _need_apt memcached; }

memcached_start() {
  local i port dir user=()
  # memcached refuses to run as root unless told which user to be.
  [[ $(id -u) -eq 0 ]] && user=(-u root)
  for i in "${!MEMCACHED_PORTS[@]}"; do
    port=${MEMCACHED_PORTS[$i]}
    dir="$SERVERS_DIR/memcached-$((i + 1))"
    mkdir -p "$dir"
    _alive "$dir/pid" && continue
    _port_free "$port" || { _log "port $port is taken by another process"; return 1; }
    memcached -d "${user[@]}" -l 127.0.0.1 -p "$port" -U 0 -m 64 -P "$dir/pid" 2>"$dir/log" || {
      _log "memcached did not start on $port:"; tail -5 "$dir/log" >&2; return 1; }
    _wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"
    _wait_for 5 test -s "$dir/pid"
  done
  _log "up: memcached :${MEMCACHED_PORTS[*]}"
}

memcached_env() {
  local list
  list=$(printf '127.0.0.1:%s,' "${MEMCACHED_PORTS[@]}")
  _export CACHE_TEST_MEMCACHED_URL "127.0.0.1:${MEMCACHED_PORTS[0]}"
  _export CACHE_TEST_MEMCACHED_SERVERS "${list%,}"
  _export CACHE_TEST_MEMCACHED_BIN "$(command -v memcached || echo /usr/bin/memcached)"
}

memcached_stop() {
  local i
  for i in "${!MEMCACHED_PORTS[@]}"; do _stop_dir "$SERVERS_DIR/memcached-$((i + 1))"; done
}
