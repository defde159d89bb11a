#!/usr/bin/env bash
# The cost of consent (docs/user-secrets.md): a request that reads a user secret through a
# version the user granted, against one that reads a package secret, in one run, alternating:
#
#   package        no token; the secrets guest reads a package secret (get_from(Package));
#   package+token  the same with the user's token (the version declares no user secrets):
#                  what checking a token costs by itself;
#   user           the user's token, to a version that declares `user-secrets` and that the
#                  user granted: token check, grant lookup and MAC, the data key opened from
#                  the token's slot, the user secret opened, the record sealed.
#
#   ./bench/consent.sh                 # DURATION=10 ROUNDS=3 CONCURRENCY=16
#   INSTR=1 ./bench/consent.sh         # also instructions per request of the whole server
#                                      # (callgrind, N=500 requests per case, no load tool)
#
# Needs wrk (installed if missing), and valgrind for INSTR=1.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONCURRENCY=${CONCURRENCY:-16}
N=${N:-500}
OUT=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$OUT"' EXIT
step() { printf '\n==> %s\n' "$*" >&2; }

command -v wrk >/dev/null || { step "installing wrk"; apt-get update -qq && apt-get install -y -qq wrk; }
rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
step "building edgeward (release) and the guest"
cargo build --release -p edgeward-host
cargo build --release --target wasm32-wasip2 --target-dir target/guests -p secrets
EDGEWARD=target/release/edgeward
GUEST=target/guests/wasm32-wasip2/release/secrets.wasm

# start [WRAPPER…]: starts the server (under WRAPPER, e.g. valgrind) on the data dir.
start() {
    : > "$OUT/ew.out"
    "$@" $EDGEWARD serve --data-dir "$OUT/data" --listen 127.0.0.1:0 --api-listen 127.0.0.1:0 \
        > "$OUT/ew.out" 2> "$OUT/ew.log" &
    EW_PID=$!
    for _ in $(seq 1 2400); do grep -q '^ready' "$OUT/ew.out" 2>/dev/null && break; sleep 0.05; done
    URL=$(sed -n 's/^listening: data-plane //p' "$OUT/ew.out")
    export EDGEWARD_API; EDGEWARD_API=$(sed -n 's/^listening: api //p' "$OUT/ew.out")
    export EDGEWARD_TOKEN; EDGEWARD_TOKEN=$(cat "$OUT/data/admin.token")
    CASES=(
        "package||$URL/bench/pkg/?name=KEY&scope=package"
        "package+token|$ALICE|$URL/bench/pkg/?name=KEY&scope=package"
        "user|$ALICE|$URL/bench/user/?name=KEY&scope=user"
    )
}

# setup: the two packages, a package secret, alice (enrolled) with a user secret and her grant.
setup() {
    $EDGEWARD deploy bench/pkg "$GUEST" >&2
    printf 'user-secrets = ["KEY"]\n' > "$OUT/user.toml"
    $EDGEWARD deploy bench/user "$GUEST" --manifest "$OUT/user.toml" >&2
    $EDGEWARD secrets set KEY "package-value-0123456789abcdef" --project bench --package pkg >&2
    $EDGEWARD users create alice >&2
    code=$($EDGEWARD users enroll alice 2>/dev/null)
    ALICE=$($EDGEWARD enroll "$code" 2>/dev/null)
    EDGEWARD_TOKEN=$ALICE $EDGEWARD secrets set KEY "user-value-0123456789abcdef" --user >&2
    EDGEWARD_TOKEN=$ALICE $EDGEWARD grants add bench/user --yes >&2
}

check() {
    for entry in "${CASES[@]}"; do
        IFS='|' read -r name token url <<< "$entry"
        answer=$(curl -s ${token:+-H "Authorization: Bearer $token"} "$url")
        case "$answer" in
            *'"found":true'*) ;;
            *) echo "unexpected answer for $name: $answer" >&2; exit 1 ;;
        esac
    done
}

