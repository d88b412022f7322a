#!/bin/sh
# scripts/fuzz.sh BUILD SECONDS NAME... - run each libFuzzer harness BUILD/fuzz/fuzz_NAME for
# SECONDS (make fuzz, make fuzz-smoke; docs/reliability.md).
#
# Inputs: tests/fuzz/seeds/NAME (the seed corpus, in git), tests/fuzz/regressions/NAME (every
# input a finding came from, in git: replayed first, so a fixed bug that returns fails at once)
# and BUILD/fuzz-corpus/NAME (what earlier runs found; grows, not in git). A crash or a broken
# property leaves its input in BUILD/fuzz-artifacts/ and fails the run; the log of each harness is
# BUILD/fuzz-NAME.log. The last line sums up: "fuzz: N harnesses, S s, E executions, F failed".
build=$1
secs=$2
shift 2
n_harnesses=$#
failed=0
total_execs=0
total_secs=0
mkdir -p "$build/fuzz-artifacts"
for name in "$@"; do
    bin="$build/fuzz/fuzz_$name"
    corpus="$build/fuzz-corpus/$name"
    mkdir -p "$corpus"
    set -- "$corpus" "tests/fuzz/seeds/$name"
    [ -d "tests/fuzz/regressions/$name" ] && set -- "$@" "tests/fuzz/regressions/$name"
    dict=""
    [ -f "tests/fuzz/$name.dict" ] && dict="-dict=tests/fuzz/$name.dict"
    log="$build/fuzz-$name.log"
    start=$(date +%s)
    # -max_len: larger than every seed (the line reader's cut is at 64 bytes there, and gzip
    # makes its inputs slow); -rss_limit_mb: the harness's own memory bound
    max_len=65536
    [ "$name" = lines ] && max_len=4096
    nice -n 10 "$bin" -max_total_time="$secs" -timeout=30 -rss_limit_mb=2560 -max_len=$max_len \
        -print_final_stats=1 -artifact_prefix="$build/fuzz-artifacts/$name-" $dict "$@" >"$log" 2>&1
    status=$?
    took=$(( $(date +%s) - start ))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    units=$(ls "$corpus" | wc -l)
    echo "fuzz: $name: ${took} s, ${execs:-?} executions, corpus $units inputs, exit $status"
    if [ "$status" -ne 0 ]; then
        failed=$((failed + 1))
        grep -E "ERROR|property failed|runtime error|SUMMARY|Test unit written" "$log" | head -n 20
    fi
    total_execs=$((total_execs + ${execs:-0}))
    total_secs=$((total_secs + took))
done
echo "fuzz: $n_harnesses harnesses, $total_secs s, $total_execs executions, $failed failed"
[ "$failed" -eq 0 ]
