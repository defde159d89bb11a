#!/usr/bin/env bash
# Edit to serving in `edgeward dev`, per language: a project from `edgeward new --template http`,
# `dev` started on it, then RUNS edits of its source, each timed from the save to the first
# answer (polled every 50 ms) that shows it, with dev's own split (build, deploy, functions
# reused from the compile cache). Then dev is stopped, the source edited once more and dev
# started again: the first deploy of that run compiles from the cache kept on disk.
#
#   ./bench/dev-loop.sh                  # LANGS="rust python js" RUNS=3; the binary: EDGEWARD=path
#   CACHE=off ./bench/dev-loop.sh        # the same with `dev --no-compile-cache`, to compare
#
# Needs what ./scripts/test installs (.venv/bin/componentize-py, sdk/js/node_modules). Run it
# on an idle machine: the figures are the componentizers' and the compiler's CPU time.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-3}
LANGS=${LANGS:-rust python js}
EDGEWARD=${EDGEWARD:-$ROOT/target/release/edgeward}
DEV_FLAGS=()
[ "${CACHE:-on}" = off ] && DEV_FLAGS+=(--no-compile-cache)
[ -x "$EDGEWARD" ] || { echo "no $EDGEWARD: cargo build --release -p edgeward-host (or EDGEWARD=…)" >&2; exit 1; }
export PATH=$ROOT/.venv/bin:$ROOT/sdk/js/node_modules/.bin:$PATH
WORK=$(mktemp -d)
DEV=
trap '[ -n "$DEV" ] && kill "$DEV" 2>/dev/null; rm -rf "$WORK"' EXIT

now() { date +%s.%N; }
# Starts dev in the project, waits for its URL; sets DEV and URL.
start_dev() {
    (cd "$1" && exec "$EDGEWARD" dev --listen 127.0.0.1:0 "${DEV_FLAGS[@]}" >"$WORK/dev.out" 2>>"$WORK/dev.err") &
    DEV=$!
    for _ in $(seq 6000); do grep -q '^serving ' "$WORK/dev.out" 2>/dev/null && break; sleep 0.05; done
    URL=$(sed -n 's/^serving //p' "$WORK/dev.out" | head -1)
    [ -n "$URL" ] || { cat "$WORK/dev.err" >&2; exit 1; }
}
stop_dev() { kill -INT "$DEV"; wait "$DEV" || true; DEV=; }
# Edits the source so that it answers MARKER, waits for it; prints the seconds.
edit_and_time() {
    local file=$1 marker=$2 start
    sed -i "s/Hello from [^!]*/Hello from $marker/" "$file"
    start=$(now)
    until curl -sf "$URL" 2>/dev/null | grep -q "$marker"; do sleep 0.05; done
    echo "$(now) - $start" | bc
}

printf '%-7s %-9s %8s %8s %8s %16s\n' lang run "edit→s" build deploy "cache hits"
for lang in $LANGS; do
    name=loop-$lang
    dir=$WORK/$name
    args=(new "$name" --template http --lang "$lang" --project bench)
    [ "$lang" = rust ] && args+=(--sdk-path "$ROOT/guest-sdk")
    (cd "$WORK" && "$EDGEWARD" "${args[@]}" 2>/dev/null)
    if [ "$lang" = rust ]; then
        mkdir -p "$ROOT/target/newcomer/bench" && ln -s "$ROOT/target/newcomer/bench" "$dir/target"
    fi
    case $lang in rust) src=$dir/src/lib.rs ;; python) src=$dir/app.py ;; js) src=$dir/app.js ;; esac
    : >"$WORK/dev.err"
    start_dev "$dir"
    for run in $(seq "$RUNS") restart; do
        if [ "$run" = restart ]; then stop_dev; fi
        lines=$(grep -c '^deployed version' "$WORK/dev.err" || true)
        marker="edit-$lang-$run-$RANDOM"
        if [ "$run" = restart ]; then
            sed -i "s/Hello from [^!]*/Hello from $marker/" "$src"
            start=$(now)
            start_dev "$dir"
            until curl -sf "$URL" 2>/dev/null | grep -q "$marker"; do sleep 0.05; done
            secs=$(echo "$(now) - $start" | bc)
        else
            secs=$(edit_and_time "$src" "$marker")
        fi
        # dev's line for the version that serves the edit.
        for _ in $(seq 100); do
            [ "$(grep -c '^deployed version' "$WORK/dev.err" || true)" -gt "$lines" ] && break; sleep 0.05
        done
        line=$(grep '^deployed version' "$WORK/dev.err" | tail -1)
        build=$(sed -n 's/.*built in \([0-9.]*\) s.*/\1/p' <<<"$line")
        deploy=$(sed -n 's/.*deployed in \([0-9.]*\) s.*/\1/p' <<<"$line")
        hits=$(sed -n 's/.*; \([0-9]* of [0-9]*\) functions.*/\1/p' <<<"$line")
        printf '%-7s %-9s %8.1f %8s %8s %16s\n' "$lang" "$run" "$secs" "$build" "$deploy" "${hits:--}"
    done
    stop_dev
done