step "req/s and CPU per request: $ROUNDS rounds of ${DURATION}s, $CONCURRENCY connections"
ALICE=
start
setup
CASES=(
    "package||$URL/bench/pkg/?name=KEY&scope=package"
    "package+token|$ALICE|$URL/bench/pkg/?name=KEY&scope=package"
    "user|$ALICE|$URL/bench/user/?name=KEY&scope=user"
)
check
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
RESULTS=$OUT/results.tsv
for round in $(seq 1 "$ROUNDS"); do
    # Each round starts with another case: whatever grows as a run goes on (the records
    # table, and its retention work) must not always fall on the same one.
    shift_by=$(( (round - 1) % ${#CASES[@]} ))
    for entry in "${CASES[@]:$shift_by}" "${CASES[@]:0:$shift_by}"; do
        IFS='|' read -r name token url <<< "$entry"
        before=$(cpu_ticks "$EW_PID")
        wrk -t1 -c"$CONCURRENCY" -d"${DURATION}s" --latency \
            ${token:+-H "Authorization: Bearer $token"} "$url" > "$OUT/wrk.txt"
        after=$(cpu_ticks "$EW_PID")
        rps=$(sed -n 's/^Requests\/sec:[[:space:]]*//p' "$OUT/wrk.txt")
        total=$(sed -n 's/^[[:space:]]*\([0-9]*\) requests in.*/\1/p' "$OUT/wrk.txt")
        p50=$(awk '$1 == "50%" {print $2}' "$OUT/wrk.txt")
        errors=$(sed -n 's/^[[:space:]]*Non-2xx or 3xx responses: //p' "$OUT/wrk.txt")
        cpu=$(python3 -c "import os; print(f'{($after - $before) * 1e6 / os.sysconf(\"SC_CLK_TCK\") / max($total, 1):.1f}')")
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$round" "$rps" "$p50" "$cpu" "${errors:-0}" | tee -a "$RESULTS" >&2
    done
done
kill "$EW_PID"; wait "$EW_PID" 2>/dev/null || true

if [ -n "${INSTR:-}" ]; then
    command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind; }
    step "instructions per request of the whole server (callgrind), $N requests per case"
    # The components are compiled already (the restart loads them from the data directory),
    # so valgrind runs only the requests' code. A small instance pool: valgrind cannot reserve
    # the default pool's address space.
    export EDGEWARD_MAX_INSTANCES=8
    # A fresh data directory: the load above left thousands of records, whose retention work
    # (once a second, and valgrind makes every second long) would be counted as the requests'.
    rm -rf "$OUT/data"
    start
    setup
    kill "$EW_PID"; wait "$EW_PID" 2>/dev/null || true
    for name in package package+token user; do
        start valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.$name" \
            --instr-atstart=no
        IFS='|' read -r name token url <<< "$(printf '%s\n' "${CASES[@]}" | grep "^$name|")"
        # Warm up uncounted, then count N requests.
        for _ in $(seq 1 20); do curl -s ${token:+-H "Authorization: Bearer $token"} "$url" > /dev/null; done
        callgrind_control -i on "$EW_PID" > /dev/null
        for _ in $(seq 1 "$N"); do curl -s ${token:+-H "Authorization: Bearer $token"} "$url" > /dev/null; done
        callgrind_control -i off "$EW_PID" > /dev/null
        kill "$EW_PID"; wait "$EW_PID" 2>/dev/null || true
        # What was collected while instrumentation was on (valgrind's summary at exit).
        total=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$OUT/ew.log" | tail -1)
        printf '%s\tinstr\t%s\n' "$name" "$((total / N))" | tee -a "$OUT/instr.tsv" >&2
    done
fi

python3 - "$RESULTS" "$OUT/instr.tsv" <<'PY'
import os, sys, statistics
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
instr = {}
if os.path.exists(sys.argv[2]):
    for l in open(sys.argv[2]):
        name, _, n = l.rstrip("\n").split("\t")
        instr[name] = int(n)
by = {}
for name, _, rps, p50, cpu, errs in rows:
    by.setdefault(name, []).append((float(rps), p50, float(cpu), int(errs)))
print(f"\n{'case':<14} {'req/s':>9} {'p50':>9} {'CPU us/req':>10} {'errors':>7} {'vs package':>10} {'instr/req':>10}")
base = statistics.median(r[0] for r in by["package"])
for name in ["package", "package+token", "user"]:
    runs = by[name]
    rps = statistics.median(r[0] for r in runs)
    p50 = sorted(r[1] for r in runs)[len(runs) // 2]
    cpu = statistics.median(r[2] for r in runs)
    i = instr.get(name)
    print(f"{name:<14} {rps:>9.0f} {p50:>9} {cpu:>10.1f} {sum(r[3] for r in runs):>7} {rps / base:>10.3f} {i if i else '-':>10}")
if instr.get("package") and instr.get("user"):
    print(f"\nuser / package by instructions: {instr['user'] / instr['package']:.3f} (target within 10%)")
PY
