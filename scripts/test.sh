#!/usr/bin/env bash
# The project's test command: tools, detector components, then every test of the workspace
# (unit tests, native detector fixtures, the real-WASM runtime tests, end-to-end tests),
# then `plumbline eval` on the scenario corpus, then a bounded run of every fuzz target
# (docs/fuzzing.md; after the tests, so building the fuzz targets never delays their answer).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
phase() { echo "test.sh: $1 done at $((SECONDS - started)) s"; }
scripts/setup.sh test
scripts/build-detectors.sh
phase "set-up and detector components"
cargo test --workspace "$@"
phase "cargo test"
# Detection on the scenario corpus (tests/scenarios): with the organisation described, and
# without it (README "Detection").
# The binary `cargo test` built (`cargo run -p plumbline` resolves features for one
# package, not the workspace, so it rebuilt part of the tree: ~2.5 min of a CI run), and
# the compiled components the end-to-end tests cached.
target=${CARGO_TARGET_DIR:-target}
eval_corpus() {
    PLUMBLINE_RUNTIME_CACHE_DIR="$target/e2e-component-cache" \
        "$target/debug/plumbline" eval tests/scenarios "$@"
}
eval_corpus --min-recall 0.95 --max-fpr 0.05
eval_corpus --no-org --min-recall 0.95 --max-fpr 0.10
phase "eval"
scripts/fuzz.sh
phase "fuzz"

