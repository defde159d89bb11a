#!/usr/bin/env bash
# The same hello function in Rust, Python and JavaScript on one server: component size, deploy
# (compile) time, instantiation cost (the server's own histogram) and requests/s under wrk.
#
#   ./bench/languages.sh                 # DURATION=10 CONNECTIONS=8; the binary: EDGEWARD=path
#
# Needs what ./scripts/test installs (.venv/bin/componentize-py, sdk/js/node_modules) and wrk
# (Debian package). Builds each hello with `edgeward new --template http`, as a user would.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-8}
EDGEWARD=${EDGEWARD:-$ROOT/target/release/edgeward}
[ -x "$EDGEWARD" ] || { echo "no $EDGEWARD: cargo build --release -p edgeward-host (or EDGEWARD=…)" >&2; exit 1; }
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
export PATH=$ROOT/.venv/bin:$ROOT/sdk/js/node_modules/.bin:$PATH
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

cd "$WORK"
"$EDGEWARD" serve --data-dir data --listen 127.0.0.1:0 --api-listen 127.0.0.1:0 \
    --metrics-listen 127.0.0.1:0 > serve.out 2> serve.err &
for _ in $(seq 100); do grep -q '^ready' serve.out && break; sleep 0.1; done
data=$(sed -n 's/^listening: data-plane //p' serve.out)
metrics=$(sed -n 's/^listening: metrics //p' serve.out)
export EDGEWARD_DATA_DIR=$WORK/data

inst() { # sum and count of edgeward_instantiation_seconds
    curl -s "$metrics/metrics" | awk '/^edgeward_instantiation_seconds_sum/ {s=$2} /^edgeward_instantiation_seconds_count/ {c=$2} END {print s, c}'
}

printf '%-6s %10s %10s %12s %10s %10s\n' lang size_kB deploy_s instantiate_us req/s p50
for lang in rust python js; do
    name=hello-$lang
    args=(new "$name" --template http --lang "$lang" --project bench)
    [ "$lang" = rust ] && args+=(--sdk-path "$ROOT/guest-sdk")
    "$EDGEWARD" "${args[@]}" 2>/dev/null
    # Rust: the workspace's target directory for the SDK's dependencies.
    [ "$lang" = rust ] && ln -s "$ROOT/target/newcomer/bench" "$name/target" && mkdir -p "$ROOT/target/newcomer/bench"
    (cd "$name" && "$EDGEWARD" build -f edgeward.toml 2>build.err) || { cat "$name/build.err"; exit 1; }
    component=$(sed -n 's/^component = "\(.*\)"/\1/p' "$name/edgeward.toml")
    size=$(( $(stat -L -c %s "$name/$component") / 1024 ))
    start=$(date +%s.%N)
    (cd "$name" && "$EDGEWARD" deploy --no-build >/dev/null)
    deploy=$(echo "$(date +%s.%N) - $start" | bc)
    url="$data/bench/$name/"
    curl -sf "$url" >/dev/null
    read -r s0 c0 < <(inst)
    out=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$url")
    read -r s1 c1 < <(inst)
    rps=$(echo "$out" | awk '/^Requests\/sec/ {print int($2)}')
    p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
    us=$(echo "($s1 - $s0) / ($c1 - $c0) * 1000000" | bc -l)
    printf '%-6s %10d %10.1f %12.0f %10d %10s\n' "$lang" "$size" "$deploy" "$us" "$rps" "$p50"
done
