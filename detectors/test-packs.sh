#!/usr/bin/env bash
# Builds the built-in detectors to WASM and runs each one's fixtures through the real
# host (`plumbline detector test`). The native harness (`cargo test -p <crate>`) runs the
# same fixtures without WASM, faster.
#
#   detectors/test-packs.sh                      # every pack
#   detectors/test-packs.sh detectors/drift/*    # some detectors
#   PLUMBLINE=target/debug/plumbline detectors/test-packs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PACKS="exfiltration prompt-edits branch-bypass credential-abuse supply-chain drift coding-agent"
if [ $# -eq 0 ]; then
  set -- $(for p in $PACKS; do ls -d detectors/$p/*/ 2>/dev/null; done)
fi
crates=()
for d in "$@"; do crates+=(-p "$(sed -n 's/^name = "\(.*\)"/\1/p' "${d%/}/Cargo.toml" | head -1)"); done
cargo build --quiet --release --target wasm32-wasip2 "${crates[@]}"
BIN=${PLUMBLINE:-target/release/plumbline}
[ -x "$BIN" ] || cargo build --quiet --release -p plumbline
failed=0
for d in "$@"; do
  d=${d%/}
  wasm=target/wasm32-wasip2/release/$(sed -n 's/^name = "\(.*\)"/\1/p' "$d/Cargo.toml" | head -1 | tr - _).wasm
  if out=$("$BIN" detector test "$wasm" "$d/fixtures" 2>&1); then
    echo "$d: $(echo "$out" | tail -1)"
  else
    echo "$d:"; echo "$out" | grep -v '^pass' ; failed=1
  fi
done
exit $failed
