#!/bin/sh
# The API reference builds without Doxygen warnings for the user API: every class, struct, namespace
# function, type and macro of the public headers has a description, and no comment renders badly
# (unknown commands, stray HTML tags, broken links). Undocumented members of a class (fields of an
# options struct, overrides) are not counted. Skips (77) when doxygen is not installed.
# Usage: check_api_docs.sh DOXYGEN DOXYFILE   (DOXYGEN empty: not installed)
set -eu
doxygen="$1"
doxyfile="$2"
if [ -z "$doxygen" ]; then
    echo "doxygen is not installed: the API reference is not checked (apt-get install doxygen)"
    exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The configured Doxyfile, writing into a scratch folder so the check leaves build/docs alone.
{ cat "$doxyfile"; echo "OUTPUT_DIRECTORY = $work"; echo "WARN_LOGFILE = $work/warnings.log"; } | "$doxygen" - >"$work/out.log" 2>&1 || {
    cat "$work/out.log"; echo "doxygen failed"; exit 1; }
sort -u "$work/warnings.log" | grep -v -E 'warning: Member .* of (class|struct) .* is not documented\.$' >"$work/bad" || true
if [ -s "$work/bad" ]; then
    echo "Doxygen warnings for the user API:"
    cat "$work/bad"
    exit 1
fi
[ -s "$work/html/index.html" ] || { echo "no html/index.html was generated"; exit 1; }
echo "API reference: $(ls "$work/html" | wc -l) files, no warnings for classes, namespace functions and types"
