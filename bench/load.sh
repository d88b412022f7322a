#!/bin/sh
# bench/load.sh - a training step alone and beside one busy process, 1 and 2 threads, cformer and
# PyTorch, interleaved (docs/performance.md, "Load").
#
#     bench/load.sh [ROUNDS] [CONFIG]        (default: 3 rounds of configs/bench_tiny.json)
#     BENCH_STEPS=12 BENCH_WARMUP=4 bench/load.sh
#
# "busy" is a shell loop at the same priority (`while :; do :; done`), started before and killed
# after each measured command: one other program that wants a whole core, the normal state of a
# laptop or a shared server. cformer runs as a user runs it (load following on, the CLI's wait
# policy); "2 fixed" is cformer pinned at 2 threads (--fixed-threads) to show what the load
# following saves. PyTorch (Debian's python3-torch, if present) gets the same load, same shapes.
# Each cell is the median over rounds of each run's median step.
set -eu
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
CONFIG=${2:-configs/bench_tiny.json}
STEPS=${BENCH_STEPS:-12}
WARMUP=${BENCH_WARMUP:-4}
CFORMER=${CFORMER:-build/cformer}
TORCH_PY=${TORCH_PY:-/usr/bin/python3}
have_torch=0
"$TORCH_PY" -c 'import torch' 2>/dev/null && have_torch=1
out=$(mktemp)
busy_pid=""
cleanup() { [ -n "$busy_pid" ] && kill "$busy_pid" 2>/dev/null; rm -f "$out"; }
trap cleanup EXIT INT TERM

busy_start() { sh -c 'while :; do :; done' & busy_pid=$!; sleep 0.3; }
busy_stop() { kill "$busy_pid" 2>/dev/null; wait "$busy_pid" 2>/dev/null || true; busy_pid=""; }

# measure LABEL LOAD COMMAND...: appends "LABEL LOAD STEP_MS"
measure() {
    label=$1 load=$2
    shift 2
    [ "$load" = busy ] && busy_start
    ms=$("$@" | sed -n 's/.*"step_ms": *\([0-9.]*\).*/\1/p')
    [ "$load" = busy ] && busy_stop
    echo "$label $load ${ms:-nan}" >> "$out"
}

echo "load: $CONFIG, $ROUNDS rounds, $WARMUP warm-up + $STEPS timed steps, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
r=1
while [ "$r" -le "$ROUNDS" ]; do
    for load in quiet busy; do
        for t in 1 2; do
            measure "cformer-$t" "$load" "$CFORMER" bench "$CONFIG" --json --threads "$t" --steps "$STEPS" --warmup "$WARMUP"
        done
        measure "cformer-2-fixed" "$load" "$CFORMER" bench "$CONFIG" --json --threads 2 --fixed-threads \
            --steps "$STEPS" --warmup "$WARMUP"
        if [ "$have_torch" = 1 ]; then
            for t in 1 2; do
                measure "torch-$t" "$load" "$TORCH_PY" bench/ref/torch_train_bench.py "$CONFIG" --json --threads "$t" \
                    --steps "$STEPS" --warmup "$WARMUP"
            done
        fi
        printf '.' >&2
    done
    r=$((r + 1))
done
echo >&2
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"
awk '
{ v[$1 " " $2] = v[$1 " " $2] " " $3; if (!($1 in seen)) { seen[$1] = 1; order[n++] = $1 } }
function median(s,   a, k, i, j, t) {
    k = split(s, a, " ")
    for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
}
END {
    printf "\n| run | threads | quiet step ms | beside one busy process ms | busy / quiet |\n|---|---|---|---|---|\n"
    for (i = 0; i < n; i++) {
        name = order[i]; q = median(v[name " quiet"]); b = median(v[name " busy"])
        split(name, p, "-"); th = p[2] (p[3] == "fixed" ? " (fixed)" : " (load following)")
        if (p[1] == "torch") th = p[2]
        printf "| %s | %s | %.1f | %.1f | %.2fx |\n", p[1], th, q, b, b / q
        Q[name] = q; B[name] = b
    }
    if ("cformer-1" in B && "cformer-2" in B)
        printf "\ncformer 2 threads beside a busy process: %.2fx its quiet step, %.2fx the 1-thread step under the same load\n", \
            B["cformer-2"] / Q["cformer-2"], B["cformer-2"] / B["cformer-1"]
    if ("torch-2" in B && "cformer-2" in B)
        printf "beside a busy process, 2 threads: cformer %.1f ms, PyTorch %.1f ms (%.2fx faster)\n", \
            B["cformer-2"], B["torch-2"], B["torch-2"] / B["cformer-2"]
}' "$out"
