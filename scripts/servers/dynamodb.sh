# DynamoDB for the tests (sourced by scripts/servers.sh): moto's server (PyPI
# `moto[server]`; Apache-2.0, a test server only, never a dependency of the crates) in a
# virtualenv under .servers/dynamodb/, in memory, on 127.0.0.1:28000.
#   CACHE_TEST_DYNAMODB_URL      http://127.0.0.1:28000 (the SDK's endpoint_url)
#   CACHE_TEST_DYNAMODB_SERVER   the venv's moto_server (the fault test runs its own)
# The SDK needs credentials and a region even against moto: the tests give static ones
# ("test"/"test", us-east-1); moto accepts any.

DYNAMODB_PORT=28000

dynamodb_install() {
  _need_apt python3-venv
  local venv="$SERVERS_DIR/dynamodb/venv"
  [[ -x "$venv/bin/moto_server" ]] && return 0
  mkdir -p "$SERVERS_DIR/dynamodb"
  _log "installing moto's server (pip, into $venv)"
  python3 -m venv "$venv" && "$venv/bin/pip" install -q --disable-pip-version-check 'moto[server]==5.2.5' >/dev/null
}

dynamodb_start() {
  local dir="$SERVERS_DIR/dynamodb"
  _alive "$dir/pid" && return 0
  _port_free "$DYNAMODB_PORT" || { _log "port $DYNAMODB_PORT is taken by another process"; return 1; }
  nohup "$dir/venv/bin/moto_server" -H 127.0.0.1 -p "$DYNAMODB_PORT" >"$dir/log" 2>&1 &
  echo $! >"$dir/pid"
  _wait_for 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$DYNAMODB_PORT" || { _log "moto did not start:"; tail -5 "$dir/log" >&2; return 1; }
  _log "up: dynamodb (moto) :$DYNAMODB_PORT"
}

dynamodb_env() {
  _export CACHE_TEST_DYNAMODB_URL "http://127.0.0.1:$DYNAMODB_PORT"
  _export CACHE_TEST_DYNAMODB_SERVER "$SERVERS_DIR/dynamodb/venv/bin/moto_server"
}

dynamodb_stop() { _stop_dir "$SERVERS_DIR/dynamodb"; }
