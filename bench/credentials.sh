#!/usr/bin/env bash
# The cost of an outbound request that carries a credential the host attaches
# (docs/credentials.md), against the same request without one, to the same loopback HTTPS
# upstream, in one run, alternating A/B/C:
#
#   plain        a package declaring no credential sends the request (no scanning at all);
#   keyed        the same call made without the feature: the secret is bound into the
#                guest's environment (`KEY = "secret:API_KEY"`) and the guest sends
#                `authorization: Bearer <value>` itself (the upstream echoes the value);
#   declared     a package declaring one sends it without the placeholder (the request is
#                checked and the response redacted, nothing attached);
#   credential   the same package sends it with `authorization: Bearer <placeholder>`: the
#                host resolves the secret, sets the header, and redacts the echoed value.
#
#   ./bench/credentials.sh            # DURATION=10 ROUNDS=3 CONCURRENCY=16
#
# Connections to the upstream are pooled (per data-plane thread), as in production, so what
# each case adds is the credential work itself, not a TLS handshake. Needs wrk (installed if
# missing).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONCURRENCY=${CONCURRENCY:-16}
OUT=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$OUT"' EXIT
step() { printf '\n==> %s\n' "$*" >&2; }

command -v wrk >/dev/null || { step "installing wrk"; apt-get update -qq && apt-get install -y -qq wrk; }
rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
step "building edgeward, the upstream (release) and the guest"
cargo build --release -p edgeward-host
cargo build --release -p edgeward-bench --example tls_upstream
cargo build --release --target wasm32-wasip2 --target-dir target/guests -p plain-credential
EDGEWARD=target/release/edgeward
GUEST=target/guests/wasm32-wasip2/release/plain_credential.wasm

target/release/examples/tls_upstream "$OUT" > "$OUT/upstream.out" &
for _ in $(seq 1 200); do grep -q '^port' "$OUT/upstream.out" 2>/dev/null && break; sleep 0.05; done
PORT=$(sed -n 's/^port //p' "$OUT/upstream.out")

$EDGEWARD serve --data-dir "$OUT/data" --listen 127.0.0.1:0 --api-listen 127.0.0.1:0 \
    --outbound-allow-private --outbound-ca "$OUT/ca.pem" > "$OUT/ew.out" 2> "$OUT/ew.log" &
EW_PID=$!
for _ in $(seq 1 200); do grep -q '^ready' "$OUT/ew.out" 2>/dev/null && break; sleep 0.05; done
URL=$(sed -n 's/^listening: data-plane //p' "$OUT/ew.out")
export EDGEWARD_API; EDGEWARD_API=$(sed -n 's/^listening: api //p' "$OUT/ew.out")
export EDGEWARD_TOKEN; EDGEWARD_TOKEN=$(cat "$OUT/data/admin.token")
printf '[outbound]\nhosts = ["localhost:%s"]\n' "$PORT" > "$OUT/plain.toml"
printf '[env]\nKEY = "secret:API_KEY"\n[outbound]\nhosts = ["localhost:%s"]\n' "$PORT" > "$OUT/keyed.toml"
cat > "$OUT/cred.toml" <<TOML
[env]
KEY = "credential:API_KEY"
[outbound]
hosts = ["localhost:$PORT"]
[[outbound.credentials]]
secret = "API_KEY"
hosts = ["localhost:$PORT"]
TOML
$EDGEWARD deploy bench/plain "$GUEST" --manifest "$OUT/plain.toml" >&2
$EDGEWARD deploy bench/cred "$GUEST" --manifest "$OUT/cred.toml" >&2
$EDGEWARD deploy bench/keyed "$GUEST" --manifest "$OUT/keyed.toml" >&2
$EDGEWARD secrets set API_KEY "sk_live_51PqX1bLkdIwHu7ixBenchmarkValue0123456789" --project bench >&2

UPSTREAM="https://localhost:$PORT/v1/charges"
CASES=(
    "plain|$URL/bench/plain/?url=$UPSTREAM&put=none"
    "keyed|$URL/bench/keyed/?url=$UPSTREAM&put=bearer"
    "declared|$URL/bench/cred/?url=$UPSTREAM&put=none"
    "credential|$URL/bench/cred/?url=$UPSTREAM&put=bearer"
)
for entry in "${CASES[@]}"; do
    IFS='|' read -r name url <<< "$entry"
    answer=$(curl -s "$url")
    case "$name:$answer" in
        credential:*REDACTED*|plain:*none*|declared:*none*|keyed:*sk_live_*) ;;
        *) echo "unexpected answer for $name: $answer" >&2; exit 1 ;;
    esac
done
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
RESULTS=$OUT/results.tsv
for round in $(seq 1 "$ROUNDS"); do
    for entry in "${CASES[@]}"; do
        IFS='|' read -r name url <<< "$entry"
        before=$(cpu_ticks "$EW_PID")
        wrk -t1 -c"$CONCURRENCY" -d"${DURATION}s" --latency "$url" > "$OUT/wrk.txt"
        after=$(cpu_ticks "$EW_PID")
        rps=$(sed -n 's/^Requests\/sec:[[:space:]]*//p' "$OUT/wrk.txt")
        total=$(sed -n 's/^[[:space:]]*\([0-9]*\) requests in.*/\1/p' "$OUT/wrk.txt")
        p50=$(awk '$1 == "50%" {print $2}' "$OUT/wrk.txt")
        errors=$(sed -n 's/^[[:space:]]*Non-2xx or 3xx responses: //p' "$OUT/wrk.txt")
        cpu=$(python3 -c "import os; print(f'{($after - $before) * 1e6 / os.sysconf(\"SC_CLK_TCK\") / max($total, 1):.1f}')")
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$round" "$rps" "$p50" "$cpu" "${errors:-0}" | tee -a "$RESULTS" >&2
    done
done
python3 - "$RESULTS" <<'PY'
import sys, statistics
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
by = {}
for name, _, rps, p50, cpu, errs in rows:
    by.setdefault(name, []).append((float(rps), p50, float(cpu), int(errs)))
print(f"\n{'case':<12} {'req/s':>9} {'p50':>9} {'CPU us/req':>10} {'errors':>7} {'vs plain':>8} {'vs keyed':>8}")
base = statistics.median(r[0] for r in by["plain"])
keyed = statistics.median(r[0] for r in by["keyed"])
for name in ["plain", "keyed", "declared", "credential"]:
    runs = by[name]
    rps = statistics.median(r[0] for r in runs)
    p50 = sorted(r[1] for r in runs)[len(runs) // 2]
    cpu = statistics.median(r[2] for r in runs)
    print(f"{name:<12} {rps:>9.0f} {p50:>9} {cpu:>10.1f} {sum(r[3] for r in runs):>7} {rps / base:>8.3f} {rps / keyed:>8.3f}")
print("(keyed: the same authenticated call with the secret in the guest's environment; credential: the host attaches it)")
PY
