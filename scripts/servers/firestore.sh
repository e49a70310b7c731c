# Firestore for the tests (sourced by scripts/servers.sh): the npm emulator
# `@firestore-emulator/server` (MIT; a test server only, never a dependency of the
# crates), installed under .servers/firestore/ and started by a few lines of Node that
# bind it to 127.0.0.1:28080 (its own start() binds 0.0.0.0).
#   FIRESTORE_EMULATOR_HOST      127.0.0.1:28080, where the firestore crate finds it
#   CACHE_TEST_FIRESTORE_HOST    the same, for the tests' own checks
#   CACHE_TEST_FIRESTORE_LAUNCHER  the launcher (the fault test runs its own emulator)

FIRESTORE_PORT=28080

firestore_install() {
  command -v node >/dev/null || _need_apt nodejs npm
  local dir="$SERVERS_DIR/firestore"
  [[ -d "$dir/node_modules/@firestore-emulator/server" ]] && [[ -f "$dir/launch.js" ]] && return 0
  mkdir -p "$dir"
  _log "installing the Firestore emulator (npm, into $dir)"
  printf '{ "private": true, "dependencies": { "@firestore-emulator/server": "0.3.15" } }\n' >"$dir/package.json"
  (cd "$dir" && npm install --silent --no-audit --no-fund >/dev/null)
  # The launcher: the emulator's gRPC server, bound to 127.0.0.1 only.
  cat >"$dir/launch.js" <<'JS'
const { FirestoreServer } = require("@firestore-emulator/server");
const { ServerCredentials } = require("@grpc/grpc-js");
const port = Number(process.argv[2]);
const emulator = new FirestoreServer();
emulator.server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (err) => {
  if (err) { console.error(err); process.exit(1); }
  console.log(`firestore emulator on 127.0.0.1:${port}`);
});
JS
}

firestore_start() {
  local dir="$SERVERS_DIR/firestore"
  _alive "$dir/pid" && return 0
  _port_free "$FIRESTORE_PORT" || { _log "port $FIRESTORE_PORT is taken by another process"; return 1; }
  nohup node "$dir/launch.js" "$FIRESTORE_PORT" >"$dir/log" 2>&1 &
  echo $! >"$dir/pid"
  _wait_for 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$FIRESTORE_PORT" || { _log "the Firestore emulator did not start:"; tail -5 "$dir/log" >&2; return 1; }
  _log "up: firestore (emulator) :$FIRESTORE_PORT"
}

firestore_env() {
  _export FIRESTORE_EMULATOR_HOST "127.0.0.1:$FIRESTORE_PORT"
  _export CACHE_TEST_FIRESTORE_HOST "127.0.0.1:$FIRESTORE_PORT"
  _export CACHE_TEST_FIRESTORE_LAUNCHER "$SERVERS_DIR/firestore/launch.js"
}

firestore_stop() { _stop_dir "$SERVERS_DIR/firestore"; }
