#!/usr/bin/env bash
# Compiles framework/backend/cuda/nccl_communicator.cpp to an object file against NCCL's and the CUDA
# runtime's headers alone (from PyPI's wheels, scripts/fetch_cuda_headers.py, which install_deps.sh
# runs): the NCCL path is compiled on machines without the CUDA toolkit (CI). Nothing is linked or run.
# Exits 77 (meson's SKIP) when the headers were not fetched.
#   compile_nccl.sh SOURCE_ROOT BUILD_ROOT COMPILER...
set -uo pipefail
src=$1 build=$2
shift 2
headers=${KERASCPP_CUDA_HEADERS:-$HOME/.cache/kerascpp/cuda-headers}
if [ ! -f "$headers/nvidia/nccl/include/nccl.h" ] || [ ! -f "$headers/nvidia/cu13/include/cuda_runtime.h" ]; then
  echo "SKIP: no NCCL / CUDA runtime headers in $headers (scripts/fetch_cuda_headers.py fetches them)"
  exit 77
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# The fetched headers come first, so none of a local CUDA toolkit's (/usr/local/include) are used.
"$@" -std=c++20 -Wall -Wextra -c \
  -I"$headers/nvidia/nccl/include" -I"$headers/nvidia/cu13/include" -I"$headers/nvidia/cu13/include/cccl" \
  -I"$src/framework" -I"$src/framework/src" -I"$build/framework" \
  "$src/framework/backend/cuda/nccl_communicator.cpp" -o "$out/nccl_communicator.o" || exit 1
echo "compiled nccl_communicator.cpp against $(cat "$headers/WHEELS" | tr '\n' ' ')"
