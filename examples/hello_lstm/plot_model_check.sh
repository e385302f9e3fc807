#!/usr/bin/env bash
# hello_lstm --plot-model FILE draws the model: a PNG when Graphviz's dot is on PATH, else the dot
# text beside it (model.dot) and a warning naming that file. Both cases run: the second with a PATH
# that has no dot.
# Usage: plot_model_check.sh HELLO_LSTM_BINARY
set -euo pipefail
binary=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
if command -v dot > /dev/null; then
  "$binary" --epochs 1 --plot-model "$dir/model.png" > "$dir/out.txt"
  grep -q "^Drew the model into $dir/model.png" "$dir/out.txt"
  head -c 4 "$dir/model.png" | grep -q PNG
  echo "rendered with dot"
else
  echo "dot is not installed: only the fallback is checked"
fi
mkdir "$dir/empty"
PATH="$dir/empty" "$binary" --epochs 1 --plot-model "$dir/fallback.png" > "$dir/out2.txt" 2> "$dir/err2.txt"
grep -q "^Drew the model into $dir/fallback.dot" "$dir/out2.txt"
grep -q "wrote the graph to '$dir/fallback.dot'" "$dir/err2.txt"
grep -q 'lstm: LSTM|tanh}|{input:|output:}|{{(None, 9, 7)}|{(None, 9, 4)}}' "$dir/fallback.dot"
echo "without dot: wrote fallback.dot"
