#!/usr/bin/env bash
# A guest making one outbound HTTP call per request, Edgeward against `wasmtime serve`, the
# same guest (examples/fetch) and the same loopback upstream (bench/examples/floor.rs, plain
# hyper), in one run, alternating:
#
#   ./bench/outbound.sh            # DURATION=10 ROUNDS=3 CONCURRENCY="16 64"
#
# Edgeward sends guests' requests through its pooled client (host/src/runtime/client.rs), so
# the upstream sees a few long-lived connections; `wasmtime serve` opens a connection per
# request. Plain HTTP, because `wasmtime serve` trusts only the webpki roots and a loopback
# HTTPS upstream cannot be signed by one; the HTTPS and credential path is
# bench/credentials.sh's. Prints req/s, p50/p99, the server's and the upstream's CPU per
# request, and the upstream's connections accepted per request.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONCURRENCY=${CONCURRENCY:-"16 64"}
TOOLS=$PWD/.tools
OUT=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$OUT"' EXIT
step() { printf '\n==> %s\n' "$*" >&2; }

command -v wrk >/dev/null || { step "installing wrk"; apt-get update -qq && apt-get install -y -qq wrk; }
if [ ! -x "$TOOLS/bin/wasmtime" ]; then
    step "building wasmtime-cli 48.0.8 into .tools (once; several minutes)"
    cargo install wasmtime-cli --version 48.0.8 --locked --root "$TOOLS"
fi
rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
step "building edgeward, the upstream (release) and the guest"
cargo build --release -p edgeward-host
cargo build --release -p edgeward-bench --example floor
cargo build --release --target wasm32-wasip2 --target-dir target/guests -p fetch
EDGEWARD=target/release/edgeward
GUEST=target/guests/wasm32-wasip2/release/fetch.wasm
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

UP_PORT=$(free_port)
target/release/examples/floor "127.0.0.1:$UP_PORT" > "$OUT/upstream.out" 2>&1 &
UP_PID=$!
$EDGEWARD serve --data-dir "$OUT/data" --listen 127.0.0.1:0 --api-listen 127.0.0.1:0 \
    --outbound-allow-private > "$OUT/ew.out" 2> "$OUT/ew.log" &
EW_PID=$!
for _ in $(seq 1 200); do grep -q '^ready' "$OUT/ew.out" 2>/dev/null && break; sleep 0.05; done
EW_URL=$(sed -n 's/^listening: data-plane //p' "$OUT/ew.out")
export EDGEWARD_API; EDGEWARD_API=$(sed -n 's/^listening: api //p' "$OUT/ew.out")
export EDGEWARD_TOKEN; EDGEWARD_TOKEN=$(cat "$OUT/data/admin.token")
printf '[outbound]\nhosts = ["http://127.0.0.1:%s"]\n' "$UP_PORT" > "$OUT/fetch.toml"
$EDGEWARD deploy bench/fetch "$GUEST" --manifest "$OUT/fetch.toml" >&2
WT_PORT=$(free_port)
"$TOOLS/bin/wasmtime" serve -S cli -O pooling-memory-keep-resident=2097152 \
    -O pooling-table-keep-resident=524288 -O pooling-pagemap-scan=auto \
    --addr "127.0.0.1:$WT_PORT" "$GUEST" > "$OUT/wt.log" 2>&1 &
WT_PID=$!
UPSTREAM="http://127.0.0.1:$UP_PORT/v1/thing"
CASES=(
    "edgeward|$EW_URL/bench/fetch/?url=$UPSTREAM|$EW_PID"
)
# `wasmtime serve` runs the guest only if it links: examples/fetch uses only the SDK's `fetch`,
# which imports nothing of Edgeward's (tests/e2e credentials.rs checks it); a guest that
# attaches credentials imports edgeward:platform/credentials, which `serve` cannot stub (it has
# no --trap-unknown-imports), and would be measured on Edgeward alone.
wt_up() {
    for _ in $(seq 1 100); do
        curl -s -o /dev/null "http://127.0.0.1:$WT_PORT/" && return 0
        kill -0 "$WT_PID" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}
