#!/bin/sh
# An installed kerascpp links and starts like a real library: stages `meson install --destdir`,
# checks the SONAME chain and kerascpp.pc, then builds and runs tests/downstream/main.cpp as a
# downstream meson project (pkg-config) and a downstream CMake project (find_package) against the
# staged prefix, with LD_LIBRARY_PATH unset (the programs find libkerascpp through the rpath their
# build gives them from the libdir). Exit 77 (skip) only when a tool it needs is not installed.
# Usage: check_installed.sh SOURCE_ROOT BUILD_ROOT PREFIX LIBDIR VERSION SOVERSION
set -eu
src="$1"; build="$2"; prefix="$3"; libdir="$4"; version="$5"; soversion="$6"
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

# kerascpp.pc: no absolute paths in Libs.private (only -l / -pthread flags).
pc="$staged_libdir/pkgconfig/kerascpp.pc"
[ -f "$pc" ] || fail "kerascpp.pc was not installed in $staged_libdir/pkgconfig"
if grep '^Libs.private:' "$pc" | grep -q ' /'; then fail "absolute path in kerascpp.pc: $(grep '^Libs.private:' "$pc")"; fi

# Runs a downstream program: it must record the SONAME and start without LD_LIBRARY_PATH.
run_downstream() {
  readelf -d "$1" | grep -q "(NEEDED).*\[libkerascpp.so.$soversion\]" || fail "$1 does not need libkerascpp.so.$soversion"
  # ...and load the staged library through its rpath (not one installed elsewhere on the machine).
  ldd "$1" | grep -q "libkerascpp.so.$soversion => $staged_libdir/libkerascpp.so.$soversion" ||
    fail "$1 does not load the staged libkerascpp: $(ldd "$1" | grep libkerascpp)"
  out=$("$1") || fail "$1 failed: $out"
  echo "$out"
  echo "$out" | grep -q "kerascpp headers $version, library $version" || fail "$1 printed the wrong version"
}

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
echo "installed kerascpp: SONAME, kerascpp.pc, meson and CMake downstream builds all work"
