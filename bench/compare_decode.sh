#!/bin/sh
# bench/compare_decode.sh - cformer vs PyTorch decoding (greedy and beam search), side by side in one run.
#
#     bench/compare_decode.sh [ROUNDS] [TARGET...]
#     DECODE_THREADS=2 DECODE_REPS=3 DECODE_BEAMS=1,4 DECODE_N=128 bench/compare_decode.sh 3 runs/multi30k
#     DECODE_NO_PACK=1 CFORMER_BASE=/tmp/old/cformer bench/compare_decode.sh      (extra columns, below)
#
# A TARGET is a run or checkpoint directory (its model decodes the run's data.test_src, e.g. the
# Multi30k test set) or a config (a random model of its shapes decodes DECODE_N random sources of
# bench.src_len tokens: configs/bench_small.json by default). `cformer bench decode TARGET --out-dir`
# writes the source ids (and a random model's weights) once, so both sides decode the same sources
# with the same weights, by the same rules (bench/ref/torch_decode_bench.py, docs/decoding.md).
#
# The machine is shared and noisy, so the sides alternate (ours, torch, ours, torch, ...), each
# run times DECODE_REPS passes over the whole set after one untimed pass and reports their
# median; the table shows medians over rounds and the median of the per-round ratios (min-max in
# brackets). Both sides get the same environment (OPENBLAS_CORETYPE included, printed) and thread
# count; the load average is printed before and after. The "per CPU-second" ratio divides the
# sentences each side decodes per second of its process's CPU time (median pass; all threads):
# with 1 thread on a busy machine it moves much less than the wall-time ratio. Outputs are compared token for token: the
# last column counts the sentences whose translations differ (0 expected: float ties aside).
# DECODE_NO_PACK=1 adds `cformer bench decode --no-pack` (the tiled BLAS products instead of the
# packed weights) to every round, CFORMER_BASE=BINARY another cformer binary (an older commit);
# each gets a column of its own, still interleaved. TORCH_ENV="OMP_WAIT_POLICY=PASSIVE" runs the
# torch side in that environment: on a busy machine its OpenMP threads otherwise spin at every
# barrier (docs/performance.md, "Decoding").
# DECODE_ROWS=FILE keeps the raw JSON rows there (one per run and beam). Needs Debian's python3 with torch
# (/usr/bin/python3); `make bench` runs it when torch is there.
set -eu
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
[ $# -gt 0 ] && shift
TARGETS=${*:-configs/bench_small.json}
THREADS=${DECODE_THREADS:-2}
REPS=${DECODE_REPS:-3}
BEAMS=${DECODE_BEAMS:-1,4}
N=${DECODE_N:-0}
TORCH_PY=${TORCH_PY:-/usr/bin/python3}
CFORMER=${CFORMER:-build/cformer}
BASE=${CFORMER_BASE:-}
NO_PACK=${DECODE_NO_PACK:-0}
TORCH_ENV=${TORCH_ENV:-}

if ! "$TORCH_PY" -c 'import torch' 2>/dev/null; then
    echo "compare_decode: $TORCH_PY cannot import torch (Debian: apt-get install python3-torch)" >&2
    exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=${DECODE_ROWS:-$work/rows.jsonl}
: > "$out"
echo "cformer vs PyTorch decoding: $ROUNDS interleaved rounds, 1 untimed + $REPS timed passes each, beams $BEAMS," \
     "$THREADS threads, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}${TORCH_ENV:+, torch side: $TORCH_ENV}"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
t=0
for target in $TARGETS; do
    t=$((t + 1))
    dir="$work/t$t"
    nflag=""
    [ "$N" -gt 0 ] && nflag="--n $N"
    # the set (and a random model) once; its outputs are round 0's, not timed here
    # shellcheck disable=SC2086
    "$CFORMER" bench decode "$target" --json --reps 1 --beam "$BEAMS" --threads "$THREADS" $nflag --out-dir "$dir" > /dev/null
    if [ -d "$target" ]; then model="$target"; else model="$dir/model.safetensors"; fi
    r=1
    while [ "$r" -le "$ROUNDS" ]; do
        tag="{\"round\":$r,\"target\":\"$target\","
        # shellcheck disable=SC2086
        "$CFORMER" bench decode "$target" --json --reps "$REPS" --beam "$BEAMS" --threads "$THREADS" $nflag \
            --out-dir "$dir" | sed "s|^{|$tag\"side\":\"ours\",|" >> "$out"
        # shellcheck disable=SC2086
        env $TORCH_ENV "$TORCH_PY" bench/ref/torch_decode_bench.py "$model" --src-ids "$dir/src.ids" --json --reps "$REPS" \
            --beam "$BEAMS" --threads "$THREADS" --out-dir "$dir" | sed "s|^{|$tag\"side\":\"torch\",|" >> "$out"
        if [ "$NO_PACK" = 1 ]; then
            # shellcheck disable=SC2086
            "$CFORMER" bench decode "$target" --json --reps "$REPS" --beam "$BEAMS" --threads "$THREADS" $nflag \
                --no-pack | sed "s|^{|$tag\"side\":\"ours --no-pack\",|" >> "$out"
        fi
        if [ -n "$BASE" ]; then
            # shellcheck disable=SC2086
            "$BASE" bench decode "$target" --json --reps "$REPS" --beam "$BEAMS" --threads "$THREADS" $nflag \
                | sed "s|^{|$tag\"side\":\"base\",|" >> "$out"
        fi
        printf '.' >&2
        r=$((r + 1))
    done
    for b in $(echo "$BEAMS" | tr ',' ' '); do
        # sentences whose outputs differ (ours vs torch, input order, last round)
        diff_n=$(paste -d'|' "$dir/beam$b.ids" "$dir/torch.beam$b.ids" | awk -F'|' '$1 != $2 {n++} END {print n + 0}')
        echo "{\"target\":\"$target\",\"beam\":$b,\"differ\":$diff_n,\"side\":\"check\"}" >> "$out"
    done
done
echo >&2
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"
"$TORCH_PY" - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
med = statistics.median
extra = [s for s in ("ours --no-pack", "base") if any(r["side"] == s for r in rows)]
head = ("| set | search | sentences | ours sent/s | torch sent/s | ratio (min-max) | ours tgt tok/s | torch tgt tok/s "
        "| ratio per CPU-second (min-max) "
        + "".join(f"| {s} sent/s | ours / {s} | per CPU-second " for s in extra) + "| outputs differ |")
print()
print(head)
print("|" + "---|" * (head.count("|") - 1))
for target in dict.fromkeys(r["target"] for r in rows):
    for beam in dict.fromkeys(r["beam"] for r in rows if r["target"] == target):
        pick = lambda side: [r for r in rows if r["target"] == target and r["beam"] == beam and r["side"] == side]
        ours, torch = pick("ours"), pick("torch")
        def ratio_to(other, key="sent_s"):
            by_round = {r["round"]: r for r in other}
            rs = [o[key] / by_round[o["round"]][key] for o in ours if o["round"] in by_round and key in o
                  and key in by_round[o["round"]]]
            return f"{med(rs):.2f}x ({min(rs):.2f}-{max(rs):.2f})" if rs else "-"
        cells = [target if not target.startswith("configs/") else target + " (random model)",
                 "greedy" if beam == 1 else f"beam {beam}", str(ours[0]["sentences"]),
                 f"{med(r['sent_s'] for r in ours):.1f}", f"{med(r['sent_s'] for r in torch):.1f}", ratio_to(torch),
                 f"{med(r['tgt_tok_s'] for r in ours):.0f}", f"{med(r['tgt_tok_s'] for r in torch):.0f}",
                 ratio_to(torch, "sent_per_cpu_s")]
        for s in extra:
            cells += [f"{med(r['sent_s'] for r in pick(s)):.1f}", ratio_to(pick(s)), ratio_to(pick(s), "sent_per_cpu_s")]
        check = pick("check")
        cells.append(str(check[0]["differ"]) if check else "-")
        print("| " + " | ".join(cells) + " |")
PY
