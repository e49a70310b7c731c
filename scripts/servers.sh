#!/usr/bin/env bash
# Test servers on 127.0.0.1 for the cache library, without Docker.
#
#   bash scripts/servers.sh start [store...]   install what is missing and start (all stores by default)
#   bash scripts/servers.sh env [store...]     print the CACHE_TEST_* variables as `export` lines
#   bash scripts/servers.sh stop [store...]    stop what these scripts started
#   bash scripts/servers.sh list               the stores known here
#
#   bash scripts/servers.sh start && eval "$(bash scripts/servers.sh env)"
#
# Each store is one file, scripts/servers/<store>.sh, defining <store>_install,
# <store>_start and <store>_env (and optionally <store>_stop); a new store adds a file.
# State (data, logs, pid files, throwaway certificates) lives in .servers/<name>/, and
# stopping kills only the processes whose pid files are there.
# Scripts can source this file and call servers_up STORE..., which installs, starts,
# exports the variables and stops the servers when the calling shell exits.

SERVERS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SERVERS_DIR="${SERVERS_DIR:-$SERVERS_ROOT/.servers}"
SERVERS_EXPORTED=()

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

_alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1" 2>/dev/null)" 2>/dev/null; }

_wait_for() { # _wait_for SECONDS COMMAND...
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then _log "timed out waiting for: $*"; return 1; fi
    sleep 0.05
  done
}

# _port_free PORT: nothing listens on 127.0.0.1:PORT.
_port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# _export NAME VALUE: export a variable and remember it for `env`.
_export() {
  export "$1=$2"
  SERVERS_EXPORTED+=("$1")
}

# _stop_dir DIR: stop the process whose pid file is DIR/pid, and wait for it.
_stop_dir() {
  local pidfile="$1/pid" n=0
  [[ -f "$pidfile" ]] || return 0
  if _alive "$pidfile"; then kill "$(cat "$pidfile")" 2>/dev/null || true; fi
  while _alive "$pidfile" && ((n++ < 100)); do sleep 0.05; done
  if _alive "$pidfile"; then kill -9 "$(cat "$pidfile")" 2>/dev/null || true; fi
  rm -f "$pidfile"
}

# _certs DIR: a throwaway CA (DIR/ca.pem) and a server certificate for 127.0.0.1 and
# localhost signed by it (DIR/server.pem, DIR/server.key), made once.
_certs() {
  local d=$1
  [[ -f "$d/server.pem" ]] && return 0
  mkdir -p "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=cache-test-ca" \
    -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' >"$d/ext.cnf"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
    -days 2 -extfile "$d/ext.cnf" -out "$d/server.pem" 2>/dev/null
  chmod 600 "$d"/*.key
}

servers_list() {
  local f
  for f in "$SERVERS_ROOT"/scripts/servers/*.sh; do basename "$f" .sh; done
}

_load() {
  local store=$1 f="$SERVERS_ROOT/scripts/servers/$1.sh"
  if [[ ! -f "$f" ]]; then
    _log "unknown store '$store' (known: $(servers_list | tr '\n' ' '))"
    return 2
  fi
  # shellcheck disable=SC1090
  source "$f"
}

_stores() { if (($#)); then printf '%s\n' "$@"; else servers_list; fi; }

servers_install() { local s; for s in $(_stores "$@"); do _load "$s" && "${s}_install"; done; }
servers_start() {
  mkdir -p "$SERVERS_DIR"
  local s
  for s in $(_stores "$@"); do _load "$s" && "${s}_start"; done
}
servers_env() {
  local s v
  SERVERS_EXPORTED=()
  for s in $(_stores "$@"); do _load "$s" && "${s}_env"; done
  for v in "${SERVERS_EXPORTED[@]}"; do printf 'export %s=%q\n' "$v" "${!v}"; done
}
servers_stop() {
  local s
  for s in $(_stores "$@"); do
    _load "$s" || continue
    if declare -F "${s}_stop" >/dev/null; then "${s}_stop"; fi
    local d
    for d in "$SERVERS_DIR/$s" "$SERVERS_DIR/$s"-*; do [[ -d "$d" ]] && _stop_dir "$d"; done
  done
  return 0
}

servers_up() {
  local stores=("$@")
  servers_install "${stores[@]}"
  # shellcheck disable=SC2064
  trap "servers_stop ${stores[*]}" EXIT
  servers_start "${stores[@]}"
  servers_env "${stores[@]}" >/dev/null
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
  cmd="${1:-}"
  shift || true
  case "$cmd" in
    start) servers_install "$@"; servers_start "$@" ;;
    stop) servers_stop "$@" ;;
    env) servers_env "$@" ;;
    list) servers_list ;;
    *) echo "usage: $0 start|stop|env|list [store...]" >&2; exit 2 ;;
  esac
fi
