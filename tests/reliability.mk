# tests/reliability.mk - the sanitizer and fuzzing targets (docs/reliability.md); the Makefile
# includes it.
#   make lsan        every test, then a short training run and the commands on it, under
#                    LeakSanitizer alone (gcc, like the normal build)
#   make tsan        the kernels' thread-count determinism tests under ThreadSanitizer: clang,
#                    LLVM's OpenMP runtime with its Archer tool (so TSan sees OpenMP's
#                    synchronisation) and tests/blas_naive.c instead of OpenBLAS (so TSan sees
#                    every access). TSAN_TESTS="across_threads any_thread_count" adds the
#                    end-to-end training on 1-4 threads (about 40 min under TSan here, not in CI)
#   make fuzz        every libFuzzer harness of tests/fuzz/ for FUZZ_TIME seconds (default 600)
#   make fuzz-smoke  the same for FUZZ_SMOKE_TIME seconds each (30; CI runs it)
# Each builds into its own directory (build-lsan, build-tsan, build-fuzz). clang, libomp and the
# clang runtimes come from Debian: scripts/deps.sh --sanitizers installs them.
CLANG           ?= clang
LLVM_DIR        := $(shell $(CLANG) -print-resource-dir 2>/dev/null | sed 's|/lib/clang/.*||')
ARCHER          ?= $(LLVM_DIR)/lib/libarcher.so
FUZZ_NAMES      := config safetensors tokenizer_json tokenizer_roundtrip lines bleu state
FUZZ_TIME       ?= 600
FUZZ_SMOKE_TIME ?= 30
# the kernels' determinism tests (tests/runner.c selects by substring); make tsan runs these
TSAN_TESTS      ?= across_threads decode_same_for_any_thread_count gemm_matches_reference_and_any_thread_count
SAN_LDLIBS      := -lcjson -lz -lm
SAN_OPT         := -O1 -g -fno-omit-frame-pointer
# clang cannot vectorise some `omp simd` loops at -O1 and says so: noise here
CLANG_QUIET     := -Wno-pass-failed -Wno-format-zero-length -Werror=implicit-function-declaration

.PHONY: lsan tsan fuzz fuzz-smoke fuzz-bins sanitizer-deps

sanitizer-deps:
	@scripts/deps.sh --sanitizers

lsan:
	@$(MAKE) --no-print-directory BUILD=build-lsan OPT="$(SAN_OPT)" EXTRA_CFLAGS="-fsanitize=leak -DCF_SANITIZER" \
	    EXTRA_LDFLAGS="-fsanitize=leak" test
	@scripts/lsan_run.sh build-lsan/cformer

# The BLAS stand-in is built on its own first: the binaries take it through LDLIBS.
TSAN_MAKE = $(MAKE) --no-print-directory BUILD=build-tsan CC=$(CLANG) OPT="$(SAN_OPT)" \
    EXTRA_CFLAGS="-fsanitize=thread -DCF_SANITIZER $(CLANG_QUIET)" EXTRA_LDFLAGS="-fsanitize=thread" \
    LDLIBS="build-tsan/obj/tests/blas_naive.o $(SAN_LDLIBS)"
tsan: sanitizer-deps
	+@$(TSAN_MAKE) build-tsan/obj/tests/blas_naive.o
	+@$(TSAN_MAKE) build-tsan/tests/unit build-tsan/cformer
	@echo "TSAN  build-tsan/tests/unit $(TSAN_TESTS) (OMP_TOOL_LIBRARIES=$(ARCHER))"
	@TSAN_OPTIONS="halt_on_error=1 exitcode=66 ignore_noninstrumented_modules=1 $(TSAN_OPTIONS)" \
	    OMP_TOOL_LIBRARIES="$(ARCHER)" ARCHER_OPTIONS="verbose=1" \
	    build-tsan/tests/unit $(TSAN_TESTS)

FUZZ_MAKE = $(MAKE) --no-print-directory BUILD=build-fuzz CC=$(CLANG) OPT="$(SAN_OPT)" \
    EXTRA_CFLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all $(CLANG_QUIET)"
FUZZ_SUPPORT = $(call obj,tests/fuzz/fuzz_util.c tests/blas_naive.c)
fuzz-bins: $(addprefix $(BUILD)/fuzz/fuzz_,$(FUZZ_NAMES))
$(BUILD)/fuzz/fuzz_%: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(FUZZ_SUPPORT) $(LIB)
	@mkdir -p $(dir $@)
	@echo "LD    $@"
	@$(CC) -fsanitize=fuzzer,address,undefined -fopenmp $^ $(SAN_LDLIBS) -o $@

fuzz: sanitizer-deps
	+@$(FUZZ_MAKE) fuzz-bins
	@scripts/fuzz.sh build-fuzz $(FUZZ_TIME) $(FUZZ_NAMES)

fuzz-smoke: sanitizer-deps
	+@$(FUZZ_MAKE) fuzz-bins
	@scripts/fuzz.sh build-fuzz $(FUZZ_SMOKE_TIME) $(FUZZ_NAMES)
