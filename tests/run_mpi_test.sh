#!/usr/bin/env bash
# Runs tests/mpi_worker.cpp's MODE with two processes: mpirun -np 2 --oversubscribe on the loopback
# interface, bounded in time. Exits 77 (meson's SKIP) when the build has no MPI or mpirun is missing.
#   run_mpi_test.sh WORKER MODE
#   run_mpi_test.sh PROGRAM example ARGS...
# equal / embedding / mismatch: every worker must exit 0. hang / kill: the job must fail, within LIMIT seconds
# (the workers' collective timeout is 3 s), and for hang with the timeout's message. example: PROGRAM
# ARGS (examples/imdb_sentiment --distributed) must succeed and print its "Test loss" line once.
set -uo pipefail
worker=$1 mode=$2
shift 2
if [ "$worker" = "none" ]; then echo "SKIP: kerascpp was built without MPI (-Dmpi)"; exit 77; fi
if ! command -v mpirun >/dev/null; then echo "SKIP: mpirun not found (scripts/install_deps.sh installs openmpi-bin)"; exit 77; fi
args=(-np 2 --oversubscribe --bind-to none --mca btl self,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo)
# Containers often run as root, which Open MPI refuses unless told.
[ "$(id -u)" -eq 0 ] && args+=(--allow-run-as-root)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
limit=60
start=$(date +%s)
if [ "$mode" = example ]; then command=("$worker" "$@"); limit=240; else command=("$worker" "$mode" "$dir"); fi
OMP_NUM_THREADS=1 timeout -k 5 $limit mpirun "${args[@]}" "${command[@]}" >"$dir/out" 2>&1
rc=$?
elapsed=$(( $(date +%s) - start ))
cat "$dir/out"
echo "mpirun exit status $rc after ${elapsed}s"
case "$mode" in
  equal|embedding|mismatch|bootstrap)
    exit $rc ;;
  example)
    [ $rc -eq 0 ] || exit $rc
    lines=$(grep -c "^Test loss" "$dir/out")
    if [ "$lines" -ne 1 ]; then echo "FAIL: $lines \"Test loss\" lines (only worker 0 prints)"; exit 1; fi
    exit 0 ;;
  hang|kill)
    if [ $rc -eq 0 ]; then echo "FAIL: the job succeeded although worker 1 stopped"; exit 1; fi
    # (mpirun passes on a killed worker's status, 137, so the time tells a hung job apart.)
    if [ $elapsed -ge $limit ]; then echo "FAIL: the job hung (killed by timeout after ${limit}s)"; exit 1; fi
    if [ "$mode" = hang ] && ! grep -q "did not complete within the collective timeout" "$dir/out"; then
      echo "FAIL: no collective-timeout message"; exit 1
    fi
    # The collective timeout is 3 s; allow the start-up and mpirun's clean-up.
    if [ $elapsed -gt 40 ]; then echo "FAIL: the job took ${elapsed}s to end"; exit 1; fi
    exit 0 ;;
esac
echo "unknown mode $mode"; exit 2
