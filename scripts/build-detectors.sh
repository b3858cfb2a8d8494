#!/usr/bin/env bash
# Builds every detector component into <target>/wasm32-wasip2/release/:
#   - each Rust crate under detectors/ (its lib as <crate>.wasm, its examples under examples/),
#   - each Python detector (a detectors/*/app.py) with componentize-py, as <dir>.wasm.
# Host tests and the README's examples load components from there. Run scripts/setup.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT="${CARGO_TARGET_DIR:-$ROOT/target}/wasm32-wasip2/release"
WIT="$ROOT/wit/since_v0.1.0"

# Rust: every package whose manifest lives under detectors/.
packages=()
while IFS= read -r manifest; do
    name=$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$manifest" | head -1)
    packages+=(-p "$name")
done < <(find detectors -name Cargo.toml -not -path '*/target/*' | sort)
if [ ${#packages[@]} -gt 0 ]; then
    cargo build --release --target wasm32-wasip2 --lib --examples "${packages[@]}"
fi

# Python: rebuilt only when the app, the WIT or the tool changed (a build takes ~10 s).
COMPONENTIZE="$ROOT/.tools/venv/bin/componentize-py"
for app in detectors/*/app.py; do
    [ -e "$app" ] || continue
    dir=$(dirname "$app")
    out="$OUT/$(basename "$dir" | tr '-' '_').wasm"
    if [ -f "$out" ] && [ -z "$(find "$dir" "$WIT" "$COMPONENTIZE" -newer "$out" -type f -print -quit)" ]; then
        echo "build-detectors: $out is up to date"
        continue
    fi
    if [ ! -x "$COMPONENTIZE" ]; then
        echo "build-detectors: $COMPONENTIZE missing: run scripts/setup.sh" >&2
        exit 1
    fi
    mkdir -p "$OUT"
    # --stub-wasi: the component imports only the detector world (log, config, clock);
    # any WASI call traps instead of reaching the host.
    (cd "$dir" && "$COMPONENTIZE" -d "$WIT" -w detector componentize --stub-wasi -p . app -o "$out.tmp")
    mv "$out.tmp" "$out"
    echo "build-detectors: built $out"
done
