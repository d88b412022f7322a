#!/bin/sh
# scripts/lsan_run.sh CFORMER - a short training run and every command on it under LeakSanitizer
# (make lsan; the unit tests have run already), then the course's MoE, copy task and tables.
# Each must exit as expected with no leak report.
# The last line reads "lsan: N runs, M with leaks or failures".
set -u
bin=$1
dir=$(mktemp -d /tmp/cformer-lsan-XXXXXX)
trap 'rm -rf "$dir"' EXIT
head -300 data/toy/train.de >"$dir/train.de"; head -300 data/toy/train.en >"$dir/train.en"
head -20 data/toy/valid.de >"$dir/valid.de"; head -20 data/toy/valid.en >"$dir/valid.en"
export LSAN_OPTIONS="exitcode=23${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
runs=0
bad=0
STDIN=""
# run WANT_EXIT NAME CMD... (stdin from $dir/stdin when present)
run() {
    want=$1; name=$2; shift 2
    runs=$((runs + 1))
    "$@" <"${STDIN:-/dev/null}" >"$dir/$name.out" 2>"$dir/$name.err"
    code=$?
    if [ "$code" -ne "$want" ] || grep -q "Sanitizer" "$dir/$name.err"; then
        bad=$((bad + 1))
        echo "lsan: $name: exit $code (want $want)"
        head -n 40 "$dir/$name.err"
    else
        echo "lsan: $name: ok"
    fi
}
T="$bin train configs/tiny.json --out $dir/run --quiet --set train.max_steps=6 --set schedule.total_steps=6
   --set schedule.warmup_steps=2 --set train.eval_every=3 --set train.save_every=3 --set train.threads=2
   --set data.train_src=$dir/train.de --set data.train_tgt=$dir/train.en --set data.valid_src=$dir/valid.de
   --set data.valid_tgt=$dir/valid.en --set data.test_src=$dir/valid.de --set data.test_tgt=$dir/valid.en"
run 0 train-4 $T --set train.max_steps=4
run 0 resume $T --resume
run 2 refuse-fresh $T
run 0 eval "$bin" eval "$dir/run" --split test --beam 2
STDIN="$dir/valid.de"
run 0 translate "$bin" translate "$dir/run"
STDIN=""
run 0 info "$bin" info "$dir/run"
run 0 bleu "$bin" bleu --ref "$dir/valid.en" --hyp "$dir/run/test.hyp"
run 0 tokenizer-train "$bin" tokenizer train --kind unigram --vocab-size 300 --out "$dir/tok.json" "$dir/train.de"
STDIN="$dir/valid.de"
run 0 tokenizer-encode "$bin" tokenizer encode --model "$dir/tok.json"
STDIN=""
run 0 config "$bin" config configs/toy.json --no-check-paths
run 2 config-error "$bin" config configs/toy.json --no-check-paths --set model.d_model=1e9
run 1 disk-full env CF_FAULT_INJECT=40+ $T --out "$dir/full"
# the course's features: MoE with relative positions and QK-norm, the copy task, the two tables
run 0 moe $T --out "$dir/moe" --set train.max_steps=4 --set model.num_experts=4 --set model.n_shared_experts=1 \
    --set model.pos_encoding=relative --set model.qk_norm=true
run 0 copy-task "$bin" train configs/copy.json --out "$dir/copy" --quiet --set train.max_steps=20 --set train.threads=2
run 0 memory "$bin" memory --preset deepseek-v3
run 0 bench-attention "$bin" bench attention --batch 1 --seq-len 32 --d-model 64 --heads 4 --reps 1 --threads 2
echo "lsan: $runs runs, $bad with leaks or failures"
[ "$bad" -eq 0 ]
