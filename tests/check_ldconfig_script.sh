#!/bin/sh
# scripts/ldconfig_on_install.sh decides as documented: ldconfig runs for a libdir ld.so searches,
# not for a DESTDIR staging install nor a libdir outside ld.so's search path, and a failing
# ldconfig never fails the install. A fake ldconfig (first in PATH) lists the searched folders and
# records each update.
set -eu
script="$1/scripts/ldconfig_on_install.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin" "$work/searched" "$work/elsewhere"
cat >"$work/bin/ldconfig" <<FAKE
#!/bin/sh
if [ "\$*" = "-v -N" ]; then echo "$work/searched: (from /etc/ld.so.conf.d/test.conf:1)"; exit 0; fi
echo ran >>"$work/calls"
[ ! -e "$work/fail" ]
FAKE
chmod +x "$work/bin/ldconfig"
# Root, so that the decision does not depend on who runs the test.
printf '#!/bin/sh\necho 0\n' >"$work/bin/id"; chmod +x "$work/bin/id"
export PATH="$work/bin:$PATH"
unset DESTDIR MESON_INSTALL_DRY_RUN || true
fail() { echo "FAIL: $*"; exit 1; }
calls() { [ -e "$work/calls" ] && wc -l <"$work/calls" || echo 0; }

sh "$script" "$work/searched" >/dev/null || fail "exit status for a searched libdir"
[ "$(calls)" -eq 1 ] || fail "ldconfig did not run for a libdir in ld.so's search path"
sh "$script" "$work/elsewhere" >/dev/null || fail "exit status for a custom libdir"
[ "$(calls)" -eq 1 ] || fail "ldconfig ran for a libdir outside ld.so's search path"
DESTDIR="$work/stage" sh "$script" "$work/searched" >/dev/null || fail "exit status with DESTDIR"
[ "$(calls)" -eq 1 ] || fail "ldconfig ran for a DESTDIR staging install"
touch "$work/fail"
out=$(sh "$script" "$work/searched") || fail "a failing ldconfig failed the install"
[ "$(calls)" -eq 2 ] || fail "ldconfig was not tried"
echo "$out" | grep -q "run 'sudo ldconfig'" || fail "no advice when ldconfig fails: $out"
echo "ldconfig_on_install.sh: runs for a searched libdir only, never fails the install"
