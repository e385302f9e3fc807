#!/usr/bin/env bash
# scripts/gpu_bundle.sh on this build: the archive fits the 64 MiB the device tool carries, the
# bundle holds libkerascpp and its CUDA library (and Open MPI's launcher when the build has NCCL),
# and, unpacked elsewhere, run_gpu_checks.sh runs from it: its GPU tests SKIP on a machine without a
# GPU and pass on one. SKIP (77) when the build has no CUDA backend (gpu_bundle.sh bundles only that).
#   check_gpu_bundle.sh SOURCE_ROOT BUILD_DIR
set -uo pipefail
source_root=$1 build=$2
grep -q "KERASCPP_HAVE_CUDA" "$build/build.ninja" || { echo "SKIP: this build has no CUDA backend"; exit 77; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
fail() { echo "FAILED: $*"; exit 1; }

GPU_BUNDLE_BUILD_DIR=$(realpath "$build") "$source_root/scripts/gpu_bundle.sh" --gpu-tests-only "$work/bundle" ||
  fail "gpu_bundle.sh exited with $?"
[ -f "$work/bundle.tar.xz" ] || fail "no bundle.tar.xz"
[ "$(du -k "$work/bundle.tar.xz" | cut -f1)" -le $((64 * 1024)) ] || fail "bundle.tar.xz is over 64 MiB"
for lib in libkerascpp.so.0 libkerascpp-cuda.so.0 libdnnl.so.2; do
  [ -f "$work/bundle/lib/$lib" ] || fail "lib/$lib is missing"
done
if [ -x "$build/tests/nccl_worker" ]; then
  [ -x "$work/bundle/openmpi/bin/mpirun" ] || fail "the build has NCCL but the bundle has no mpirun"
  ls "$work/bundle/openmpi/lib/x86_64-linux-gnu/openmpi/lib/openmpi3/" | grep -q mca_pmix_ || fail "no PMIx plugin of Open MPI"
fi

# Unpacked in another folder, without meson's LD_LIBRARY_PATH: the bundle's lib/ must be enough.
mkdir "$work/there" && tar -xJf "$work/bundle.tar.xz" -C "$work/there" || fail "cannot unpack"
OUT_DIR="$work/out" env -u LD_LIBRARY_PATH "$work/there/bundle/run_gpu_checks.sh" --no-bench > "$work/log" 2>&1
rc=$?
cat "$work/log"
[ $rc -eq 0 ] || fail "run_gpu_checks.sh exited with $rc"
grep -q "== gpu_parity: \(OK\|SKIPPED\)" "$work/log" || fail "gpu_parity did not run"
if grep -q "error while loading shared libraries" "$work/log"; then fail "a library is missing from the bundle"; fi
echo "OK"
