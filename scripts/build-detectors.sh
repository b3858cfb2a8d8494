#!/usr/bin/env bash
# Builds every detector component into <target>/wasm32-wasip2/release/:
#   - each Rust crate under detectors/ (its lib as <crate>.wasm, its examples under examples/),
#   - each Python detector (a detectors/*/app.py) with componentize-py, as <dir>.wasm,
#   - each JavaScript detector (a detectors/*/app.js) with componentize-js, as <dir>.wasm
#     (`-` in the folder name becomes `_`).
# Host tests and the README's examples load components from there. Run scripts/setup.sh test
# first (scripts/setup.sh is enough for `build-detectors.sh rust`, the Rust crates only).
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

# Python and JavaScript: each detectors/*/app.<ext>, rebuilt only when the folder, the WIT
# or the tool changed (a build takes ~10 s). `stamp` is a file the tool's install rewrites.
build_apps() {
    local ext=$1 tool=$2 stamp=$3 build=$4 app dir out
    for app in detectors/*/app."$ext"; do
        [ -e "$app" ] || continue
        dir=$(dirname "$app")
        out="$OUT/$(basename "$dir" | tr '-' '_').wasm"
        if [ -f "$out" ] && [ -z "$(find "$dir" "$WIT" "$stamp" -newer "$out" -type f -print -quit)" ]; then
            echo "build-detectors: $out is up to date"
            continue
        fi
        if [ ! -x "$tool" ] || [ ! -f "$stamp" ]; then
            echo "build-detectors: $tool missing: run scripts/setup.sh test" >&2
            exit 1
        fi
        mkdir -p "$OUT"
        "$build" "$dir" "$out.tmp"
        mv "$out.tmp" "$out"
        echo "build-detectors: built $out"
    done
}

COMPONENTIZE_PY="$ROOT/.tools/venv/bin/componentize-py"
build_python() {
    # --stub-wasi: the component imports only the detector world (log, config, clock);
    # any WASI call traps instead of reaching the host.
    (cd "$1" && "$COMPONENTIZE_PY" -d "$WIT" -w detector componentize --stub-wasi -p . app -o "$2")
}

COMPONENTIZE_JS="$ROOT/.tools/node/node_modules/.bin/componentize-js"
build_js() {
    # -d …: every StarlingMonkey feature that reaches WASI is off (console output, OS
    # randomness, wall clock and timers, fetch() and incoming HTTP), so the component
    # imports only the detector world (log, config, clock) and no WASI at all: the
    # detector cannot reach anything but the host (`jco wit <component>` lists the
    # imports). Math.random still answers, deterministically; timers trap.
    "$COMPONENTIZE_JS" "$1/app.js" --wit "$WIT" -n detector \
        -d stdio random clocks http fetch-event -o "$2"
}

# `build-detectors.sh rust`: only the Rust crates (all the service embeds; scripts/run.sh).
[ "${1:-}" = rust ] && exit 0

build_apps py "$COMPONENTIZE_PY" "$COMPONENTIZE_PY" build_python
# npm rewrites .tools/node/package-lock.json whenever scripts/setup.sh installs a version.
build_apps js "$COMPONENTIZE_JS" "$ROOT/.tools/node/package-lock.json" build_js
