#!/bin/sh
# Run each test binary, then print one total line "N passed, M failed" (exit 1 if M > 0).
passed=0; failed=0
for bin in "$@"; do
    out=$(mktemp)
    "$bin" | tee "$out"
    status=$?
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
    rm -f "$out"
    if [ -z "$line" ]; then
        echo "run_tests: $bin ended without a summary line (exit $status)"
        failed=$((failed + 1))
        continue
    fi
    p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}
    passed=$((passed + p)); failed=$((failed + f))
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
