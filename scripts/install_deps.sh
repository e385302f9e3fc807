#!/usr/bin/env bash
# Installs the Debian 12 packages kerascpp needs to build and test, skipping those already there.
set -euo pipefail
packages=(g++ meson ninja-build pkg-config cmake libdnnl-dev libfmt-dev nlohmann-json3-dev doctest-dev libhdf5-dev libcurl4-openssl-dev libssl-dev python3 libzip-dev libarchive-dev libcli11-dev graphviz libopenmpi-dev openmpi-bin)
# Optional: `install_deps.sh --docs` also installs doxygen, for the API reference (ninja -C build docs).
# The build and the tests do not need it (its check skips without it).
if [ "${1:-}" = "--docs" ]; then
  packages+=(doxygen)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
# Without a CUDA toolkit with NCCL (CI): NCCL's and the CUDA runtime's headers from PyPI's wheels (about
# 212 MB downloaded once, 6 MB kept in ~/.cache/kerascpp/cuda-headers), so that the nccl_compile test
# compiles the NCCL communicator. KERASCPP_NO_CUDA_HEADERS=1 skips it (the test then skips).
if [ -z "${KERASCPP_NO_CUDA_HEADERS:-}" ] && [ ! -f /usr/local/cuda/include/nccl.h ] && [ ! -f /usr/include/nccl.h ]; then
  # Not fatal: without the headers (no network, PyPI down) only the nccl_compile test skips.
  python3 "$(dirname "$0")/fetch_cuda_headers.py" ||
    echo "install_deps.sh: warning: CUDA / NCCL headers not fetched; the nccl_compile test will skip" >&2
fi
