# MongoDB for the tests (sourced by scripts/servers.sh): SecantusDB (PyPI; MongoDB's wire
# protocol, reports 8.x; GPL, a test server only, never a dependency of the crates) in a
# virtualenv under .servers/mongodb/, started from Python so that its TTL monitor sweeps
# every second, in memory, on 127.0.0.1:27117.
#   CACHE_TEST_MONGODB_URL      mongodb://127.0.0.1:27117/cache_test
#   CACHE_TEST_MONGODB_PYTHON   the venv's python, with secantus (the fault test runs its own)

MONGODB_PORT=27117

mongodb_install() {
  _need_apt python3-venv
  local venv="$SERVERS_DIR/mongodb/venv"
  [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c 'import secantus' 2>/dev/null && return 0
  mkdir -p "$SERVERS_DIR/mongodb"
  _log "installing SecantusDB (pip, into $venv)"
  python3 -m venv "$venv" && "$venv/bin/pip" install -q --disable-pip-version-check 'secantusdb==0.7.0b3' >/dev/null
}

mongodb_start() {
  local dir="$SERVERS_DIR/mongodb"
  _alive "$dir/pid" && return 0
  _port_free "$MONGODB_PORT" || { _log "port $MONGODB_PORT is taken by another process"; return 1; }
  nohup "$dir/venv/bin/python" -c "
from secantus.server import SecantusDBServer
s = SecantusDBServer(host='127.0.0.1', port=$MONGODB_PORT, storage_path=':memory:',
                     ttl_sweep_seconds=1.0, replica_set_name=None)
s.start()
s.wait()
" >"$dir/log" 2>&1 &
  echo $! >"$dir/pid"
  _wait_for 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$MONGODB_PORT" || { _log "SecantusDB did not start:"; tail -5 "$dir/log" >&2; return 1; }
  _log "up: mongodb (SecantusDB) :$MONGODB_PORT"
}

mongodb_env() {
  _export CACHE_TEST_MONGODB_URL "mongodb://127.0.0.1:$MONGODB_PORT/cache_test"
  _export CACHE_TEST_MONGODB_PYTHON "$SERVERS_DIR/mongodb/venv/bin/python"
}

mongodb_stop() { _stop_dir "$SERVERS_DIR/mongodb"; }
