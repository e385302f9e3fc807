#!/usr/bin/env bash
# Runs tests/nccl_worker.cpp's equal mode with NP processes, one per GPU (mpirun on the loopback
# interface, bounded in time). Exits 77 (meson's SKIP) when the build has no NCCL (-Dnccl), mpirun is
# missing or the machine has fewer than NP GPUs (nccl_worker probe says which).
#   run_nccl_test.sh WORKER NP
set -uo pipefail
worker=$1 np=$2
if [ "$worker" = "none" ]; then echo "SKIP: kerascpp was built without NCCL (-Dnccl needs -Dcuda and -Dmpi)"; exit 77; fi
if ! command -v mpirun >/dev/null; then echo "SKIP: mpirun not found (scripts/install_deps.sh installs openmpi-bin)"; exit 77; fi
"$worker" probe "$np" || exit $?
args=(-np "$np" --oversubscribe --bind-to none --mca btl self,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo)
[ "$(id -u)" -eq 0 ] && args+=(--allow-run-as-root)
OMP_NUM_THREADS=1 timeout -k 5 180 mpirun "${args[@]}" "$worker" equal
rc=$?
echo "mpirun exit status $rc"
exit $rc
