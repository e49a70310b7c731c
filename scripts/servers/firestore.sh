# Firestore for the tests (sourced by scripts/servers.sh), on 127.0.0.1:28080:
# - Google's own Cloud Firestore emulator where it is installed (the Google Cloud CLI's
#   `cloud-firestore-emulator` component, Java 17 or later): the whole Firestore API,
#   transactions and every precondition;
# - elsewhere the npm emulator `@firestore-emulator/server` (MIT; a test server only,
#   never a dependency of the crates), installed under .servers/firestore/ and started
#   by a few lines of Node that bind it to 127.0.0.1 (its own start() binds 0.0.0.0).
#   It ignores update-time preconditions and its commits are not atomic: the race
#   tests of cache-firestore (tests/it/race.rs) fail on it unless
#   CACHE_TEST_FIRESTORE_SKIP_RACES=1 is set (an explicit opt-out, never set here).
# CACHE_TEST_FIRESTORE_EMULATOR=npm (or google) before `start` picks one by hand.
#   FIRESTORE_EMULATOR_HOST        127.0.0.1:28080, where the firestore crate finds it
#   CACHE_TEST_FIRESTORE_HOST      the same, for the tests' own checks
#   CACHE_TEST_FIRESTORE_EMULATOR  google or npm: the one running
#   CACHE_TEST_FIRESTORE_LAUNCHER  `launch.sh PORT` starts that same emulator in the
#                                  foreground (the fault test runs its own; the
#                                  launcher's children, such as Google's java, are in
#                                  its process group: kill the group)
# The emulator runs in a process group (and session) of its own, whose id is in
# .servers/firestore/pid: stopping kills the whole group (Google's launcher is a shell
# script whose `java` child would otherwise outlive it).

FIRESTORE_PORT=28080
FIRESTORE_GOOGLE=${FIRESTORE_GOOGLE:-/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud_firestore_emulator}

# _firestore_google_usable: Google's emulator and a Java of 17 or later are here.
_firestore_google_usable() {
  [[ -x "$FIRESTORE_GOOGLE" ]] || return 1
  [[ -f "$(dirname "$FIRESTORE_GOOGLE")/cloud-firestore-emulator.jar" ]] || return 1
  command -v java >/dev/null || return 1
  local v
  v=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
  [[ -n "$v" ]] && ((v >= 17))
}

# _firestore_kind: which emulator this machine runs (google or npm).
_firestore_kind() {
  case "${CACHE_TEST_FIRESTORE_EMULATOR:-}" in
    npm) echo npm; return ;;
    google)
      _firestore_google_usable || { _log "CACHE_TEST_FIRESTORE_EMULATOR=google, but $FIRESTORE_GOOGLE (with Java 17+) is not usable"; return 1; }
      echo google; return ;;
  esac
  if _firestore_google_usable; then echo google; else echo npm; fi
}

firestore_install() {
  local dir="$SERVERS_DIR/firestore" kind
  # A running emulator keeps its launcher and its kind.
  _firestore_group_alive "$dir/pid" && return 0
  kind=$(_firestore_kind) || return 1
  mkdir -p "$dir"
  if [[ $kind == npm ]] && ! [[ -d "$dir/node_modules/@firestore-emulator/server" && -f "$dir/launch.js" ]]; then
    command -v node >/dev/null || _need_apt nodejs npm
    _log "installing the npm Firestore emulator (into $dir)"
    printf '{ "private": true, "dependencies": { "@firestore-emulator/server": "0.3.15" } }\n' >"$dir/package.json"
    (cd "$dir" && npm install --silent --no-audit --no-fund >/dev/null)
    # The npm emulator's gRPC server, bound to 127.0.0.1 only.
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
  fi
  # `launch.sh PORT`: the chosen emulator in the foreground, on 127.0.0.1:PORT.
  {
    echo '#!/usr/bin/env bash'
    echo '# Written by scripts/servers/firestore.sh: the Firestore emulator of this machine on'
    echo '# 127.0.0.1:$1, in the foreground. Its children (Google'"'"'s java) share its process group.'
    if [[ $kind == google ]]; then
      printf 'exec %q start --host=127.0.0.1 --port="$1"\n' "$FIRESTORE_GOOGLE"
    else
      printf 'exec node %q "$1"\n' "$dir/launch.js"
    fi
  } >"$dir/launch.sh"
  chmod +x "$dir/launch.sh"
  echo "$kind" >"$dir/kind"
}

