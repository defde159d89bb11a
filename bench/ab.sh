#!/usr/bin/env bash
# Two builds of edgeward, one against the other, in one run: hello and secrets (3 package gets)
# at each concurrency, the two servers loaded in turn (A, B, B, A, …) so drift on a noisy
# machine falls on both. Prints req/s, p99 and server CPU per request, and B/A per case.
#
#   ./bench/ab.sh OLD_BINARY [NEW_BINARY]      # NEW defaults to target/release/edgeward
#   DURATION=10 ROUNDS=3 CONCURRENCY="16 64" ./bench/ab.sh /tmp/edgeward-before
#
# Keep a copy of the old binary before rebuilding (cp target/release/edgeward /tmp/…).
# Needs wrk (installed if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
A=${1:?usage: bench/ab.sh OLD_BINARY [NEW_BINARY]}
B=${2:-target/release/edgeward}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONCURRENCY=${CONCURRENCY:-16 64}
OUT=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$OUT"' EXIT
step() { printf '\n==> %s\n' "$*" >&2; }
command -v wrk >/dev/null || { step "installing wrk"; apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release --target wasm32-wasip2 --target-dir target/guests -p hello -p secrets >&2
GUESTS=target/guests/wasm32-wasip2/release

# start NAME BINARY: a server with hello and secrets (3 package secrets); sets NAME_URL, NAME_PID.
start() {
    local name=$1 bin=$2 data=$OUT/$1
    "$bin" serve --data-dir "$data" --listen 127.0.0.1:0 --api-listen 127.0.0.1:0 \
        > "$OUT/$name.out" 2> "$OUT/$name.log" &
    local pid=$!
    for _ in $(seq 1 200); do grep -q '^ready' "$OUT/$name.out" 2>/dev/null && break; sleep 0.05; done
    local url; url=$(sed -n 's/^listening: data-plane //p' "$OUT/$name.out")
    (
        export EDGEWARD_API; EDGEWARD_API=$(sed -n 's/^listening: api //p' "$OUT/$name.out")
        export EDGEWARD_TOKEN; EDGEWARD_TOKEN=$(cat "$data/admin.token")
        "$bin" deploy bench/hello "$GUESTS/hello.wasm" > /dev/null
        "$bin" deploy bench/secrets "$GUESTS/secrets.wasm" > /dev/null
        for n in A B C; do
            "$bin" secrets set "S_$n" "value-$n" --project bench --package secrets > /dev/null
        done
    )
    printf -v "${name}_URL" '%s' "$url"
    printf -v "${name}_PID" '%s' "$pid"
}
start A "$A"
start B "$B"

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run() { # NAME CASE PATH C
    local url pid; url=$(eval echo "\$${1}_URL"); pid=$(eval echo "\$${1}_PID")
    curl -s -o /dev/null "$url$3"
    local before; before=$(cpu "$pid")
    wrk -t1 -c"$4" -d"${DURATION}s" --latency "$url$3" > "$OUT/wrk.txt"
    local after; after=$(cpu "$pid")
    python3 - "$OUT/wrk.txt" "$1" "$2" "$4" "$before" "$after" <<'PY' >> "$OUT/results.tsv"
import re, sys, os
text = open(sys.argv[1]).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
def ms(s):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", s)
    v, u = float(m.group(1)), m.group(2)
    return v * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[u]
p99 = ms(re.search(r"99%\s+(\S+)", text).group(1))
total = int(re.search(r"(\d+) requests in", text).group(1))
ticks = os.sysconf("SC_CLK_TCK")
cpu_us = (int(sys.argv[6]) - int(sys.argv[5])) / ticks * 1e6 / max(total, 1)
print(f"{sys.argv[2]}\t{sys.argv[3]}\t{sys.argv[4]}\t{rps}\t{p99}\t{cpu_us}")
PY
}
for round in $(seq 1 "$ROUNDS"); do
    for c in $CONCURRENCY; do
        for case in "hello|/bench/hello/" "secrets3|/bench/secrets/?names=S_A,S_B,S_C"; do
            order="A B"; [ $((round % 2)) -eq 0 ] && order="B A"
            for who in $order; do run "$who" "${case%%|*}" "${case#*|}" "$c"; done
        done
    done
    step "round $round done"
done
python3 - "$OUT/results.tsv" "$A" "$B" <<'PY'
import sys, statistics as st
rows = [l.split("\t") for l in open(sys.argv[1]).read().split("\n") if l]
by = {}
for who, case, c, rps, p99, cpu in rows:
    by.setdefault((who, case, int(c)), []).append((float(rps), float(p99), float(cpu)))
print(f"A = {sys.argv[2]}\nB = {sys.argv[3]}")
print(f"{'case':10} {'c':>3} {'A req/s':>9} {'B req/s':>9} {'B/A':>6} {'A p99':>8} {'B p99':>8} {'A cpu':>7} {'B cpu':>7} {'B/A cpu':>7}")
for case in ("hello", "secrets3"):
    for c in sorted({k[2] for k in by}):
        a, b = by.get(("A", case, c)), by.get(("B", case, c))
        if not a or not b:
            continue
        med = lambda xs, i: st.median(x[i] for x in xs)
        print(f"{case:10} {c:>3} {med(a,0):>9.0f} {med(b,0):>9.0f} {med(b,0)/med(a,0):>6.3f} "
              f"{med(a,1):>7.2f}ms {med(b,1):>7.2f}ms {med(a,2):>6.1f}us {med(b,2):>6.1f}us {med(b,2)/med(a,2):>7.3f}")
PY
