#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ for a bounded time each (ARCHITECTURE.md §8, "Fuzzing").
#   ./scripts/fuzz.sh                     every target, FUZZ_SECONDS (default 20) each
#   ./scripts/fuzz.sh record bundle       only these targets
#   FUZZ_SECONDS=600 ./scripts/fuzz.sh config
# Installs cargo-fuzz once per machine. Exits non-zero when a target finds a crash (panic,
# arithmetic overflow, out of memory, timeout), printing the input that reproduces it, or when no
# toolchain here can build the fuzzers: CI fails loudly rather than skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
cache=${AIMS_CACHE_DIR:-$HOME/.cache/aims-evidence}
seconds=${FUZZ_SECONDS:-20}
# Reused across runs: the instrumented build, and the corpus each target has grown so far.
target_dir=$cache/fuzz-target
work=$cache/fuzz-corpus
logs=$cache/fuzz-logs
mkdir -p "$target_dir" "$work" "$logs"

log() { printf '==> %s\n' "$*" >&2; }

targets=("$@")
if ((${#targets[@]} == 0)); then
  targets=(record config formats bundle)
fi

# --- cargo-fuzz -----------------------------------------------------------------------------
if ! cargo fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz (once per machine)"
  cargo install cargo-fuzz --locked --quiet
fi

# --- toolchain ------------------------------------------------------------------------------
# cargo-fuzz needs nightly-only compiler flags (-Zsanitizer, sanitizer coverage). The machine's
# stable toolchain accepts them with RUSTC_BOOTSTRAP=1 and is the one a fresh machine has, so it
# is preferred; an installed nightly is the fallback. AIMS_FUZZ_TOOLCHAIN=nightly forces it.
probe_dir=$(mktemp -d)
trap 'rm -rf "$probe_dir"' EXIT
echo 'fn main() {}' >"$probe_dir/probe.rs"
sanitizer_ok() { # sanitizer_ok [+TOOLCHAIN]: compiles and links a program with AddressSanitizer
  rustc "$@" -Zsanitizer=address --edition 2021 -o "$probe_dir/probe" "$probe_dir/probe.rs" \
    >"$probe_dir/probe.log" 2>&1
}
cargo_tc=()
if [ "${AIMS_FUZZ_TOOLCHAIN:-stable}" != nightly ] && RUSTC_BOOTSTRAP=1 sanitizer_ok; then
  export RUSTC_BOOTSTRAP=1
  toolchain="$(rustc --version) with RUSTC_BOOTSTRAP=1"
elif rustup run nightly rustc --version >/dev/null 2>&1 && sanitizer_ok +nightly; then
  cargo_tc=(+nightly)
  toolchain=$(rustc +nightly --version)
else
  log "cannot fuzz: neither the default toolchain (with RUSTC_BOOTSTRAP=1) nor a nightly one"
  log "builds with -Zsanitizer=address here:"
  cat "$probe_dir/probe.log" >&2
  exit 1
fi
# The same flags for build and run, so `run` finds the build up to date.
fuzz_flags=(--debug-assertions --target-dir "$target_dir")

# --- build ----------------------------------------------------------------------------------
# fuzz/ is its own workspace; it builds with exactly the main workspace's dependency versions
# (cargo adds only libfuzzer-sys to the copy).
cp Cargo.lock fuzz/Cargo.lock
log "building the fuzz targets ($toolchain; target: $target_dir)"
start=$SECONDS
if ! cargo "${cargo_tc[@]}" fuzz build "${fuzz_flags[@]}" >"$logs/build.log" 2>&1; then
  grep -v '^ *Compiling ' "$logs/build.log" | tail -n 60 >&2
  log "the fuzz targets do not build (full output: $logs/build.log)"
  exit 1
fi
log "fuzz build took $((SECONDS - start)) s"

# --- run ------------------------------------------------------------------------------------
failed=()
for t in "${targets[@]}"; do
  mkdir -p "$work/$t"
  out="$logs/$t.log"
  start=$SECONDS
  # The kept corpus grows with every run; past FUZZ_CORPUS_MAX files it is minimised first (same
  # coverage, a third of the files), so loading it stays a small part of the time budget.
  if (($(find "$work/$t" -type f | wc -l) > ${FUZZ_CORPUS_MAX:-8000})); then
    log "fuzz $t: minimising the kept corpus"
    cargo "${cargo_tc[@]}" fuzz cmin "${fuzz_flags[@]}" "$t" "$work/$t" >"$logs/$t-cmin.log" 2>&1 ||
      log "fuzz $t: minimising failed (see $logs/$t-cmin.log); fuzzing with the corpus as it is"
  fi
  # The first corpus directory receives new inputs (kept in the cache); fuzz/corpus/<t> holds the
  # committed seeds and is only read.
  if cargo "${cargo_tc[@]}" fuzz run "${fuzz_flags[@]}" "$t" "$work/$t" "fuzz/corpus/$t" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$out" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out" | tail -n 1)
    log "fuzz $t: ok, ${runs:-?} inputs in $((SECONDS - start)) s (${rate:-?}/s), corpus $(find "$work/$t" -type f | wc -l) files"
  else
    failed+=("$t")
    log "fuzz $t: FAILED after $((SECONDS - start)) s (full output: $out):"
    if grep -qE 'panicked at|ERROR: (AddressSanitizer|libFuzzer)' "$out"; then
      grep -E -A4 'panicked at|ERROR: (AddressSanitizer|libFuzzer)|^SUMMARY' "$out" | head -n 40 >&2
    else
      tail -n 40 "$out" >&2
    fi
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$out" | tail -n 1)
    if [ -n "$artifact" ]; then
      case $artifact in /*) ;; *) artifact=$root/${artifact#./} ;; esac
      log "crash input: $artifact"
      bootstrap=${RUSTC_BOOTSTRAP:+RUSTC_BOOTSTRAP=1 }
      log "reproduce:   ${bootstrap}cargo ${cargo_tc[*]} fuzz run ${fuzz_flags[*]} $t $artifact"
    fi
  fi
done
if ((${#failed[@]})); then
  log "fuzzing found crashes in: ${failed[*]}"
  exit 1
fi
