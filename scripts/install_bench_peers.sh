#!/usr/bin/env bash
# Creates the Python environment for the peer benchmarks (bench/peers.py): Keras 3 on
# TensorFlow-CPU, and PyTorch. Nothing in kerascpp's build or tests needs it.
#
#   scripts/install_bench_peers.sh            # venv in <repo>/.venv-bench
#   BENCH_VENV=/some/dir scripts/install_bench_peers.sh
#
# Plain `pip install torch` from PyPI brings the CUDA-enabled wheel (a few GB); the benchmark only
# uses its CPU path. Only PyPI is assumed reachable, so no CPU-only index is used.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${BENCH_VENV:-$repo_root/.venv-bench}"
python="${PYTHON:-python3}"

if [[ ! -x "$venv/bin/python" ]]; then
    echo "Creating virtual environment in $venv"
    "$python" -m venv "$venv"
fi
# tensorflow-cpu brings keras (3.x) with it; numpy is pinned by whichever of them is stricter.
"$venv/bin/python" -m pip install numpy tensorflow-cpu torch

"$venv/bin/python" - <<'PY'
import os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy, tensorflow, keras, torch
print(f"numpy {numpy.__version__}, tensorflow {tensorflow.__version__}, keras {keras.__version__}, "
      f"torch {torch.__version__}")
PY
echo "Peers installed. Run the benchmark with: BENCH_VENV=$venv bench/run_bench.py"
