# shellcheck shell=bash
# A pg_basebackup for PostgreSQL 16 to 18 standbys (bash; source this file).
#
#   pgclient_install   prints a bin directory holding pg_basebackup of
#                      PostgreSQL 18, building it once into
#                      $WALARCHIVE_PGCACHE/client18 when the machine has none
#
# Debian 12 ships only the version-15 client tools, pg_basebackup refuses a
# server newer than itself, and the npm server packages (pgnpm.sh) carry no
# client programs.  pg_basebackup reads every older server, so one of
# version 18 serves the 16, 17 and 18 standbys.  It is built from Debian's
# own source package of postgresql-18 (the orig tarball checked against its
# SHA-256 in the Sources index of unstable, and that index against the
# archive's InRelease, checked with gpgv and Debian's keyring), without
# readline, zlib, ICU or
# SSL (the tests connect over loopback): about 40 s on two cores.
# Needs bison, flex, perl and a C compiler (tests/setup.sh installs them).
# The Debian mirror is the machine's own, from apt's configuration
# (debian_mirror), unless PGCLIENT_MIRROR names one.

: "${WALARCHIVE_PGCACHE:=/var/cache/walarchive-test/pg}"

# debian_mirror: prints the URL of the Debian archive apt uses (the first
# "URIs:" of a deb822 .sources file, or "deb URL" of a one-line list, that is
# not a security archive); fails when apt names none
debian_mirror() {
	local url
	url=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
		awk 'tolower($1) == "uris:" { for (i = 2; i <= NF; i++) print $i }' |
		grep -v security | head -n 1)
	[ -n "$url" ] || url=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
		awk '$1 == "deb" || $1 == "deb-src" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /=/ && $i !~ /\]$/) { print $i; break } }' |
		grep -v security | head -n 1)
	[ -n "$url" ] || { echo "debian_mirror: apt's sources name no Debian archive" >&2; return 1; }
	echo "${url%/}"
}

pgclient_install() {
	local dir=$WALARCHIVE_PGCACHE/client18 tmp line file sum
	local PGCLIENT_MIRROR=${PGCLIENT_MIRROR:-}
	if [ -x /usr/lib/postgresql/18/bin/pg_basebackup ]; then
		echo /usr/lib/postgresql/18/bin
		return 0
	fi
	if [ -x "$dir/bin/pg_basebackup" ] && "$dir/bin/pg_basebackup" --version 2>/dev/null | grep -q 'PostgreSQL) 18\.'; then
		echo "$dir/bin"
		return 0
	fi
	for p in bison flex perl cc make xz curl gpgv; do
		command -v "$p" >/dev/null || { echo "pgclient_install: $p is needed" >&2; return 1; }
	done
	[ -n "$PGCLIENT_MIRROR" ] || PGCLIENT_MIRROR=$(debian_mirror) || return 1
	mkdir -p "$WALARCHIVE_PGCACHE" || return 1
	chmod a+rx "$WALARCHIVE_PGCACHE"
	tmp=$(mktemp -d "$WALARCHIVE_PGCACHE/.client18.XXXXXX") || return 1
	# InRelease, signed by Debian, names the Sources index and its checksum
	if ! curl -fsS --retry 3 -o "$tmp/InRelease" "$PGCLIENT_MIRROR/dists/unstable/InRelease" ||
	   ! curl -fsS --retry 3 -o "$tmp/Sources.xz" "$PGCLIENT_MIRROR/dists/unstable/main/source/Sources.xz"; then
		echo "pgclient_install: cannot download Debian's unstable InRelease and Sources from $PGCLIENT_MIRROR" >&2
		rm -rf "$tmp"; return 1
	fi
	if ! gpgv --keyring /usr/share/keyrings/debian-archive-keyring.gpg --output "$tmp/Release" \
		"$tmp/InRelease" >/dev/null 2>&1; then
		echo "pgclient_install: Debian's unstable InRelease has no good signature" >&2
		rm -rf "$tmp"; return 1
	fi
	sum=$(awk '/^SHA256:/ { s = 1; next } /^[^ ]/ { s = 0 } s && $3 == "main/source/Sources.xz" { print $1 }' "$tmp/Release")
	if [ -z "$sum" ] || [ "$(sha256sum "$tmp/Sources.xz" | cut -d' ' -f1)" != "$sum" ]; then
		echo "pgclient_install: Sources.xz does not match its SHA-256 in the signed InRelease" >&2
		rm -rf "$tmp"; return 1
	fi
	line=$(xz -dc "$tmp/Sources.xz" | awk '
		/^Package: / { p = ($2 == "postgresql-18") }
		p && /^Checksums-Sha256:/ { c = 1; next }
		p && c && /^ / { if ($3 ~ /orig\.tar\.(bz2|gz|xz)$/) { print $1, $3; exit } next }
		{ c = 0 }')
	sum=${line%% *}
	file=${line#* }
	if [ -z "$line" ] || [ "$sum" = "$file" ]; then
		echo "pgclient_install: no postgresql-18 orig tarball in Debian's unstable Sources" >&2
		rm -rf "$tmp"; return 1
	fi
	if ! curl -fsS --retry 3 -o "$tmp/$file" "$PGCLIENT_MIRROR/pool/main/p/postgresql-18/$file"; then
		echo "pgclient_install: cannot download $file" >&2
		rm -rf "$tmp"; return 1
	fi
	if [ "$(sha256sum "$tmp/$file" | cut -d' ' -f1)" != "$sum" ]; then
		echo "pgclient_install: $file does not match its SHA-256 in the Sources index" >&2
		rm -rf "$tmp"; return 1
	fi
	mkdir "$tmp/src"
	tar -xf "$tmp/$file" -C "$tmp/src" --strip-components=1 || { rm -rf "$tmp"; return 1; }
	if ! (cd "$tmp/src" &&
		./configure --prefix="$dir" --without-icu --without-readline --without-zlib \
			--without-lz4 --without-zstd >"$tmp/build.log" 2>&1 &&
		make -s -j"$(nproc)" -C src/backend generated-headers >>"$tmp/build.log" 2>&1 &&
		make -s -j"$(nproc)" -C src/bin/pg_basebackup >>"$tmp/build.log" 2>&1 &&
		make -s -C src/bin/pg_basebackup install DESTDIR="$tmp/dest" >>"$tmp/build.log" 2>&1 &&
		make -s -C src/interfaces/libpq install DESTDIR="$tmp/dest" >>"$tmp/build.log" 2>&1); then
		echo "pgclient_install: building pg_basebackup 18 from $file failed:" >&2
		tail -n 20 "$tmp/build.log" >&2
		rm -rf "$tmp"; return 1
	fi
	# the build's rpath names $dir/lib: move the tree there in one rename
	chmod -R a+rX "$tmp/dest$dir" || { rm -rf "$tmp"; return 1; }
	rm -rf "$dir"
	if ! mv -T "$tmp/dest$dir" "$dir"; then
		rm -rf "$tmp"; return 1
	fi
	rm -rf "$tmp"
	if ! "$dir/bin/pg_basebackup" --version 2>/dev/null | grep -q 'PostgreSQL) 18\.'; then
		echo "pgclient_install: $dir/bin/pg_basebackup does not run" >&2
		return 1
	fi
	echo "$dir/bin"
}
