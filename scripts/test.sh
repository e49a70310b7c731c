#!/usr/bin/env bash
# Run the whole test suite against real servers started on 127.0.0.1.
# Installs what is missing (Debian packages), starts the
# servers under .servers/, exports their addresses (CACHE_TEST_*), runs `cargo test`,
# and stops the servers.
#
#   bash scripts/test.sh                        every store, the whole workspace
#   bash scripts/test.sh redis -p cache-redis   only Redis's servers; the rest goes to cargo test
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/servers.sh
source scripts/servers.sh
stores=()
while (($#)) && [[ -f "scripts/servers/$1.sh" ]]; do stores+=("$1"); shift; done
servers_up "${stores[@]}"
# The tests mostly wait on the servers: more threads than cores (libtest's default) halve
# the suite's time here. Set RUST_TEST_THREADS to choose another number.
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-8}"
# The whole workspace, unless the arguments name packages (`-p`/`--package`, which
# `--workspace` would override).
scope=(--workspace)
for a in "$@"; do [[ "$a" == -p || "$a" == --package || "$a" == --package=* ]] && scope=(); done
if (($#)); then
  cargo test "${scope[@]}" --all-features "$@"
  exit
fi
# The whole suite: build once, run the test binaries in lanes (scripts/run_tests.py:
# the slowest stores' crates beside the rest), then the doc tests.
built="${CARGO_TARGET_DIR:-target}/test-binaries.json"
mkdir -p "$(dirname "$built")"
cargo test --workspace --all-features --no-run --message-format=json-render-diagnostics >"$built"
python3 scripts/run_tests.py <"$built"
cargo test --workspace --all-features --doc
