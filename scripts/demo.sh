#!/usr/bin/env bash
# The demo on the embedded default: builds, starts aims-server on SQLite, turns seeds/ into a real
# git repository, runs the agent over it twice (before and after a dataset card changes), prints the
# dashboard URL and a per-system summary, and keeps serving until Ctrl-C.
#   AIMS_DEMO_LISTEN=127.0.0.1:9090 ./scripts/demo.sh   to pick another address
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/cargo-env.sh   # the test command's build directory: the two share one build
command -v git >/dev/null || { echo "the demo needs git (apt-get install git)" >&2; exit 2; }
echo "==> building (first time: a few minutes)" >&2
cargo build --workspace --bins --quiet
export AIMS_BIN_DIR="$CARGO_TARGET_DIR/debug"
exec "$AIMS_BIN_DIR/aims-demo"