if wt_up; then
    CASES+=("wasmtime-serve|http://127.0.0.1:$WT_PORT/?url=$UPSTREAM|$WT_PID")
else
    echo "wasmtime serve cannot run $GUEST (it imports edgeward:platform); Edgeward alone" >&2
fi
for entry in "${CASES[@]}"; do
    IFS='|' read -r name url _ <<< "$entry"
    for _ in $(seq 1 200); do curl -s -o /dev/null "$url" && break; sleep 0.05; done
    answer=$(curl -s "$url")
    case "$answer" in
        *'"status":200'*) ;;
        *) echo "unexpected answer from $name: $answer" >&2; exit 1 ;;
    esac
done
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Connections the upstream accepted: its listening socket's accept count is not exposed, so
# count the TCP connections opened to its port (netstat's passive opens are system-wide).
passive() { awk '/^Tcp:/ && ++n == 2 {print $6}' /proc/net/snmp; }
RESULTS=$OUT/results.tsv
for c in $CONCURRENCY; do
    for round in $(seq 1 "$ROUNDS"); do
        for entry in "${CASES[@]}"; do
            IFS='|' read -r name url pid <<< "$entry"
            b=$(cpu_ticks "$pid"); ub=$(cpu_ticks "$UP_PID"); pb=$(passive)
            wrk -t1 -c"$c" -d"${DURATION}s" --latency "$url" > "$OUT/wrk.txt"
            a=$(cpu_ticks "$pid"); ua=$(cpu_ticks "$UP_PID"); pa=$(passive)
            python3 - "$name" "$c" "$b" "$a" "$ub" "$ua" "$pb" "$pa" "$OUT/wrk.txt" >> "$RESULTS" <<'PY'
import os, re, sys
name, c, b, a, ub, ua, pb, pa, path = sys.argv[1:]
text = open(path).read()
def ms(s):
    v, u = re.match(r"([\d.]+)(us|ms|s)$", s).groups()
    return float(v) * {"us": 0.001, "ms": 1, "s": 1000}[u]
total = int(re.search(r"(\d+) requests in", text).group(1))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
p50 = ms(re.search(r"^\s*50%\s+(\S+)", text, re.M).group(1))
p99 = ms(re.search(r"^\s*99%\s+(\S+)", text, re.M).group(1))
tick = 1e6 / os.sysconf("SC_CLK_TCK") / max(total, 1)
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
conns = (int(pa) - int(pb) - int(c)) / max(total, 1)  # wrk's own c connections excluded
print(f"{name}\t{c}\t{rps:.0f}\t{p50:.3f}\t{p99:.3f}\t{(int(a) - int(b)) * tick:.1f}\t"
      f"{(int(ua) - int(ub)) * tick:.1f}\t{max(conns, 0):.3f}\t{errors.group(1) if errors else 0}")
PY
            tail -n1 "$RESULTS" >&2
        done
    done
done
python3 - "$RESULTS" <<'PY'
import sys, statistics
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
by = {}
for name, c, *vals in rows:
    by.setdefault((name, int(c)), []).append([float(v) for v in vals])
print(f"\n{'server':<16} {'c':>3} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'CPU us':>7} "
      f"{'upstream us':>11} {'conns/req':>9} {'errors':>6} {'req/s x':>7}")
for (name, c), runs in sorted(by.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    m = [statistics.median(r[i] for r in runs) for i in range(7)]
    peer = by.get(("wasmtime-serve", c))
    ratio = m[0] / statistics.median(r[0] for r in peer) if peer else float("nan")
    print(f"{name:<16} {c:>3} {m[0]:>8.0f} {m[1]:>7.2f} {m[2]:>7.2f} {m[3]:>7.1f} {m[4]:>11.1f} "
          f"{m[5]:>9.3f} {sum(r[6] for r in runs):>6.0f} {ratio:>7.2f}")
PY
