#!/bin/sh
# Install cformer's build dependencies from Debian's archive when missing (see README, "Dependencies").
# MPI=1 (make deps MPI=1) adds Open MPI for data-parallel training (docs/distributed.md).
set -e
arch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
wanted="libopenblas-openmp-dev libcjson-dev zlib1g-dev"
missing=""
[ -f "/usr/include/$arch/openblas-openmp/cblas.h" ] || missing="$missing libopenblas-openmp-dev"
[ -f /usr/include/cjson/cJSON.h ] || missing="$missing libcjson-dev"
[ -f /usr/include/zlib.h ] || missing="$missing zlib1g-dev"
command -v make >/dev/null 2>&1 || missing="$missing make"
if [ "${MPI:-0}" = 1 ]; then
    wanted="$wanted libopenmpi-dev openmpi-bin"
    command -v mpicc >/dev/null 2>&1 || missing="$missing libopenmpi-dev"
    command -v mpirun >/dev/null 2>&1 || missing="$missing openmpi-bin"
fi
if [ -z "$missing" ]; then
    echo "deps: all present ($wanted)"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing:$missing"
    echo "deps: run as root:  apt-get update && apt-get install -y$missing"
    exit 1
fi
echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq $missing
