#!/usr/bin/env bash
# Runs the GPU checks from a bundle made by scripts/gpu_bundle.sh (this script is copied into it):
#   1. the GPU parity suite (test_gpu_parity: Dense / SimpleRNN / LSTM / GRU forward and gradients
#      against the reference and the CPU, the CPU fallbacks, per-sample lengths, one IMDb epoch);
#   2. the NCCL tests (1 process, and 2 on a machine with two GPUs) when the build has NCCL;
#   3. with --all, every other test binary too (the CPU suites and the CUDA backend's own);
#   4. the GPU benchmark, W1-W3, kerascpp against PyTorch + cuDNN on the same GPU
#      (bench/run_bench.py --device cuda), unless --no-bench.
# Output goes to stdout and to OUT_DIR (default $OUT when set, else ./gpu-results): one log per step
# and bench.json. Exit status: non-zero when a test failed or the benchmark failed.
#
#   BUNDLE/run_gpu_checks.sh [--all] [--no-bench] [--quick]     (--quick: fewer benchmark samples)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
run_all=0; bench=1; quick=0
for arg in "$@"; do
  case "$arg" in
    --all) run_all=1 ;;
    --no-bench) bench=0 ;;
    --quick) quick=1 ;;
    *) echo "usage: $0 [--all] [--no-bench] [--quick]" >&2; exit 2 ;;
  esac
done
out=${OUT_DIR:-${OUT:-$here/gpu-results}}
mkdir -p "$out"

# The CUDA libraries: the system's CUDA first, then PyTorch's pip packages (nvidia/*/lib).
python=${PYTHON:-python3}
cuda_dirs=()
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  [ -d "$d" ] && cuda_dirs+=("$d")
done
if command -v "$python" >/dev/null; then
  site=$("$python" -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null || true)
  for s in $site; do
    for d in "$s"/nvidia/*/lib; do [ -d "$d" ] && cuda_dirs+=("$d"); done
  done
fi
libpath="$here/lib"
for d in "${cuda_dirs[@]}"; do libpath="$libpath:$d"; done
export LD_LIBRARY_PATH="$libpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}

echo "== bundle: $(sed -n 2p "$here/MANIFEST.txt" 2>/dev/null)"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
echo "== LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
# Open MPI (for the NCCL tests' mpirun), relocated into the bundle by gpu_bundle.sh.
if [ -d "$here/openmpi" ]; then
  export OPAL_PREFIX="$here/openmpi"
  export PATH="$here/openmpi/bin:$PATH"
fi
wanted_libs=(libcudart.so.13 libcublas.so.13 libcudnn.so.9)
[ -x "$here/build/tests/nccl_worker" ] && wanted_libs+=(libnccl.so.2)
for lib in "${wanted_libs[@]}"; do
  found=""
  IFS=: read -ra dirs <<< "$LD_LIBRARY_PATH"
  for d in "${dirs[@]}"; do [ -e "$d/$lib" ] && found="$d/$lib" && break; done
  echo "   $lib: ${found:-NOT FOUND (expected in /usr/local/cuda/lib64 or in the nvidia/*/lib of the PyTorch pip packages)}"
done

status=0
run_test() {   # name, command...
  local name=$1; shift
  echo "== $name"
  "$@" 2>&1 | tee "$out/$name.log"
  local rc=${PIPESTATUS[0]}
  case $rc in
    0) echo "== $name: OK" ;;
    77) echo "== $name: SKIPPED" ;;
    *) echo "== $name: FAILED (exit $rc)"; status=1 ;;
  esac
}

run_test gpu_parity "$here/build/tests/test_gpu_parity"
# NCCL between GPU workers: one process, then two when the machine has two GPUs (the script and the
# worker say SKIP otherwise).
if [ -x "$here/build/tests/nccl_worker" ]; then
  for np in 1 2; do run_test "nccl_${np}rank" "$here/run_nccl_test.sh" "$here/build/tests/nccl_worker" "$np"; done
fi
if [ $run_all = 1 ]; then
  for exe in "$here"/build/tests/test_*; do
    name=$(basename "$exe"); name=${name#test_}
    [ "$name" = gpu_parity ] && continue
    run_test "$name" "$exe"
  done
fi

if [ $bench = 1 ]; then
  venv=${BENCH_VENV:-}
  if [ -z "$venv" ]; then   # run_bench.py wants VENV/bin/python: point one at this python
    venv="$here/python-shim"
    mkdir -p "$venv/bin"
    # A wrapper, not a symlink: a symlinked venv python would lose its venv's packages. Remove
    # whatever is there first: writing through an old symlink would overwrite the interpreter.
    rm -f "$venv/bin/python"
    printf '#!/bin/sh\nexec %q "$@"\n' "$(command -v "$python")" > "$venv/bin/python"
    chmod +x "$venv/bin/python"
  fi
  samples=()
  [ $quick = 1 ] && samples=(--samples-w1 5000 --samples-w2 640 --samples-w3 640 --epochs 1)
  echo "== GPU benchmark"
  (cd "$here" && "$python" bench/run_bench.py --device cuda --venv "$venv" --build-dir build \
      --json "$out/bench.json" "${samples[@]}") 2>&1 | tee "$out/bench.log"
  [ "${PIPESTATUS[0]}" = 0 ] || { echo "== GPU benchmark: FAILED"; status=1; }
fi
exit $status
