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
seconds=$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 }')

if [[ ! -d $BUILD ]]; then
    CC=clang CXX=clang++ meson setup "$BUILD" -Dfuzz=true -Dtests=false -Dbench=false -Dcuda=disabled
fi
ninja -C "$BUILD" $(printf 'fuzz/fuzz_%s ' "${harnesses[@]}")

run_one() {
    local name=$1
    mkdir -p "$OUT/corpus/$name" "$OUT/crashes/$name" "$OUT/logs"
    local before
    before=$(ls "$OUT/crashes/$name" | wc -l)
    local start=$SECONDS
    # New inputs are written to the first folder; the committed seeds and the regression corpus are read.
    # -fork=1 with -ignore_*: a crash is recorded and fuzzing goes on until the time is up.
    "$BUILD/fuzz/fuzz_$name" -max_total_time="$seconds" -timeout="$TIMEOUT" -rss_limit_mb="$RSS_MB" \
        -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 -print_final_stats=1 \
        -artifact_prefix="$OUT/crashes/$name/" \
        "$OUT/corpus/$name" "fuzz/corpus/$name" tests/fixtures/regression > "$OUT/logs/$name.log" 2>&1 || true
    echo "$name $((SECONDS - start)) $before" > "$OUT/logs/$name.done"
}

running=0
for name in "${harnesses[@]}"; do
    run_one "$name" &
    running=$((running + 1))
    if (( running >= JOBS )); then wait -n; running=$((running - 1)); fi
done
wait

count() { ls "$OUT/crashes/$1" 2>/dev/null | grep -c "^$2-" || true; }
printf '%-22s %12s %8s %8s %8s %7s %9s %6s\n' harness execs seconds exec/s corpus crashes leaks timeouts ooms | sed 's/ ooms$/  ooms/'
for name in "${harnesses[@]}"; do
    read -r _ took _ < "$OUT/logs/$name.done"
    log="$OUT/logs/$name.log"
    # Fork mode's progress lines read "#<execs>: cov: ... corp: <n> ..."; the last one is the total.
    execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    corpus=$(grep -oE 'corp: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+')
    printf '%-22s %12s %8s %8s %8s %7s %9s %6s\n' "$name" "${execs:-?}" "$took" \
        "$(( ${execs:-0} / (took > 0 ? took : 1) ))" "${corpus:-?}" \
        "$(count "$name" crash)" "$(count "$name" leak)" "$(count "$name" timeout)" "$(count "$name" oom)"
done
echo "found inputs: $OUT/crashes/<harness>/, logs: $OUT/logs/"
