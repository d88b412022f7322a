#!/usr/bin/env bash
# bench/dist.sh [ROUNDS] [STEPS] - training throughput of one process vs 2 MPI ranks on this machine
# (docs/distributed.md). Same global batch on both sides: one process with 2 threads and
# grad_accum 2, against `mpirun -np 2` with 1 thread a rank (each bound to its core) and grad_accum
# 1 a rank. Two model sizes on the toy data: configs/toy.json (1M parameters) and the bench-small
# shape (d 256, 8 heads, 3+3 layers, d_ff 1024, vocab 8000). Rounds alternate the two sides; the
# median of each side's tokens/s (train lines after the first, so warm-up is excluded) is printed.
# Needs a `make MPI=1` build.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
steps=${2:-60}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
common="--set train.max_steps=$steps --set schedule.total_steps=$steps --set schedule.warmup_steps=10
        --set train.log_every=10 --set train.eval_every=100000 --set train.save_every=100000
        --set data.test_src=null --set data.test_tgt=null --set train.batch_tokens=3000"
small="--set model.d_model=256 --set model.n_heads=8 --set model.enc_layers=3 --set model.dec_layers=3
       --set model.d_ff=1024 --set data.vocab_size=8000"
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
tps() { grep '"event":"train"' "$1/metrics.jsonl" | tail -n +2 | sed 's/.*"tokens_per_s":\([0-9.]*\).*/\1/' | median; }
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for model in toy small; do
    extra=""
    [ "$model" = small ] && extra=$small
    one=() two=()
    for r in $(seq "$rounds"); do
        # shellcheck disable=SC2086
        build/cformer train configs/toy.json --out "$tmp/$model-one-$r" $common $extra \
            --set train.grad_accum=2 --set train.threads=2 > "$tmp/$model-one-$r.log"
        one+=("$(tps "$tmp/$model-one-$r")")
        # shellcheck disable=SC2086
        mpirun -np 2 --bind-to core build/cformer train configs/toy.json --out "$tmp/$model-two-$r" $common $extra \
            > "$tmp/$model-two-$r.log"
        two+=("$(tps "$tmp/$model-two-$r")")
        session=$(sed -n 's/.*this session \([0-9.]*\) s.*/\1/p' "$tmp/$model-two-$r.log" | head -1)
        exchange=$(sed -n 's/^gradient exchange: \([0-9.]*\) s.*/\1/p' "$tmp/$model-two-$r.log" | head -1)
        echo "$model round $r: 1 process x 2 threads ${one[-1]} tok/s | 2 ranks x 1 thread ${two[-1]} tok/s" \
             "(rank 0: ${exchange} s of ${session} s in the gradient exchange, waiting included)"
    done
    a=$(printf '%s\n' "${one[@]}" | median) b=$(printf '%s\n' "${two[@]}" | median)
    echo "$model median: 1 process ${a} | 2 ranks ${b} target tok/s (ratio $(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", b / a}'))"
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
