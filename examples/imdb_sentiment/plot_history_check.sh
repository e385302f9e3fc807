#!/usr/bin/env bash
# imdb_sentiment --plot-history FILE.svg draws the run's curves: an SVG with the loss and accuracy
# panels and their validation curves, one point per epoch.
# Usage: plot_history_check.sh IMDB_SENTIMENT_BINARY SMALL_IMDB_NPZ
set -euo pipefail
binary=$1
data=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$binary" --data "$data" --verbose 0 --num-words 100 --maxlen 20 --epochs 2 --plot-history "$dir/curves.svg" \
  > "$dir/out.txt"
grep -q "^Wrote the training curves to $dir/curves.svg" "$dir/out.txt"
head -c 5 "$dir/curves.svg" | grep -q '<?xml'
for curve in loss val_loss accuracy val_accuracy; do
  grep -q "<g class=\"curve\" data-name=\"$curve\">" "$dir/curves.svg" || { echo "no $curve curve" >&2; exit 1; }
done
# Two epochs: each curve's polyline has two points.
if [ "$(grep -c '<polyline points="[0-9.]*,[0-9.]* [0-9.]*,[0-9.]*"' "$dir/curves.svg")" != 4 ]; then
  echo "expected 4 polylines of 2 points" >&2
  exit 1
fi
echo "curves drawn into curves.svg"
