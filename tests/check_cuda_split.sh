#!/bin/sh
# The CUDA backend is a library of its own (CUDA builds): libkerascpp needs no CUDA library, nor do
# programs linking it (their ldd lists no libcudart / libcublas / libcudnn); libkerascpp-cuda is
# versioned like libkerascpp, needs libkerascpp and the CUDA libraries, and exports only its entry
# point kerascpp_cuda_library (all libkerascpp looks up in it).
# Usage: check_cuda_split.sh BUILD_ROOT VERSION SOVERSION PROGRAM...
set -eu
build="$1"; version="$2"; soversion="$3"; shift 3
for tool in readelf ldd nm; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done
fail() { echo "FAIL: $*"; exit 1; }
cuda_libs='libcudart|libcublas|libcudnn|libcuda\.so|libnvrtc'
core="$build/libkerascpp.so.$version"
cudalib="$build/libkerascpp-cuda.so.$version"

needed=$(readelf -d "$core" | grep '(NEEDED)')
if echo "$needed" | grep -E "$cuda_libs"; then fail "$core needs a CUDA library"; fi
for f in "$core" "$@"; do
  if ldd "$f" | grep -E "$cuda_libs"; then fail "ldd $f lists a CUDA library"; fi
  echo "ldd $(basename "$f"): no CUDA library"
done

[ "$(readlink "$build/libkerascpp-cuda.so.$soversion")" = "libkerascpp-cuda.so.$version" ] ||
  fail "libkerascpp-cuda.so.$soversion is not a link to libkerascpp-cuda.so.$version"
readelf -d "$cudalib" | grep -q "(SONAME).*\[libkerascpp-cuda.so.$soversion\]" ||
  fail "the SONAME of $cudalib is not libkerascpp-cuda.so.$soversion"
for lib in "libkerascpp.so.$soversion" libcudart libcublas libcudnn; do
  readelf -d "$cudalib" | grep '(NEEDED)' | grep -q "\[$lib" || fail "$cudalib does not need $lib"
done
# Hidden visibility: of kerascpp's symbols it exports only its entry point, and the inline members of
# public classes (KERAS_API: ~Tensor, the errors' type info) that libkerascpp exports too. std:: and
# fmt:: template instances are exported by their headers' visibility and do not matter here.
symbols() { nm -DC --defined-only "$1" | awk '{ $1 = ""; $2 = ""; print }' | sed 's/^ *//' | grep keras | sort -u; }
core_symbols=$(mktemp)
trap 'rm -f "$core_symbols"' EXIT
symbols "$core" > "$core_symbols"
own=$(symbols "$cudalib" | comm -23 - "$core_symbols")
[ "$own" = "kerascpp_cuda_library" ] || fail "$cudalib exports more than kerascpp_cuda_library: $own"
echo "libkerascpp-cuda.so.$version: SONAME libkerascpp-cuda.so.$soversion, needs libkerascpp and CUDA, exports kerascpp_cuda_library only"
