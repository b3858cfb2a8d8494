#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets, docs/fuzzing.md) for SECONDS_PER_TARGET seconds
# from seeds made of the repository's fixtures, and fails if any target crashed (a panic, a
# broken invariant, an input slower than TIMEOUT seconds or larger than 2 GB of memory).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]        default 4: the bounded run of scripts/test.sh
#   FUZZ_PROFILE=release scripts/fuzz.sh 3600   the long run (optimised build)
#   FUZZ_TARGETS="pack policy" scripts/fuzz.sh 60
#   FUZZ_FLAGS="--codegen-units 16" ...         extra cargo-fuzz build flags (faster builds)
#
# Crashing inputs land in fuzz/artifacts/<target>/, the growing corpus in fuzz/corpus/<target>/
# (both git-ignored), the output of each run in fuzz/target/logs/<target>.log.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET=${1:-4}
PROFILE=${FUZZ_PROFILE:-dev}
TIMEOUT=${FUZZ_TIMEOUT:-10}

# cargo-fuzz and the nightly toolchain (installed only when missing).
scripts/setup.sh fuzz

# No sanitizer: the code under test is safe Rust, so AddressSanitizer would find nothing
# that bounds checks do not already turn into a panic, at about twice the build and run
# time. Panics, overflow checks and debug assertions (on in both profiles) are the oracle.
case "$PROFILE" in
    dev) flags=(--sanitizer none --dev) ;;
    release) flags=(--sanitizer none --release --debug-assertions) ;;
    *) echo "fuzz: FUZZ_PROFILE is dev or release, not $PROFILE" >&2; exit 2 ;;
esac
# shellcheck disable=SC2206
flags+=(${FUZZ_FLAGS:-})

python3 fuzz/seeds.py fuzz/corpus >/dev/null
cd fuzz
started=$(date +%s)
cargo +nightly fuzz build "${flags[@]}"
echo "fuzz: built in $(( $(date +%s) - started )) s ($PROFILE profile)"

mkdir -p target/logs
targets=${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}
failed=()
for t in $targets; do
    log=target/logs/$t.log
    if cargo +nightly fuzz run "${flags[@]}" "$t" -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout="$TIMEOUT" -rss_limit_mb=2048 \
        -print_final_stats=1 >"$log" 2>&1; then
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
        corp=$(grep -o 'corp: [0-9]*' "$log" | tail -1)
        echo "fuzz: $t ok: ${execs:-?} runs in ${SECONDS_PER_TARGET} s, ${cov:-cov: ?}, ${corp:-corp: ?}"
    else
        failed+=("$t")
        echo "fuzz: $t FAILED (fuzz/$log):" >&2
        grep -E "panicked|ERROR: libFuzzer|SUMMARY|Test unit written|deadly signal|timeout" "$log" | head -20 >&2 || tail -40 "$log" >&2
    fi
done
echo "fuzz: ${SECONDS_PER_TARGET} s per target, $(( $(date +%s) - started )) s in all"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: crashed: ${failed[*]} (inputs in fuzz/artifacts/; docs/fuzzing.md says how to make a regression test)" >&2
    exit 1
fi
