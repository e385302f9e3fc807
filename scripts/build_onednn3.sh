#!/usr/bin/env bash
# Builds kerascpp against oneDNN 3 from PyPI, in its own build directory, and runs the whole suite.
# The default build (and CI) uses Debian 12's oneDNN 2.6; this is the other major, side by side:
#
#   scripts/build_onednn3.sh [BUILD_DIR]        (default: build-onednn3)
#
# Environment: ONEDNN3_VENV (default: .venv-onednn3 in the repository) is the virtual environment
# oneDNN is installed into; ONEDNN3_PACKAGE (default: onednn-devel-cpu-gomp) the PyPI package.
# Why -cpu-gomp: it is oneDNN 3 for the CPU on GNU OpenMP, the runtime Debian's 2.6 uses, so the
# thread governor manages it alike. The plain `onednn-devel` is the SYCL build on TBB: it needs
# Intel's compiler runtime (about 2 GB of wheels), and oneDNN's threads are then TBB's, which
# kerascpp leaves alone (docs/install.md). Extra arguments after BUILD_DIR go to `meson setup`.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-build-onednn3}"
shift || true
venv="${ONEDNN3_VENV:-$repo/.venv-onednn3}"
package="${ONEDNN3_PACKAGE:-onednn-devel-cpu-gomp}"
cd "$repo"

if [ ! -x "$venv/bin/pip" ]; then
  python3 -m venv "$venv" || { echo "python3 -m venv failed: apt-get install python3-venv" >&2; exit 1; }
fi
"$venv/bin/pip" install --quiet "$package"
[ -f "$venv/include/oneapi/dnnl/dnnl.hpp" ] || { echo "$package left no include/oneapi/dnnl/dnnl.hpp in $venv" >&2; exit 1; }

export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$repo}"
if [ -d "$build" ]; then
  meson configure "$build" -Donednn_dir="$venv" "$@"
else
  meson setup "$build" -Dcuda=disabled -Donednn_dir="$venv" "$@"
fi
ninja -C "$build"

# Everything that loads libkerascpp must find the venv's libdnnl.so.3 by rpath alone (no
# LD_LIBRARY_PATH), and never Debian's libdnnl.so.2.
status=0
for f in "$build"/libkerascpp.so "$build"/examples/hello_lstm "$build"/tools/kerascpp-inspect; do
  [ -e "$f" ] || continue
  dnnl="$(env -u LD_LIBRARY_PATH ldd "$f" | awk '/libdnnl/ {print $3}')"
  echo "$f: $dnnl"
  # Compared resolved: meson writes a relative rpath when the venv sits inside the source tree.
  if [ -z "$dnnl" ] || [ "$(realpath "$dnnl")" != "$(realpath "$venv/lib/libdnnl.so.3")" ]; then
    echo "$f does not load $venv/lib/libdnnl.so.3 (it loads: ${dnnl:-nothing})" >&2; status=1
  fi
done
[ "$status" -eq 0 ] || exit 1

meson test -C "$build" --print-errorlogs
