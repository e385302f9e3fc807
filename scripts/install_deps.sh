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
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "Installing: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
