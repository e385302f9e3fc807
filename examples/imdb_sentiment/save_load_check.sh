#!/usr/bin/env bash
# imdb_sentiment --save writes a model that --load reads back: evaluating the loaded model without
# training (--epochs 0) must print the same test loss and accuracy as the run that saved it.
# Usage: save_load_check.sh IMDB_SENTIMENT_BINARY SMALL_IMDB_NPZ
set -euo pipefail
binary=$1
data=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
common=(--data "$data" --verbose 0)
"$binary" "${common[@]}" --num-words 100 --maxlen 20 --epochs 2 --save "$dir/model.h5" > "$dir/first.txt"
"$binary" "${common[@]}" --epochs 0 --load "$dir/model.h5" > "$dir/second.txt"
first=$(grep '^Test loss' "$dir/first.txt")
second=$(grep '^Test loss' "$dir/second.txt")
grep -q '^Saved the model to' "$dir/first.txt"
grep -q '^Loaded .* (num_words 100, maxlen 20)' "$dir/second.txt"
if [ "$first" != "$second" ]; then
  echo "after save + load: '$second', before: '$first'" >&2
  exit 1
fi
echo "same evaluation after save + load: $first"
