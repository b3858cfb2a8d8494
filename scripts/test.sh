#!/usr/bin/env bash
# The project's test command: tools, detector components, then every test of the workspace
# (unit tests, native detector fixtures, the real-WASM runtime tests, end-to-end tests),
# then a bounded run of every fuzz target (docs/fuzzing.md; after the tests, so building
# the fuzz targets never delays their answer).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
scripts/build-detectors.sh
cargo test --workspace "$@"
scripts/fuzz.sh
