# Sourced by scripts/test.sh and scripts/demo.sh (from the repository root): where the build
# lives, shared by the two so the demo after the tests (or the reverse) builds nothing.
#
# Builds outlive the clone so a second run is incremental, but each clone gets its own target
# directory: cargo names workspace artifacts by their path relative to the workspace and judges
# freshness by mtimes, so two clones sharing one would reuse each other's builds, with the other
# clone's absolute paths (`env!("CARGO_MANIFEST_DIR")`, test fixtures) compiled in.
cache=${AIMS_CACHE_DIR:-$HOME/.cache/aims-evidence}
mkdir -p "$cache"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target-$(pwd -P | sha256sum | cut -c1-12)}
# One build per run: incremental state only costs disk here (tens of GB across runs).
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
