#!/usr/bin/env bash
# Run a backend's benchmark with its test server up: `bash scripts/bench.sh <store>`,
# where <store> is `memory` or a store of scripts/servers/ (redis, ...); `all` runs each.
# Each prints ratios against a reference measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/servers.sh
source scripts/servers.sh
bench() {
  case "$1" in
    memory) cargo bench -p cache-memory --bench memory ;;
    *)
      [[ -f "scripts/servers/$1.sh" ]] || { echo "usage: $0 memory|all|$(servers_list | tr '\n' '|' | sed 's/|$//')" >&2; exit 2; }
      (servers_up "$1"; cargo bench -p "cache-$1" --bench "$1")
      ;;
  esac
}
if [[ "${1:-all}" == all ]]; then
  bench memory
  for s in $(servers_list); do bench "$s"; done
else
  bench "$1"
fi
