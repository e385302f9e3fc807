#!/bin/sh
# An installed kerascpp links and starts like a real library: stages `meson install --destdir`,
# checks the SONAME chain and kerascpp.pc, then builds and runs tests/downstream/main.cpp as a
# downstream meson project (pkg-config) and a downstream CMake project (find_package) against the
# staged prefix, with LD_LIBRARY_PATH unset (the programs find libkerascpp through the rpath their
# build gives them from the libdir). The programs' ldd lists no CUDA library; in a CUDA build
# libkerascpp-cuda is installed beside libkerascpp, which finds it there on first use of a GPU, and
# says where it looked when it is gone. Exit 77 (skip) only when a tool it needs is not installed.
# Usage: check_installed.sh SOURCE_ROOT BUILD_ROOT PREFIX LIBDIR VERSION SOVERSION WITH_CUDA(true|false)
set -eu
src="$1"; build="$2"; prefix="$3"; libdir="$4"; version="$5"; soversion="$6"; with_cuda="$7"
for tool in meson ninja cmake pkg-config readelf ldd c++; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done
unset LD_LIBRARY_PATH
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage="$work/stage"
fail() { echo "FAIL: $*"; exit 1; }

meson install -C "$build" --destdir "$stage" --no-rebuild --quiet
staged_libdir="$stage$prefix/$libdir"

# libkerascpp.so -> libkerascpp.so.0 -> libkerascpp.so.0.1.0, whose SONAME is libkerascpp.so.0.
real="libkerascpp.so.$version"
[ -f "$staged_libdir/$real" ] || fail "$staged_libdir/$real was not installed"
[ "$(readlink "$staged_libdir/libkerascpp.so.$soversion")" = "$real" ] || fail "libkerascpp.so.$soversion is not a link to $real"
[ "$(readlink "$staged_libdir/libkerascpp.so")" = "libkerascpp.so.$soversion" ] || fail "libkerascpp.so is not a link to libkerascpp.so.$soversion"
readelf -d "$staged_libdir/$real" | grep -q "(SONAME).*\[libkerascpp.so.$soversion\]" || fail "the SONAME of $real is not libkerascpp.so.$soversion"

# The CUDA backend (CUDA builds): libkerascpp-cuda.so -> .so.0 -> .so.0.1.0 beside libkerascpp.
cuda_real="libkerascpp-cuda.so.$version"
if [ "$with_cuda" = true ]; then
  [ -f "$staged_libdir/$cuda_real" ] || fail "$cuda_real was not installed beside libkerascpp in $staged_libdir"
  [ "$(readlink "$staged_libdir/libkerascpp-cuda.so.$soversion")" = "$cuda_real" ] ||
    fail "libkerascpp-cuda.so.$soversion is not a link to $cuda_real"
  readelf -d "$staged_libdir/$cuda_real" | grep -q "(SONAME).*\[libkerascpp-cuda.so.$soversion\]" ||
    fail "the SONAME of $cuda_real is not libkerascpp-cuda.so.$soversion"
elif ls "$staged_libdir"/libkerascpp-cuda* >/dev/null 2>&1; then
  fail "a build without CUDA installed $(ls "$staged_libdir"/libkerascpp-cuda*)"
fi

# kerascpp.pc: no absolute paths in Libs.private (only -l / -pthread flags); programs link
# libkerascpp alone (never libkerascpp-cuda, nor a CUDA library).
pc="$staged_libdir/pkgconfig/kerascpp.pc"
[ -f "$pc" ] || fail "kerascpp.pc was not installed in $staged_libdir/pkgconfig"
if grep '^Libs.private:' "$pc" | grep -q ' /'; then fail "absolute path in kerascpp.pc: $(grep '^Libs.private:' "$pc")"; fi
[ "$(grep '^Libs:' "$pc")" = "Libs: -L\${libdir} -lkerascpp" ] || fail "kerascpp.pc's Libs: $(grep '^Libs:' "$pc")"
if grep -iE 'cuda|cudnn|cublas' "$pc" "$staged_libdir/cmake/kerascpp/kerascppConfig.cmake" | grep -v '^[^:]*:#'; then
  fail "kerascpp.pc or kerascppConfig.cmake names a CUDA library"
fi

