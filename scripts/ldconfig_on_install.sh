#!/bin/sh
# meson install script: refreshes ld.so's cache after installing libkerascpp into a system library
# folder, so programs linked against it start without LD_LIBRARY_PATH (as a distribution's package
# does). It does nothing, and never fails the install, when
#   - installing into a staging DESTDIR (meson skips the script then; checked here too),
#   - ld.so's cache cannot be written (a user installing into their own prefix),
#   - the libdir is not a folder ld.so searches (a custom prefix: see docs/install.md).
libdir="$1"
[ -n "${DESTDIR:-}" ] && exit 0
[ -n "${MESON_INSTALL_DRY_RUN:-}" ] && exit 0
ldconfig=$(command -v ldconfig || echo /sbin/ldconfig)
[ -x "$ldconfig" ] || exit 0
[ "$(id -u)" -eq 0 ] || [ -w /etc/ld.so.cache ] || exit 0
# `ldconfig -v -N` lists the folders it searches ("/usr/local/lib: (from ...)") without updating
# anything; -ef also matches a folder reached through a symlink (/lib -> /usr/lib).
in_search_path=no
for dir in $("$ldconfig" -v -N 2>/dev/null | sed -n 's|^\(/[^:]*\):.*|\1|p'); do
  [ "$dir" -ef "$libdir" ] && in_search_path=yes
done
[ "$in_search_path" = yes ] || exit 0
echo "Running ldconfig ($libdir is in ld.so's search path)"
"$ldconfig" || echo "warning: ldconfig failed; run 'sudo ldconfig' before starting programs linked against libkerascpp"
exit 0
