#!/bin/sh
# Install cformer's build dependencies from Debian's archive when missing (see README, "Dependencies").
# MPI=1 (make deps MPI=1) adds Open MPI for data-parallel training (docs/distributed.md).
# --sanitizers: what make tsan and make fuzz need besides (clang, its libFuzzer/sanitizer runtimes,
# LLVM's OpenMP runtime with the Archer tool; docs/reliability.md).
set -e
arch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
wanted="libopenblas-openmp-dev libcjson-dev zlib1g-dev gcc make"
missing=""
# The packages in $missing from Debian's archive (as root), or how to get them and exit 1.
install_missing() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "deps: missing:$missing"
        echo "deps: run as root:  apt-get update && apt-get install -y$missing"
        exit 1
    fi
    echo "deps: installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq $missing
}
if [ "$1" = "--sanitizers" ]; then
    command -v clang >/dev/null 2>&1 || missing="$missing clang"
    llvm=$(clang -print-resource-dir 2>/dev/null | sed 's|/lib/clang/.*||')
    ver=$(clang -dumpversion 2>/dev/null | cut -d. -f1)
    [ -n "$llvm" ] && ls "$llvm"/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 ||
        missing="$missing libclang-rt-${ver:-14}-dev"
    [ -n "$llvm" ] && [ -f "$llvm/lib/libarcher.so" ] && [ -f "$llvm/lib/libomp.so" ] ||
        missing="$missing libomp-${ver:-14}-dev"
    if [ -z "$missing" ]; then exit 0; fi
    install_missing
    # clang's version is known only now: the runtimes of that version
    if [ -z "$ver" ]; then exec "$0" --sanitizers; fi
    exit 0
fi
[ -f "/usr/include/$arch/openblas-openmp/cblas.h" ] || missing="$missing libopenblas-openmp-dev"
[ -f /usr/include/cjson/cJSON.h ] || missing="$missing libcjson-dev"
[ -f /usr/include/zlib.h ] || missing="$missing zlib1g-dev"
command -v make >/dev/null 2>&1 || missing="$missing make"
# a fresh Debian image has no compiler (gcc also brings the ASan/UBSan/LSan runtimes)
command -v gcc >/dev/null 2>&1 || missing="$missing gcc"
[ -f /usr/include/stdio.h ] || missing="$missing libc6-dev"
if [ "${MPI:-0}" = 1 ]; then
    wanted="$wanted libopenmpi-dev openmpi-bin"
    command -v mpicc >/dev/null 2>&1 || missing="$missing libopenmpi-dev"
    command -v mpirun >/dev/null 2>&1 || missing="$missing openmpi-bin"
fi
if [ -z "$missing" ]; then
    echo "deps: all present ($wanted)"
    exit 0
fi
install_missing
