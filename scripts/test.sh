#!/usr/bin/env bash
# Run the whole test suite against real servers started on 127.0.0.1.
# Installs what is missing (Debian packages), starts the servers under .servers/,
# exports their URLs (CACHE_TEST_*), runs `cargo test`, and stops the servers.
# Extra arguments go to `cargo test` (e.g. `bash scripts/test.sh -p cache-memory`).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/servers.sh
source scripts/servers.sh
servers_up
cargo test --workspace --all-features "$@"
