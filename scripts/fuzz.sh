#!/usr/bin/env bash
# Runs every libFuzzer harness (fuzz/) for N minutes and prints a table: execs, seconds, and the new
# crashes / leaks / timeouts / out-of-memory inputs each found (docs/fuzzing.md).
#
#   scripts/fuzz.sh MINUTES [HARNESS...]     e.g. scripts/fuzz.sh 10, scripts/fuzz.sh 3 npz imdb_tar
#
# Environment: BUILD (default build-fuzz; set up with clang and -Dfuzz=true when missing), OUT (default
# fuzz-out: found inputs, logs and the growing corpora; not committed), JOBS (harnesses run at once,
# default 2), TIMEOUT (seconds one input may take, default 25), RSS_MB (memory limit, default 2048).
# Inputs that fail land in $OUT/crashes/<harness>/ (crash-*, leak-*, timeout-*, oom-*); replay one
# with build-fuzz/fuzz/fuzz_<harness> <file>. New interesting inputs go to $OUT/corpus/<harness>/;
# copy the few worth keeping into fuzz/corpus/<harness>/.
# Each finding of this run is replayed once and counted as kerascpp's or libhdf5's (the first frame
# of its report outside the sanitizer runtime, libc and libFuzzer): the table's columns count
# kerascpp's, "hdf5" libhdf5's own faults (docs/security.md), "unrepr" those that did not happen
# again when replayed alone; $OUT/logs/<harness>.findings says which is which.
set -euo pipefail

cd "$(dirname "$0")/.."
minutes=${1:?usage: scripts/fuzz.sh MINUTES [HARNESS...]}
shift
all=(load_model load_weights_legacy load_weights_keras3 model_config npz imdb_tar imdb_folder word_index tokenizer)
harnesses=("${@:-${all[@]}}")
BUILD=${BUILD:-build-fuzz}
OUT=${OUT:-fuzz-out}
JOBS=${JOBS:-2}
TIMEOUT=${TIMEOUT:-25}
RSS_MB=${RSS_MB:-2048}
# A huge malloc() returns NULL as glibc's does (libhdf5 sizes its metadata buffers from the file and
# copes with NULL); operator new still reports, so an unchecked size in kerascpp is still a finding.
export ASAN_OPTIONS=${ASAN_OPTIONS:-allocator_may_return_null=1}
seconds=$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 }')

if [[ ! -d $BUILD ]]; then
    CC=clang CXX=clang++ meson setup "$BUILD" -Dfuzz=true -Dtests=false -Dbench=false -Dcuda=disabled
fi
ninja -C "$BUILD" $(printf 'fuzz/fuzz_%s ' "${harnesses[@]}")

run_one() {
    local name=$1
    mkdir -p "$OUT/corpus/$name" "$OUT/crashes/$name" "$OUT/logs"
    ls "$OUT/crashes/$name" > "$OUT/logs/$name.before"
    local start=$SECONDS
    # New inputs are written to the first folder; the committed seeds and the regression corpus are read.
    # -fork=1 with -ignore_*: a crash is recorded and fuzzing goes on until the time is up.
    "$BUILD/fuzz/fuzz_$name" -max_total_time="$seconds" -timeout="$TIMEOUT" -rss_limit_mb="$RSS_MB" \
        -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 -print_final_stats=1 \
        -artifact_prefix="$OUT/crashes/$name/" \
        "$OUT/corpus/$name" "fuzz/corpus/$name" tests/fixtures/regression > "$OUT/logs/$name.log" 2>&1 || true
    echo "$name $((SECONDS - start))" > "$OUT/logs/$name.done"
    classify "$name"
}

# "<kind> <owner> <file>" for each new finding: owner hdf5 when the report's first frame outside the
# sanitizer runtime, libc and libFuzzer is in libhdf5, kerascpp otherwise.
classify() {
    local name=$1 file kind frame
    : > "$OUT/logs/$name.findings"
    for file in $(ls "$OUT/crashes/$name" | grep -vxF -f "$OUT/logs/$name.before" || true); do
        kind=${file%%-*}
        frame=$(ASAN_OPTIONS="$ASAN_OPTIONS:fast_unwind_on_malloc=0" timeout $((TIMEOUT * 3)) \
                    "$BUILD/fuzz/fuzz_$name" -timeout="$TIMEOUT" -rss_limit_mb="$RSS_MB" "$OUT/crashes/$name/$file" 2>&1 |
                grep -E '^ +#[0-9]+ |runtime error:' |
                grep -vE 'libclang_rt|__interceptor|__asan|__sanitizer|fuzzer::|libc\.so|in (malloc|calloc|realloc|free|operator new|operator delete|strdup|strndup|strlen|strnlen|strcmp|strncmp|memcmp)|memcpy|memmove|memset' |
                head -1 || true)
        # Not reproduced alone (fork mode saved a state-dependent leak, or an empty input for a crash
        # of a whole job): listed, not counted as either's.
        if [[ -z $frame ]]; then echo "$kind unreproduced $file"
        elif [[ $frame == *libhdf5* ]]; then echo "$kind hdf5 $file"
        else echo "$kind kerascpp $file: ${frame:0:200}"; fi >> "$OUT/logs/$name.findings"
    done
}

running=0
for name in "${harnesses[@]}"; do
    run_one "$name" &
    running=$((running + 1))
    if (( running >= JOBS )); then wait -n; running=$((running - 1)); fi
done
wait

count() { grep -c "^$2 kerascpp" "$OUT/logs/$1.findings" || true; }
printf '%-22s %10s %8s %7s %7s %8s %6s %9s %5s %5s %6s\n' harness execs seconds exec/s corpus crashes leaks timeouts ooms hdf5 unrepr
for name in "${harnesses[@]}"; do
    read -r _ took < "$OUT/logs/$name.done"
    log="$OUT/logs/$name.log"
    # Fork mode's progress lines read "#<execs>: cov: ... corp: <n> ..."; the last one is the total.
    execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    corpus=$(grep -oE 'corp: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+')
    printf '%-22s %10s %8s %7s %7s %8s %6s %9s %5s %5s %6s\n' "$name" "${execs:-?}" "$took" \
        "$(( ${execs:-0} / (took > 0 ? took : 1) ))" "${corpus:-?}" \
        "$(count "$name" crash)" "$(count "$name" leak)" "$(count "$name" timeout)" "$(count "$name" oom)" \
        "$(grep -c ' hdf5 ' "$OUT/logs/$name.findings" || true)" "$(grep -c ' unreproduced ' "$OUT/logs/$name.findings" || true)"
done
echo "found inputs: $OUT/crashes/<harness>/; which is whose: $OUT/logs/<harness>.findings"
