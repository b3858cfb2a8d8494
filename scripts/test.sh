#!/usr/bin/env bash
# The project's test command: tools, detector components, then every test of the workspace
# (unit tests, native detector fixtures, the real-WASM runtime tests, end-to-end tests).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build-detectors.sh
cargo test --workspace "$@"
