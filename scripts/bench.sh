#!/usr/bin/env bash
# Run the benchmarks with the test servers up: `bash scripts/bench.sh [memory|redis]`.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/servers.sh
source scripts/servers.sh
servers_up
case "${1:-all}" in
  memory) cargo bench -p cache-memory --bench memory ;;
  redis) cargo bench -p cache-redis --bench redis ;;
  all) cargo bench -p cache-memory --bench memory && cargo bench -p cache-redis --bench redis ;;
  *) echo "usage: $0 [memory|redis|all]" >&2; exit 2 ;;
esac
