#!/usr/bin/env bash
# Builds a newer libhdf5 (1.14.5, Debian 13's source package) into a prefix, for building kerascpp
# against it instead of Debian 12's libhdf5 1.10.8, which has faults a damaged .h5 file can reach
# (docs/security.md):
#
#   scripts/build_hdf5.sh [PREFIX]            default PREFIX: $HOME/.local/hdf5-1.14.5
#   meson setup build-hdf5 -Dpkg_config_path=PREFIX/lib/pkgconfig
#   ninja -C build-hdf5 && meson test -C build-hdf5 hostile_files
#
# kerascpp's programs and tests find it through their build rpath, and an installed libkerascpp
# through its own rpath (meson.build sets it for a libhdf5 outside /usr).
# Only the C library is built (kerascpp uses HDF5's C API), with zlib for Keras's compressed datasets.
set -euo pipefail
version=1.14.5
prefix=${1:-$HOME/.local/hdf5-$version}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Debian 13's source package, fetched with apt from a private list (nothing is added to the system's).
mkdir -p "$work/lists/partial"
echo "deb-src http://deb.debian.org/debian trixie main" > "$work/sources.list"
apt_opts=(-o Dir::Etc::sourcelist="$work/sources.list" -o Dir::Etc::sourceparts=/dev/null
          -o Dir::State::Lists="$work/lists" -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
apt-get "${apt_opts[@]}" update -qq
(cd "$work" && apt-get "${apt_opts[@]}" source --download-only "hdf5=$version+repack-3" >/dev/null)
tar xzf "$work/hdf5_$version+repack.orig.tar.gz" -C "$work"

cmake -S "$work/hdf5-$version+repack" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$prefix" -DBUILD_TESTING=OFF \
    -DBUILD_STATIC_LIBS=OFF -DHDF5_BUILD_TOOLS=OFF -DHDF5_BUILD_EXAMPLES=OFF -DHDF5_BUILD_UTILS=OFF \
    -DHDF5_BUILD_HL_LIB=OFF -DHDF5_BUILD_CPP_LIB=OFF -DHDF5_BUILD_FORTRAN=OFF -DHDF5_BUILD_JAVA=OFF \
    -DHDF5_ENABLE_Z_LIB_SUPPORT=ON -DHDF5_ENABLE_SZIP_SUPPORT=OFF >/dev/null
ninja -C "$work/build" install >/dev/null
echo "libhdf5 $version installed in $prefix (pkg-config: $prefix/lib/pkgconfig)"