# _firestore_group_alive PIDFILE: a process of the group in PIDFILE is running.
_firestore_group_alive() {
  [[ -f "$1" ]] || return 1
  local g
  g=$(cat "$1" 2>/dev/null)
  [[ $g =~ ^[0-9]+$ ]] && kill -0 -- "-$g" 2>/dev/null
}

firestore_start() {
  local dir="$SERVERS_DIR/firestore" kind
  if _firestore_group_alive "$dir/pid"; then
    _log "firestore already up ($(cat "$dir/kind" 2>/dev/null || echo '?') emulator) :$FIRESTORE_PORT"
    return 0
  fi
  _port_free "$FIRESTORE_PORT" || { _log "port $FIRESTORE_PORT is taken by another process"; return 1; }
  [[ -x "$dir/launch.sh" ]] || firestore_install || return 1
  kind=$(cat "$dir/kind")
  rm -f "$dir/pid"
  # A session (and process group) of its own, whose leader writes its id before it
  # becomes the launcher: the same id with or without job control in the caller.
  nohup setsid bash -c 'echo $$ >"$1/pid"; exec "$1/launch.sh" "$2"' _ "$dir" "$FIRESTORE_PORT" >"$dir/log" 2>&1 </dev/null &
  _wait_for 5 test -s "$dir/pid" || { _log "the Firestore emulator did not start"; return 1; }
  if [[ $kind == google ]]; then
    local deadline=$((SECONDS + 90))
    until grep -q "Dev App Server is now running" "$dir/log"; do
      if ! _firestore_group_alive "$dir/pid" || ((SECONDS >= deadline)); then
        _log "Google's Firestore emulator did not start:"; tail -5 "$dir/log" >&2; firestore_stop; return 1
      fi
      sleep 0.05
    done
    _log "up: firestore (Google's Cloud Firestore emulator, $FIRESTORE_GOOGLE, $(java -version 2>&1 | head -1)) :$FIRESTORE_PORT"
  else
    _wait_for 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$FIRESTORE_PORT" || {
      _log "the npm Firestore emulator did not start:"; tail -5 "$dir/log" >&2; firestore_stop; return 1
    }
    _log "up: firestore (npm @firestore-emulator/server; ignores update-time preconditions) :$FIRESTORE_PORT"
    _log "cache-firestore's tests/it/race.rs needs Google's emulator and fails on this one; CACHE_TEST_FIRESTORE_SKIP_RACES=1 skips it"
  fi
}

firestore_env() {
  local dir="$SERVERS_DIR/firestore" kind
  kind=$(cat "$dir/kind" 2>/dev/null || _firestore_kind)
  _export FIRESTORE_EMULATOR_HOST "127.0.0.1:$FIRESTORE_PORT"
  _export CACHE_TEST_FIRESTORE_HOST "127.0.0.1:$FIRESTORE_PORT"
  _export CACHE_TEST_FIRESTORE_EMULATOR "$kind"
  _export CACHE_TEST_FIRESTORE_LAUNCHER "$dir/launch.sh"
}

# Stop the emulator's whole process group (the launcher and its java or node), and
# wait until none of it runs.
firestore_stop() {
  local dir="$SERVERS_DIR/firestore" n=0 g
  [[ -f "$dir/pid" ]] || return 0
  g=$(cat "$dir/pid" 2>/dev/null)
  if [[ $g =~ ^[0-9]+$ ]]; then
    kill -TERM -- "-$g" 2>/dev/null || true
    while _firestore_group_alive "$dir/pid" && ((n++ < 200)); do sleep 0.05; done
    if _firestore_group_alive "$dir/pid"; then kill -KILL -- "-$g" 2>/dev/null || true; fi
    n=0
    while _firestore_group_alive "$dir/pid" && ((n++ < 100)); do sleep 0.05; done
  fi
  rm -f "$dir/pid"
}
