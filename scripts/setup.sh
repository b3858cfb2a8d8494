#!/usr/bin/env bash
# Installs what Plumbline needs beyond a Rust toolchain. Idempotent: each step checks before
# it installs. Pinned versions live here and nowhere else.
#
#   scripts/setup.sh        what the service needs: the wasm32-wasip2 target (scripts/run.sh)
#   scripts/setup.sh test   that, and what only the tests need: the Python and JavaScript
#                           detector tools, Chromium for the browser test, cargo-fuzz
#   scripts/setup.sh fuzz   cargo-fuzz and the nightly toolchain only
#   scripts/setup.sh cluster  nats-server (Debian's), for scripts/cluster-demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

COMPONENTIZE_PY_VERSION=0.25.1   # Python detectors -> WebAssembly components
COMPONENTIZE_JS_VERSION=0.23.0   # JavaScript detectors -> WebAssembly components
CARGO_FUZZ_VERSION=0.13.2        # fuzz targets (scripts/fuzz.sh), libFuzzer on nightly
VENV=.tools/venv
NODE_TOOLS=.tools/node

# The fuzz tools: the nightly toolchain (libFuzzer's instrumentation needs it) and
# cargo-fuzz, built from crates.io. `scripts/setup.sh fuzz` installs only these.
setup_fuzz() {
    if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
        rustup toolchain install nightly --profile minimal
    fi
    if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
        cargo install --locked --quiet cargo-fuzz --version "$CARGO_FUZZ_VERSION"
    fi
}
# A cluster's log: Debian's NATS server with JetStream (2.9 on bookworm). Only the cluster
# demo and the tests need it; one node never does.
setup_cluster() {
    if ! command -v nats-server >/dev/null 2>&1; then
        if command -v apt-get >/dev/null 2>&1; then
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null
        else
            echo "setup: the cluster tests and demo need nats-server (2.9 or newer) on PATH" >&2
            exit 1
        fi
    fi
}
MODE=${1:-service}
case "$MODE" in
    service | test) ;;
    fuzz) setup_fuzz; exit 0 ;;
    cluster) setup_cluster; echo "setup: ok ($(nats-server --version))"; exit 0 ;;
    *) echo "setup: the mode is service (default), test, fuzz or cluster, not $MODE" >&2; exit 2 ;;
esac

# Rust detectors compile to WASI 0.2 components.
if command -v rustup >/dev/null 2>&1; then
    if ! rustup target list --installed | grep -qx wasm32-wasip2; then
        rustup target add wasm32-wasip2
    fi
fi

if [ "$MODE" = service ]; then
    echo "setup: ok (wasm32-wasip2)"
    exit 0
fi
setup_fuzz

# The Python detector toolchain, in a project-local virtualenv (never the system Python).
if ! command -v python3 >/dev/null 2>&1; then
    echo "setup: python3 is required for the Python example detector" >&2
    if command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq python3 python3-venv >/dev/null
    else
        exit 1
    fi
fi
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" || {
        command -v apt-get >/dev/null 2>&1 && apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
        python3 -m venv "$VENV"
    }
fi
installed=$("$VENV/bin/python" -m pip show componentize-py 2>/dev/null | sed -n 's/^Version: //p' || true)
if [ "$installed" != "$COMPONENTIZE_PY_VERSION" ]; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        "componentize-py==$COMPONENTIZE_PY_VERSION"
fi
# The JavaScript detector toolchain (componentize-js: the Bytecode Alliance's JS -> component
# tool, SpiderMonkey inside), in a project-local npm prefix (never a global install).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "setup: node and npm (Node.js 18 or newer) are required to build the JavaScript example detector; install them (e.g. apt-get install nodejs npm) and run setup again" >&2
    exit 1
fi
js_manifest="$NODE_TOOLS/node_modules/@bytecodealliance/componentize-js/package.json"
installed=$(node -p "require('./$js_manifest').version" 2>/dev/null || true)
if [ "$installed" != "$COMPONENTIZE_JS_VERSION" ]; then
    npm install --prefix "$NODE_TOOLS" --no-audit --no-fund --save-exact --loglevel=error \
        "@bytecodealliance/componentize-js@$COMPONENTIZE_JS_VERSION"
fi
# The review page's browser test (tests/e2e_review.rs): Debian's headless Chromium and its
# WebDriver, never a browser build downloaded by a tool.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    if command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
    else
        echo "setup: the browser test needs chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver)" >&2
        exit 1
    fi
fi
setup_cluster
echo "setup: ok (nats-server, wasm32-wasip2, componentize-py $COMPONENTIZE_PY_VERSION in $VENV, componentize-js $COMPONENTIZE_JS_VERSION in $NODE_TOOLS, chromium, cargo-fuzz $CARGO_FUZZ_VERSION)"
