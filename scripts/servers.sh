#!/usr/bin/env bash
# Test servers on 127.0.0.1 for the cache library, without Docker.
# Source it and call servers_install, servers_start, servers_env, servers_stop;
# or run `bash scripts/servers.sh start|stop|env` to keep them up while iterating.
# State (data, logs, pid files) lives in .servers/ at the repository root.

SERVERS_DIR="${SERVERS_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.servers}"

_need_apt() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    echo "servers: installing ${missing[*]}" >&2
    if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

servers_install() {
  :
}

servers_start() {
  mkdir -p "$SERVERS_DIR"
}

servers_env() {
  :
}

servers_stop() {
  :
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
  case "${1:-}" in
    start) servers_install; servers_start; servers_env ;;
    stop) servers_stop ;;
    env) servers_env ;;
    *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
  esac
fi
