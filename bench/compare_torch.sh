#!/bin/sh
# bench/compare_torch.sh - cformer vs PyTorch training steps, side by side in one run.
#
#     bench/compare_torch.sh [ROUNDS] [CONFIG...]     (default: 3 rounds of bench_tiny and bench_small)
#     BENCH_STEPS=10 BENCH_WARMUP=2 BENCH_THREADS=2 bench/compare_torch.sh
#
# The machine is shared and noisy, so the two sides alternate (ours, torch, ours, torch, ...) and
# the table shows medians over rounds and the median of the per-round ratios: a burst of load
# from elsewhere hits one pair of runs, not one side. Both sides get the same environment
# (OPENBLAS_CORETYPE included, printed) and the same thread count. Needs Debian's python3 with
# torch (/usr/bin/python3); `make bench-torch` runs it.
set -eu
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
[ $# -gt 0 ] && shift
CONFIGS=${*:-configs/bench_tiny.json configs/bench_small.json}
STEPS=${BENCH_STEPS:-10}
WARMUP=${BENCH_WARMUP:-2}
THREADS=${BENCH_THREADS:-2}
TORCH_PY=${TORCH_PY:-/usr/bin/python3}
CFORMER=${CFORMER:-build/cformer}

if ! "$TORCH_PY" -c 'import torch' 2>/dev/null; then
    echo "compare_torch: $TORCH_PY cannot import torch (Debian: apt-get install python3-torch)" >&2
    exit 1
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "cformer vs PyTorch: $ROUNDS interleaved rounds, $WARMUP warm-up + $STEPS timed steps each, $THREADS threads," \
     "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
r=1
while [ "$r" -le "$ROUNDS" ]; do
    for c in $CONFIGS; do
        "$CFORMER" bench "$c" --json --threads "$THREADS" --steps "$STEPS" --warmup "$WARMUP" | sed "s/^{/{\"round\":$r,/" >> "$out"
        "$TORCH_PY" bench/ref/torch_train_bench.py "$c" --json --threads "$THREADS" --steps "$STEPS" --warmup "$WARMUP" \
            | sed "s/^{/{\"round\":$r,/" >> "$out"
        printf '.' >&2
    done
    r=$((r + 1))
done
echo >&2
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"
"$TORCH_PY" - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
med = statistics.median
configs = list(dict.fromkeys(r["config"] for r in rows))
print()
print("| config | ours tgt tok/s | torch tgt tok/s | ratio (median of rounds) | ours step ms | torch step ms "
      "| ours peak RSS MiB | torch peak RSS MiB | RSS ratio | ours GFLOP/s | arena mallocs in timed steps |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for c in configs:
    ours = [r for r in rows if r["config"] == c and r["impl"] == "cformer"]
    torch = [r for r in rows if r["config"] == c and r["impl"] == "torch"]
    by_round = {r["round"]: r for r in torch}
    ratios = [o["tgt_tok_s"] / by_round[o["round"]]["tgt_tok_s"] for o in ours if o["round"] in by_round]
    o_tps, t_tps = med(r["tgt_tok_s"] for r in ours), med(r["tgt_tok_s"] for r in torch)
    o_rss, t_rss = med(r["peak_rss_mib"] for r in ours), med(r["peak_rss_mib"] for r in torch)
    print(f"| {c} | {o_tps:.0f} | {t_tps:.0f} | {med(ratios):.2f}x ({', '.join(f'{x:.2f}' for x in ratios)}) "
          f"| {med(r['step_ms'] for r in ours):.1f} | {med(r['step_ms'] for r in torch):.1f} "
          f"| {o_rss:.0f} | {t_rss:.0f} | {o_rss / t_rss:.2f} | {med(r['gflop_s'] for r in ours):.1f} "
          f"| {max(r['arena_mallocs'] for r in ours)} |")
print()
print("ratio: our target tokens/s over torch's in the same round (> 1: cformer faster); RSS ratio < 0.5 is the goal")
PY
