#!/bin/bash
# Builds the Debian package from a clean copy of this source tree: copies the
# tree without build directories, makes deb/ its debian/ directory and runs
# dpkg-buildpackage -us -uc -b there (the unit tests run during the build;
# DEB_BUILD_OPTIONS=nocheck skips them).  Needs dpkg-dev, debhelper and the
# Build-Depends of deb/control.
#
#   packaging/build-deb.sh [OUTDIR]    default OUTDIR: build-package/ in the tree
#
# Leaves walarchive_VERSION_ARCH.deb (and the -dbgsym package, .buildinfo,
# .changes) in OUTDIR and prints the path of the .deb on the last line.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$SRC/build-package}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

WORK=$(mktemp -d /tmp/walarchive-deb.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/walarchive"
# what .gitignore ignores (build directories, caches) stays behind
tar -C "$SRC" --exclude=./.git --exclude='./build*' --exclude=./debian \
	--exclude=./tests/.cache -cf - . | tar -C "$WORK/walarchive" -xf -
cp -r "$WORK/walarchive/deb" "$WORK/walarchive/debian"

(cd "$WORK/walarchive" && dpkg-buildpackage -us -uc -b -Jauto)

version=$(cd "$WORK/walarchive" && dpkg-parsechangelog -S Version)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
for f in "$WORK"/*.deb "$WORK"/*.ddeb "$WORK"/*.buildinfo "$WORK"/*.changes; do
	[ -e "$f" ] && cp "$f" "$OUT/"
done
echo "$OUT/walarchive_${version}_${arch}.deb"
