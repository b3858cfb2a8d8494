#!/usr/bin/env bash
# Three Plumbline nodes and a NATS JetStream server on loopback. A fixed workload
# (benign traffic with misaligned stories) is streamed through all three; one node is
# SIGKILLed mid-stream and restarted. The same input then goes through a single node,
# and the last line compares the two runs:
#
#   cluster: nodes=3 acked=N evaluated_once=N lost=0 duplicates=0 alerts_cluster=A alerts_single=A match=true
#
# Environment: PLUMBLINE_BIN (default target/release/plumbline, built if missing),
# EVENTS (benign events, default 2000), PORT (first of five loopback ports, default 17600),
# KEEP=1 keeps the work directory.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${PLUMBLINE_BIN:-target/release/plumbline}
EVENTS=${EVENTS:-2000}
PORT=${PORT:-17600}
NATS_PORT=$PORT
if [ ! -x "$BIN" ]; then
    cargo build --release -p plumbline
fi
command -v nats-server >/dev/null 2>&1 || scripts/setup.sh cluster

WORK=$(mktemp -d /tmp/plumbline-cluster.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "${KEEP:-0}" = 1 ]; then echo "work directory kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# Settle re-evaluations run on the wall clock (minutes after a change): off in both runs,
# so the comparison does not depend on when it is made. One compile cache for all nodes.
cat >"$WORK/plumbline.toml" <<TOML
[trajectory]
settle_secs = []
[runtime]
cache_dir = "$WORK/cache"
TOML

nats-server -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$WORK/jetstream" >"$WORK/nats.log" 2>&1 &
PIDS+=($!)

url() { echo "http://127.0.0.1:$((PORT + $1))"; }
declare -A NODE_PID
start_node() {
    PLUMBLINE_CLUSTER_ENABLED=true PLUMBLINE_CLUSTER_NODE="node$1" \
        PLUMBLINE_CLUSTER_URL="nats://127.0.0.1:$NATS_PORT" PLUMBLINE_CLUSTER_LEASE_SECS=3 \
        "$BIN" serve --listen "127.0.0.1:$((PORT + $1))" --data "$WORK/node$1" \
        --config "$WORK/plumbline.toml" >>"$WORK/node$1.log" 2>&1 &
    NODE_PID[$1]=$!
    PIDS+=($!)
}
wait_up() {
    for _ in $(seq 1 600); do
        if curl -fsS "$(url "$1")/healthz" >/dev/null 2>&1; then return 0; fi
        sleep 0.5
    done
    echo "node on $(url "$1") did not start; its log:" >&2
    tail -20 "$WORK/node$1.log" >&2 || true
    exit 1
}
# Until every node sees all three and the partitions are dealt out.
wait_dealt() {
    for _ in $(seq 1 120); do
        total=0
        for i in 1 2 3; do
            n=$(curl -fsS "$(url "$i")/v1/cluster" 2>/dev/null | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d["owned"]) if len(d["live"])==3 else 0)' 2>/dev/null || echo 0)
            total=$((total + n))
        done
        [ "$total" -ge 16 ] && return 0
        sleep 0.5
    done
    echo "the partitions were not dealt out to three nodes" >&2
    exit 1
}

echo "starting nats-server and three nodes in $WORK" >&2
start_node 1
wait_up 1 # the first start compiles the detectors into the shared cache
start_node 2
start_node 3
wait_up 2
wait_up 3
wait_dealt

"$BIN" cluster workload --events "$EVENTS" >"$WORK/workload.ndjson"
echo "streaming $(wc -l <"$WORK/workload.ndjson") events through three nodes; node2 is killed mid-stream" >&2
"$BIN" cluster send --to "$(url 1),$(url 2),$(url 3)" --batch 20 --rate 10 \
    --acked "$WORK/acked.txt" "$WORK/workload.ndjson" &
SENDER=$!
sleep 3
kill -9 "${NODE_PID[2]}"
echo "node2 killed (SIGKILL) after $(wc -l <"$WORK/acked.txt") acknowledged events; restarting it" >&2
sleep 2
start_node 2
wait "$SENDER"
wait_up 2

echo "the same input through a single node" >&2
"$BIN" serve --listen "127.0.0.1:$((PORT + 4))" --data "$WORK/single" \
    --config "$WORK/plumbline.toml" >"$WORK/single.log" 2>&1 &
PIDS+=($!)
wait_up 4
"$BIN" cluster send --to "$(url 4)" --batch 20 --acked "$WORK/acked-single.txt" "$WORK/workload.ndjson"

"$BIN" cluster check --nats "nats://127.0.0.1:$NATS_PORT" --acked "$WORK/acked.txt" \
    --nodes "$(url 1),$(url 2),$(url 3)" --single "$(url 4)"
