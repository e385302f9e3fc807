#!/usr/bin/env bash
# Builds kerascpp with the CUDA backend and collects into one folder (default ./build-gpu-bundle,
# under 64 MiB) what a GPU machine needs to run the GPU tests and the GPU benchmark without any
# Debian package: the test, bench and example binaries, bench/run_bench.py + bench/peers.py, and the
# shared libraries they link that such a machine lacks (libkerascpp, libkerascpp-cuda, oneDNN, fmt,
# libgomp, ...).
# The CUDA libraries are NOT bundled (cuBLAS alone is >500 MB): run_gpu_checks.sh finds them on the
# GPU machine in /usr/local/cuda or in PyTorch's pip packages (nvidia/*/lib: cuDNN 9, cuBLAS 13).
#
#   scripts/gpu_bundle.sh [--gpu-tests-only] [BUNDLE_DIR]     -> BUNDLE_DIR/ and BUNDLE_DIR.tar.xz
#   then, on the GPU machine:  tar -xJf BUNDLE_DIR.tar.xz && BUNDLE_DIR/run_gpu_checks.sh
# GPU_BUNDLE_BUILD_DIR=DIR bundles an existing CUDA build in DIR as it is (tests/check_gpu_bundle.sh);
# otherwise ./build is configured if needed and brought up to date first.
# --gpu-tests-only leaves out the CPU suites (smaller bundle; run_gpu_checks.sh --all then runs only
# the GPU ones).
#
# The layout mirrors the repository (build/tests, build/bench, bench/*.py), so run_bench.py runs
# from the bundle unchanged; lib/ holds the libraries, found through LD_LIBRARY_PATH (it takes
# precedence over the RUNPATH meson wrote, which points into this machine's build tree).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
gpu_only=0
if [ "${1:-}" = --gpu-tests-only ]; then gpu_only=1; shift; fi
bundle=${1:-build-gpu-bundle}
build=${GPU_BUNDLE_BUILD_DIR:-build}

if [ -z "${GPU_BUNDLE_BUILD_DIR:-}" ] && [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" -Dcuda=enabled >/dev/null
fi
grep -q "KERASCPP_HAVE_CUDA" "$build/build.ninja" ||
  { echo "gpu_bundle.sh: $build is configured without the CUDA backend (meson configure $build -Dcuda=enabled)" >&2; exit 1; }
# Serialised with any other build in this tree; -j2 keeps a shared 2-core machine usable.
[ -n "${GPU_BUNDLE_BUILD_DIR:-}" ] || flock .build.lock ninja -C "$build" -j"${NINJA_JOBS:-2}"

rm -rf "$bundle"
mkdir -p "$bundle/build/tests" "$bundle/build/bench" "$bundle/build/examples" "$bundle/bench" "$bundle/lib"

# Every test executable (the GPU suite and the CPU suites, which also run there), the benchmark and
# the examples; stripped of debug symbols to stay small.
binaries=()
for exe in "$build"/tests/test_* "$build"/tests/nccl_worker "$build/bench/bench_kerascpp" "$build"/examples/imdb_sentiment "$build"/examples/hello_lstm; do
  [ -f "$exe" ] && [ -x "$exe" ] || continue
  # GPU suites are the ones carrying the skip message "no CUDA GPU" (tests/test_gpu_parity.cpp etc.).
  if [ $gpu_only = 1 ] && [[ "$exe" == */tests/test_* ]] && ! grep -q "no CUDA GPU" "$exe"; then continue; fi
  dest="$bundle/build/${exe#"$build"/}"
  cp "$exe" "$dest"
  strip --strip-unneeded "$dest"
  binaries+=("$dest")
done
cp bench/run_bench.py bench/peers.py "$bundle/bench/"
cp scripts/run_gpu_checks.sh "$bundle/"
[ -x "$build/tests/nccl_worker" ] && cp tests/run_nccl_test.sh "$bundle/"

# The NCCL tests start their workers with mpirun, which a GPU machine without Debian packages lacks:
# carry Open MPI's launcher and plugins laid out as under /usr, so that OPAL_PREFIX relocates them
# (run_gpu_checks.sh sets it). Plugins for fabrics we never use (UCX, PSM, OFI, verbs) are left out:
# their libraries are not on such a machine either. PMIx's own plugins cannot be relocated (it reads
# no prefix from the environment) and are optional: without them PMIx prints that its "pcompress"
# is unavailable, and the job runs (checked with Debian's Open MPI folders hidden).
ompi_plugins=()
bundle_openmpi() {
  local ompi_lib=/usr/lib/x86_64-linux-gnu/openmpi/lib
  local dest="$bundle/openmpi" unused='libuc[mpst]|libpsm|libinfinipath|libfabric|libibverbs|librdmacm|liboshmem|libnl-'
  [ -x /usr/bin/orterun ] && [ -d "$ompi_lib/openmpi3" ] || { echo "gpu_bundle.sh: no Open MPI 4 here; the NCCL tests will skip there" >&2; return; }
  mkdir -p "$dest/bin" "$dest/lib/x86_64-linux-gnu/openmpi/lib/openmpi3" "$dest/share"
  cp /usr/bin/orterun /usr/bin/orted "$dest/bin/"
  ln -s orterun "$dest/bin/mpirun"
  cp -r /usr/share/openmpi "$dest/share/"
  local plugin
  for plugin in "$ompi_lib"/openmpi3/*.so; do
    # Not grep -q: it would close the pipe early, and pipefail would read ldd's SIGPIPE as "no match".
    if ldd "$plugin" | grep -E "$unused" >/dev/null; then continue; fi
    cp "$plugin" "$dest/lib/x86_64-linux-gnu/openmpi/lib/openmpi3/"
    ompi_plugins+=("$plugin")
  done
}
[ -x "$build/tests/nccl_worker" ] && bundle_openmpi

# Libraries: whatever the binaries resolve here, except the C library family (always present and
# tied to the kernel's loader) and the CUDA libraries, NCCL included (found on the GPU machine, in
# PyTorch's nvidia/*/lib; libnccl alone is 190 MB).
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libresolv\.so|libcuda\.so|libcublas|libcublasLt|libcudnn|libnvrtc|libnvJitLink|libnccl)'
core_libs=()   # the versioned files (libkerascpp.so.X.Y.Z), not meson's .p folders beside them
for f in "$build"/libkerascpp.so.*.*.* "$build"/libkerascpp-cuda.so.*.*.*; do [ -f "$f" ] && core_libs+=("$f"); done
for exe in "${binaries[@]}" "${core_libs[@]}" "${ompi_plugins[@]}"; do
  ldd "$exe" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}'
