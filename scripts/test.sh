#!/usr/bin/env bash
# The whole test suite, on a fresh machine or a warm one: installs what the tests need (idempotent),
# builds the binaries the end-to-end tests drive, and runs every test.
#   ./scripts/test.sh            everything
#   ./scripts/test.sh -p aims-e2e   arguments go to `cargo test`
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
cache=${AIMS_CACHE_DIR:-$HOME/.cache/aims-evidence}
mkdir -p "$cache"
# Builds outlive the clone so a second run on the same machine is incremental.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target}

log() { printf '==> %s\n' "$*" >&2; }

# --- system packages (Debian) -------------------------------------------------------------
need=()
command -v git >/dev/null || need+=(git)
command -v chromium >/dev/null || need+=(chromium)
command -v openssl >/dev/null || need+=(openssl)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if ((${#need[@]})); then
  log "installing ${need[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
export AIMS_CHROMIUM=${AIMS_CHROMIUM:-$(command -v chromium || true)}

# --- build and test -----------------------------------------------------------------------
log "building binaries (target: $CARGO_TARGET_DIR)"
cargo build --workspace --bins --quiet
export AIMS_BIN_DIR="$CARGO_TARGET_DIR/debug"
log "running tests"
cargo test --workspace --no-fail-fast "$@"
