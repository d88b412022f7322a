# cformer - see README.md. `make` builds build/libcformer.a and build/cformer.
MULTIARCH := $(shell gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
# Debian installs OpenBLAS variants side by side; the pthread one wins the alternatives, so link the
# OpenMP build from its own folder (with an rpath) to share one OpenMP pool with our kernels.
BLAS_LIB := /usr/lib/$(MULTIARCH)/openblas-openmp
BLAS_INC := /usr/include/$(MULTIARCH)/openblas-openmp

CC      := gcc
BUILD   ?= build
OPT     ?= -O3 -march=native
CFLAGS  := -std=c11 $(OPT) -fno-math-errno -g -Wall -Wextra -Wshadow -fopenmp -D_GNU_SOURCE -I. -I$(BLAS_INC) \
           -DCF_SOURCE_DIR='"$(CURDIR)"' $(EXTRA_CFLAGS)
LDFLAGS := -fopenmp $(EXTRA_LDFLAGS)
LDLIBS   = -L$(BLAS_LIB) -Wl,-rpath,$(BLAS_LIB) -lopenblas -lcjson -lz -lm $(MPI_LIBS)

# `make MPI=1`: data-parallel training on Open MPI (docs/distributed.md). Only dist/comm_mpi.c
# includes mpi.h; without MPI=1, dist/comm_none.c stands in and nothing links MPI. Recursive
# variables: mpicc may only exist once deps-if-missing has installed it.
MPI ?= 0
ifeq ($(MPI),1)
DIST_COMM  := dist/comm_mpi.c
MPI_CFLAGS  = $(shell mpicc --showme:compile 2>/dev/null)
MPI_LIBS    = $(shell mpicc --showme:link 2>/dev/null)
MPI_OK     := $(shell command -v mpicc >/dev/null 2>&1 && command -v mpirun >/dev/null 2>&1 && echo yes)
else
DIST_COMM  := dist/comm_none.c
MPI_OK     := yes
endif
# The library is re-archived (and everything relinked) when MPI=0/1 changes between two makes.
BUILD_STAMP := $(BUILD)/mpi.stamp
$(shell mkdir -p $(BUILD) && (echo $(MPI) | cmp -s - $(BUILD_STAMP) || echo $(MPI) > $(BUILD_STAMP)))

# The library, one folder per module from the bottom layer up (scripts/check_layers.sh holds the
# order); the command line (cli/) sits on top and is linked into build/cformer only.
LIB_DIRS  := core nn optim data score dist translate train
LIB_SRC   := $(filter-out dist/comm_%.c,$(wildcard $(addsuffix /*.c,$(LIB_DIRS)))) $(DIST_COMM)
CLI_SRC   := $(wildcard cli/*.c)
F64_SRC   := $(wildcard core/*.c nn/*.c)
UNIT_SRC  := $(wildcard tests/test_*.c) tests/runner.c tests/testlib.c tests/clilib.c tests/alloc_count.c
GRAD_SRC  := $(wildcard tests/grad_*.c) tests/runner.c tests/testlib.c tests/gradcheck.c
BENCH_SRC := $(wildcard bench/*.c)

LIB       := $(BUILD)/libcformer.a
LIB_F64   := $(BUILD)/libcformer_f64.a
CLI       := $(BUILD)/cformer
UNIT_BIN  := $(BUILD)/tests/unit
GRAD_BIN  := $(BUILD)/tests/grad
BENCH_BIN := $(BUILD)/bench/bench

obj     = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
obj_f64 = $(patsubst %.c,$(BUILD)/obj64/%.o,$(1))

DEPS_OK := $(and $(wildcard $(BLAS_INC)/cblas.h),$(wildcard /usr/include/cjson/cJSON.h),$(wildcard /usr/include/zlib.h),$(MPI_OK))

.PHONY: all deps deps-if-missing test run bench bench-torch asan clean fixtures
all: $(LIB) $(CLI)

deps:
	@MPI=$(MPI) scripts/deps.sh

deps-if-missing:
	@$(if $(DEPS_OK),true,MPI=$(MPI) scripts/deps.sh)

$(BUILD)/obj/%.o: %.c | deps-if-missing
	@mkdir -p $(dir $@)
	@echo "CC    $<"
	@$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj64/%.o: %.c | deps-if-missing
	@mkdir -p $(dir $@)
	@echo "CC64  $<"
	@$(CC) $(CFLAGS) -DCF_REAL_DOUBLE -MMD -MP -c $< -o $@

$(BUILD)/obj/dist/comm_mpi.o: CFLAGS += $(MPI_CFLAGS)

$(LIB): $(call obj,$(LIB_SRC)) $(BUILD_STAMP)
	@mkdir -p $(dir $@)
	@echo "AR    $@"
	@rm -f $@ && ar rcs $@ $(filter %.o,$^)

$(LIB_F64): $(call obj_f64,$(F64_SRC))
	@mkdir -p $(dir $@)
	@echo "AR    $@"
	@rm -f $@ && ar rcs $@ $^

$(CLI): $(call obj,$(CLI_SRC)) $(LIB)
	@echo "LD    $@"
	@$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(UNIT_BIN): $(call obj,$(UNIT_SRC)) $(LIB)
	@mkdir -p $(dir $@)
	@echo "LD    $@"
	@$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(GRAD_BIN): $(call obj_f64,$(GRAD_SRC)) $(LIB_F64)
	@mkdir -p $(dir $@)
	@echo "LD    $@"
	@$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BENCH_BIN): $(call obj,$(BENCH_SRC)) $(LIB)
	@mkdir -p $(dir $@)
	@echo "LD    $@"
	@$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# The dependency rule on the #include lines (scripts/check_layers.sh: no upward include, no
# cycle), unit tests (float32 library) and gradient checks (float64 build); the last line sums all.
test: all $(UNIT_BIN) $(GRAD_BIN)
	@scripts/run_tests.sh scripts/check_layers.sh $(UNIT_BIN) $(GRAD_BIN)

# The same tests under AddressSanitizer + UndefinedBehaviorSanitizer, in their own build dir.
asan:
	@$(MAKE) --no-print-directory BUILD=build-asan OPT="-O1 -fno-omit-frame-pointer" \
	    EXTRA_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	    EXTRA_LDFLAGS="-fsanitize=address,undefined" test

# What the decoding comparison decodes: bench-small's shapes (a random model, random sources) and,
# once `cformer train configs/multi30k.json` has made it, the Multi30k run's test set.
DECODE_TARGETS ?= configs/bench_small.json $(wildcard runs/multi30k)
DECODE_N ?= 64

# Kernel benchmarks, then full training steps of the bench configs; the side-by-side PyTorch
# comparisons (training steps, then decoding) only where Debian's python3 has torch (never needed by CI).
bench: all $(BENCH_BIN)
	$(BENCH_BIN)
	$(CLI) bench configs/bench_tiny.json
	$(CLI) bench configs/bench_small.json $$(test $$(nproc) -ge 2 && echo --scaling)
	@if /usr/bin/python3 -c 'import torch' 2>/dev/null; then bench/compare_torch.sh && \
	    DECODE_N=$(DECODE_N) bench/compare_decode.sh 3 $(DECODE_TARGETS); \
	else echo "bench: /usr/bin/python3 has no torch: skipping the PyTorch comparisons (make bench-torch)"; fi
	bench/load.sh

# cformer vs PyTorch 1.13, interleaved rounds (bench/compare_torch.sh, bench/compare_decode.sh;
# docs/performance.md).
bench-torch: all
	bench/compare_torch.sh
	DECODE_N=$(DECODE_N) bench/compare_decode.sh 3 $(DECODE_TARGETS)

# --resume: a second `make run` continues an interrupted run, or reprints a finished one's test BLEU.
run: all
	$(CLI) train configs/toy.json --resume

# Regenerate PyTorch golden fixtures (Debian python3-torch, hence /usr/bin/python3; never run by CI).
fixtures:
	@for f in tests/ref/*.py; do echo "/usr/bin/python3 $$f"; /usr/bin/python3 $$f || exit 1; done

clean:
	rm -rf build build-asan build-lsan build-tsan build-fuzz

# make lsan, make tsan, make fuzz, make fuzz-smoke (docs/reliability.md)
include tests/reliability.mk

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