done | sort -u | while read -r name path; do
  if [[ "$name" =~ $skip ]]; then continue; fi
  cp -L "$path" "$bundle/lib/$name"
  strip --strip-unneeded "$bundle/lib/$name" 2>/dev/null || true
done

# kerascpp itself (the binaries find it through RUNPATH $ORIGIN/.. here, which ldd cannot follow
# once they are copied), and its CUDA backend, which libkerascpp opens from its own folder (lib/)
# on the first use of a GPU, under its SONAME.
soname() { readelf -d "$1" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p'; }
for lib in "${core_libs[@]}"; do
  name=$(soname "$lib")
  cp -L "$lib" "$bundle/lib/$name"
  strip --strip-unneeded "$bundle/lib/$name"
done

{
  echo "kerascpp GPU bundle"
  echo "commit: $(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)$(git -C "$repo" diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "built: $(date -u '+%Y-%m-%d %H:%M:%S UTC') on $(uname -m), CUDA $(nvcc --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p')"
  echo "needs on the GPU machine: an NVIDIA driver for CUDA 13, libcudart.so.13 / libcublas.so.13 / libcudnn.so.9"
  echo "  (in /usr/local/cuda/lib64 or PyTorch's nvidia/*/lib pip packages), python3 with torch for the benchmark"
  echo "bundled libraries:"
  (cd "$bundle/lib" && ls -1)
} > "$bundle/MANIFEST.txt"

# The archive is what travels (the device tool carries at most 64 MiB): xz packs the libraries and
# binaries about 4:1.
archive="$bundle.tar.xz"
tar -c -I "xz -T2" -f "$archive.tmp" -C "$(dirname "$bundle")" "$(basename "$bundle")"
mv "$archive.tmp" "$archive"
size_kib=$(du -sk "$bundle" | cut -f1)
archive_kib=$(du -sk "$archive" | cut -f1)
echo "gpu_bundle.sh: $bundle: $((size_kib / 1024)) MiB, $(ls "$bundle/lib" | wc -l) libraries, ${#binaries[@]} binaries; $archive: $((archive_kib / 1024)) MiB"
if [ "$archive_kib" -gt $((64 * 1024)) ]; then
  echo "gpu_bundle.sh: $archive is over 64 MiB" >&2
  exit 1
fi
