#!/usr/bin/env bash
# The README's run command: install what the service needs (the wasm32-wasip2 target only),
# build the built-in detector components (Rust), and run the service (release build) with
# the embedded default configuration. Arguments go to
# `plumbline serve`, e.g. scripts/run.sh --listen 127.0.0.1:9000 --config plumbline.toml
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build-detectors.sh rust
exec cargo run --release --locked -p plumbline -- serve "$@"
