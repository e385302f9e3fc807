#!/usr/bin/env bash
# Runs the CUDA backend's generic-op tests (tests/test_cuda_backend.cpp) on a machine WITHOUT a GPU,
# by emulating the GPU on the host. A developer aid for writing kernels where no GPU is lent; it is
# no substitute for the GPU run (issue 17), and not a meson test.
#   - generic_ops.cu, eltwise.cu and dense_kernels.cu are compiled as host C++: each
#     `kernel<<<grid, block, 0, stream>>>(args)` becomes emulate_launch(grid, block, ...) (emu.hpp),
#     which runs every thread of a block as a std::thread (__syncthreads is a std::barrier), the
#     blocks one after another, at most 2 of them (the kernels' grid-stride loops cover the rest);
#   - stubs.cpp stands in for the CUDA runtime (host memory, a synchronous stream), cuBLAS (SGEMM
#     from its column-major definition, checking the leading dimensions) and the cuDNN calls made
#     at start-up; any other CUDA entry point aborts, saying which (so only the generic-op, gradient
#     and element-wise test cases can run).
# What it checks: index arithmetic, strides, shapes, dtypes, block reductions, cuBLAS arguments,
# NaN handling. What it cannot: CUDA's own math functions (the host's libm runs instead), timing,
# real concurrency across blocks, launch limits.
#
#   scripts/cuda_emulation/run.sh [BUILD_DIR [doctest options]]   (BUILD_DIR: a CUDA build, default ./build)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$repo/build}" && pwd)
work="$build/cuda-emulation"
mkdir -p "$work"
ninja -C "$build" tests/test_cuda_backend >/dev/null

cuda_src="$repo/framework/backend/cuda"
flags=(-std=c++20 -O1 -pthread -w -I"$here" -I"$cuda_src" -I"$repo/framework/backend" -I"$repo/framework"
       -I/usr/local/cuda/include)
objects=()
for name in generic_ops eltwise dense_kernels; do
  python3 - "$cuda_src/$name.cu" "$work/${name}_emu.cpp" <<'PY'
import re, sys
src = open(sys.argv[1]).read()
launch = re.compile(r'(\w+)<<<(.*?),\s*(.*?),\s*0,\s*stream>>>\((.*?)\);', re.S)
out = launch.sub(lambda m: 'emulate_launch(%s, %s, [&] { %s(%s); });' % (m.group(2), m.group(3), m.group(1), m.group(4)), src)
open(sys.argv[2], 'w').write('#include "emu.hpp"\n' + out)
PY
  g++ "${flags[@]}" -c "$work/${name}_emu.cpp" -o "$work/${name}_emu.o"
  objects+=("$work/${name}_emu.o")
done
g++ "${flags[@]}" -c "$here/stubs.cpp" -o "$work/stubs.o"

# The libraries the real test links, less the CUDA ones the stubs replace.
libs=()
for token in $(ninja -C "$build" -t commands tests/test_cuda_backend | tail -1); do
  case "$token" in
    -Xlinker=*.a|-Xlinker=*.so*) lib=${token#-Xlinker=}; [[ "$lib" == *cudnn* ]] || libs+=("$build/$lib") ;;
  esac
done
for i in "${!libs[@]}"; do [ -e "${libs[$i]}" ] || libs[$i]=${libs[$i]#"$build/"}; done

# The CUDA entry points the library needs beyond stubs.cpp: each aborts, naming itself.
link=(g++ -pthread -o "$work/test_cuda_backend_emulated" "$build/tests/test_cuda_backend.p/test_cuda_backend.cpp.o"
      "${objects[@]}" "$work/stubs.o")
missing=$("${link[@]}" "${libs[@]}" 2>&1 | grep -o "undefined reference to \`[^']*'" | sed "s/.*\`//; s/'$//" | sort -u || true)
{
  echo '#include <cstdio>'
  echo '#include <cstdlib>'
  for f in $missing; do
    echo "extern \"C\" int $f() { std::fprintf(stderr, \"emulation: $f is not emulated\\n\"); std::abort(); }"
  done
} > "$work/aborts.cpp"
g++ -c "$work/aborts.cpp" -o "$work/aborts.o"
"${link[@]}" "$work/aborts.o" "${libs[@]}" 2>&1 | grep -v "ld: warning" || true

"$work/test_cuda_backend_emulated" --test-case="generic*,keras::ops gradients*,element-wise*" "${@:2}"
