#!/usr/bin/env bash
# Instructions per request, counted by valgrind (callgrind): noise-free where req/s on a shared
# machine swings ±10%. In-process requests (no sockets, no kernel), user space only.
#
#   ./bench/instructions.sh            # N=1000 requests per case
#   KEEP=out ./bench/instructions.sh   # keeps the callgrind files: callgrind_annotate out/pkg
#
# Cases: hello (and again with the metrics recorder installed); the secrets guest with no lookup; with 3 package-scope gets (+ reveal); with 3
# platform-scope gets (each tries package, project, platform). Prints instructions per request
# and, for the lookups, per get against the no-lookup case. Needs valgrind (Debian package;
# installed if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000}
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind; }
cargo build --quiet --release -p edgeward-bench --example requests
if [ -n "${KEEP:-}" ]; then
    OUT=$KEEP; mkdir -p "$OUT"
else
    OUT=$(mktemp -d); trap 'rm -rf "$OUT"' EXIT
fi

# count NAME GUEST PATH: instructions per request of N requests (the warm-up not counted).
count() {
    EDGEWARD_BENCH_MAX_INSTANCES=8 valgrind --tool=callgrind --toggle-collect='*run_requests*' \
        --callgrind-out-file="$OUT/$1" target/release/examples/requests "$2" "$3" "$N" \
        > /dev/null 2> "$OUT/$1.log"
    local total
    total=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$OUT/$1.log" | tail -1)
    echo $((total / N))
}

hello=$(count hello hello /)
hello_metrics=$(EDGEWARD_BENCH_METRICS=1 count hello-metrics hello /)
pkg_metrics=$(EDGEWARD_BENCH_METRICS=1 count pkg-metrics secrets '/?names=S_A,S_B,S_C')
none=$(count none secrets '/?names=')
pkg=$(count pkg secrets '/?names=S_A,S_B,S_C')
plat=$(count plat secrets '/?names=P_ONLY,P_ONLY,P_ONLY')
values=$(count values secrets '/?values=S_A,S_B,S_C')
lookups=$(count lookups lookups '/?names=S_A,S_B,S_C')
printf '%-40s %12s\n' case "instr/request"
printf '%-40s %12d\n' "hello" "$hello" "secrets, no lookup" "$none" \
    "secrets, 3 package-scope gets" "$pkg" "secrets, 3 platform-scope gets" "$plat" \
    "secrets, 3 get-value (one call each)" "$values" "lookups (hello + 3 get-value)" "$lookups"
printf '\nper get + reveal: package scope %d, platform scope %d instructions\n' \
    $(((pkg - none) / 3)) $(((plat - none) / 3))
printf '\nwith metrics (--metrics-listen): hello %d (%+.2f%%), secrets with 3 gets %d (%+.2f%%)\n' \
    "$hello_metrics" "$(python3 -c "print(($hello_metrics - $hello) / $hello * 100)")" \
    "$pkg_metrics" "$(python3 -c "print(($pkg_metrics - $pkg) / $pkg * 100)")"
printf 'secrets (3 package gets) / hello: %s (instructions; the req/s target is >= 0.9)\n' \
    "$(python3 -c "print(f'{$hello / $pkg:.3f}')")"
printf 'lookups (hello + 3 get-value) / hello: %s (instructions)\n' \
    "$(python3 -c "print(f'{$hello / $lookups:.3f}')")"