# Runs a downstream program: it must record the SONAME and start without LD_LIBRARY_PATH.
run_downstream() {
  readelf -d "$1" | grep -q "(NEEDED).*\[libkerascpp.so.$soversion\]" || fail "$1 does not need libkerascpp.so.$soversion"
  # ...and load the staged library through its rpath (not one installed elsewhere on the machine).
  ldd "$1" | grep -q "libkerascpp.so.$soversion => $staged_libdir/libkerascpp.so.$soversion" ||
    fail "$1 does not load the staged libkerascpp: $(ldd "$1" | grep libkerascpp)"
  # A CPU program needs no CUDA library, whatever the build.
  if ldd "$1" | grep -E 'libcudart|libcublas|libcudnn|libcuda\.so'; then fail "ldd $1 lists a CUDA library"; fi
  out=$("$1") || fail "$1 failed: $out"
  echo "$out"
  echo "$out" | grep -q "kerascpp headers $version, library $version" || fail "$1 printed the wrong version"
  # CUDA: libkerascpp found libkerascpp-cuda beside itself (what remains is the GPU, or its driver).
  if [ "$with_cuda" = true ] && echo "$out" | grep -q "could not be loaded"; then
    fail "$1 did not load the staged libkerascpp-cuda: $(echo "$out" | grep '^cuda:')"
  fi
}

# The installed tool is a CPU program like any other: no CUDA library, and it finds the staged
# libkerascpp through its $ORIGIN rpath.
inspect="$stage$prefix/bin/kerascpp-inspect"
[ -x "$inspect" ] || fail "kerascpp-inspect was not installed in $stage$prefix/bin"
if ldd "$inspect" | grep -E 'libcudart|libcublas|libcudnn|libcuda\.so'; then fail "ldd $inspect lists a CUDA library"; fi
ldd "$inspect" | grep -q "libkerascpp.so.$soversion => $stage/" ||
  fail "$inspect does not load the staged libkerascpp: $(ldd "$inspect" | grep libkerascpp)"
"$inspect" --help >/dev/null || fail "$inspect --help failed"

# meson + pkg-config. The .pc names /usr/local-style paths; PKG_CONFIG_SYSROOT_DIR points them into
# the staging folder, as for any staged (cross or packaging) build.
echo "== downstream meson project (pkg-config)"
PKG_CONFIG_PATH="$staged_libdir/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$stage" \
  meson setup "$work/meson" "$src/tests/downstream/meson" >"$work/meson.log" 2>&1 || { cat "$work/meson.log"; fail "meson setup of the downstream project"; }
ninja -C "$work/meson" >>"$work/meson.log" 2>&1 || { cat "$work/meson.log"; fail "building the downstream meson project"; }
run_downstream "$work/meson/downstream"

# CMake + find_package(kerascpp 0.1): the config finds its prefix from its own location.
echo "== downstream CMake project (find_package)"
cmake -S "$src/tests/downstream/cmake" -B "$work/cmake" -G Ninja -DCMAKE_PREFIX_PATH="$stage$prefix" \
  >"$work/cmake.log" 2>&1 || { cat "$work/cmake.log"; fail "cmake configure of the downstream project"; }
cmake --build "$work/cmake" >>"$work/cmake.log" 2>&1 || { cat "$work/cmake.log"; fail "building the downstream CMake project"; }
run_downstream "$work/cmake/downstream"

# Without libkerascpp-cuda (a CPU-only install of a CUDA build), CUDA is unavailable and the reason
# names the library and the staged libdir where libkerascpp looked first; the CPU part still runs.
# (Not when the loader's cache holds another installation's libkerascpp-cuda, which it would find.)
if [ "$with_cuda" = true ] && ldconfig -p 2>/dev/null | grep -q "libkerascpp-cuda.so.$soversion "; then
  echo "== skipped: the same program without libkerascpp-cuda (ldconfig's cache has one: $(ldconfig -p | grep libkerascpp-cuda))"
elif [ "$with_cuda" = true ]; then
  echo "== the same program without libkerascpp-cuda"
  rm "$staged_libdir"/libkerascpp-cuda.so*
  out=$("$work/meson/downstream") || fail "the downstream program failed without libkerascpp-cuda: $out"
  echo "$out" | grep '^cuda:'
  echo "$out" | grep '^cuda:' | grep -q "libkerascpp-cuda.so.$soversion could not be loaded: .*(looked in $staged_libdir," ||
    fail "the message for a missing libkerascpp-cuda does not name it and $staged_libdir"
  # One there that cannot be loaded (here not even an ELF file; in life, say, libcudnn missing):
  # that file's dlopen error is the reason, not a search elsewhere.
  echo "not a library" > "$staged_libdir/libkerascpp-cuda.so.$soversion"
  out=$("$work/meson/downstream") || fail "the downstream program failed beside a broken libkerascpp-cuda: $out"
  echo "$out" | grep '^cuda:'
  echo "$out" | grep '^cuda:' | grep -q "library $staged_libdir/libkerascpp-cuda.so.$soversion could not be loaded: .*$staged_libdir/libkerascpp-cuda.so.$soversion" ||
    fail "the message for a broken libkerascpp-cuda does not name the file and dlopen's error"
fi
echo "installed kerascpp: SONAME, kerascpp.pc, meson and CMake downstream builds all work"
