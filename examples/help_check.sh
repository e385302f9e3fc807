#!/usr/bin/env bash
# An example's --help exits 0 and describes every option it takes (a renamed or dropped option fails).
# Usage: help_check.sh EXAMPLE_BINARY OPTION...
set -euo pipefail
binary=$1
shift
help=$("$binary" --help)
missing=()
for option in "$@"; do
  # The option's name as a whole word: --epochs must not be found inside --epochs-x.
  grep -qE -- "(^|[ ,])$option([ =:]|\$)" <<<"$help" || missing+=("$option")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "$(basename "$binary") --help does not mention: ${missing[*]}" >&2
  echo "$help" >&2
  exit 1
fi
echo "$(basename "$binary") --help mentions $*"
