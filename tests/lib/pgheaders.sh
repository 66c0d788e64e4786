# shellcheck shell=bash
# PostgreSQL server headers for the archive module (bash; source this file).
#
#   pgheaders_install MAJOR   prints the server include directory of
#                             PostgreSQL MAJOR (pg_config --includedir-server):
#                             Debian's postgresql-server-dev-15 for 15, else
#                             built once into $WALARCHIVE_PGCACHE/headersMAJOR
#
# For 16 to 18 the headers come from Debian's own source package of
# postgresql-MAJOR, checked as pgclient.sh checks postgresql-18's: the orig
# tarball against its SHA-256 in the Sources index of the suite that carries
# it, and that index against the suite's InRelease, checked with gpgv and
# Debian's keyring.  Only configure and the generated headers are run (about
# 30 s on two cores).  A version no suite of the mirror carries, or whose
# tarball the mirror does not serve, fails with the reason, which is kept
# for a day in $WALARCHIVE_PGCACHE/headersMAJOR.unavailable so that a test
# run does not search the mirror again each time.

# shellcheck source=tests/lib/pgclient.sh
. "$(dirname "${BASH_SOURCE[0]}")/pgclient.sh"

# the suites searched, newest release first
: "${PGHEADERS_SUITES:=trixie forky unstable experimental bookworm-backports trixie-backports}"

pgheaders_install() {
	local major=$1 dir=$WALARCHIVE_PGCACHE/headers$1 tmp line file sum pool suite found=
	local mirror=${PGCLIENT_MIRROR:-}
	if [ "$major" = 15 ]; then
		if [ -f /usr/include/postgresql/15/server/postgres.h ]; then
			echo /usr/include/postgresql/15/server
			return 0
		fi
		echo "pgheaders_install: /usr/include/postgresql/15/server is missing (apt-get install postgresql-server-dev-15)" >&2
		return 1
	fi
	if [ -f "$dir/server/postgres.h" ] && [ -f "$dir/VERSION" ]; then
		echo "$dir/server"
		return 0
	fi
	if [ -n "$(find "$dir.unavailable" -mmin -1440 2>/dev/null)" ]; then
		cat "$dir.unavailable" >&2
		return 1
	fi
	for p in bison flex perl cc make xz curl gpgv; do
		command -v "$p" >/dev/null || { echo "pgheaders_install: $p is needed" >&2; return 1; }
	done
	[ -n "$mirror" ] || mirror=$(debian_mirror) || return 1
	mkdir -p "$WALARCHIVE_PGCACHE" || return 1
	chmod a+rx "$WALARCHIVE_PGCACHE"
	tmp=$(mktemp -d "$WALARCHIVE_PGCACHE/.headers$major.XXXXXX") || return 1
	for suite in $PGHEADERS_SUITES; do
		rm -f "$tmp/InRelease" "$tmp/Release" "$tmp/Sources.xz"
		curl -fsS --retry 3 -o "$tmp/InRelease" "$mirror/dists/$suite/InRelease" 2>/dev/null &&
			curl -fsS --retry 3 -o "$tmp/Sources.xz" "$mirror/dists/$suite/main/source/Sources.xz" 2>/dev/null ||
			continue
		if ! gpgv --keyring /usr/share/keyrings/debian-archive-keyring.gpg --output "$tmp/Release" \
			"$tmp/InRelease" >/dev/null 2>&1; then
			echo "pgheaders_install: Debian's $suite InRelease has no good signature" >&2
			rm -rf "$tmp"; return 1
		fi
		sum=$(awk '/^SHA256:/ { s = 1; next } /^[^ ]/ { s = 0 } s && $3 == "main/source/Sources.xz" { print $1 }' "$tmp/Release")
		if [ -z "$sum" ] || [ "$(sha256sum "$tmp/Sources.xz" | cut -d' ' -f1)" != "$sum" ]; then
			echo "pgheaders_install: $suite Sources.xz does not match its SHA-256 in the signed InRelease" >&2
			rm -rf "$tmp"; return 1
		fi
		line=$(xz -dc "$tmp/Sources.xz" | awk -v pkg="postgresql-$major" '
			/^Package: / { p = ($2 == pkg) }
			p && /^Directory: / { d = $2 }
			p && /^Checksums-Sha256:/ { c = 1; next }
			p && c && /^ / { if ($3 ~ /orig\.tar\.(bz2|gz|xz)$/) f = $1 " " $3; next }
			{ c = 0 }
			p && /^$/ && f != "" { print f, d; exit }
			END { if (p && f != "") print f, d }')
		[ -n "$line" ] && { found=$suite; break; }
	done
	if [ -z "$found" ]; then
		echo "pgheaders_install: no postgresql-$major source package in Debian's $PGHEADERS_SUITES at $mirror" |
			tee "$dir.unavailable" >&2
		rm -rf "$tmp"; return 1
	fi
	read -r sum file pool <<<"$line"
	# a point release lists what the security archive published: same
	# pool, on the security archive beside the mirror; the SHA-256 checked
	# below is the signed index's either way
	if ! curl -fsS --retry 3 -o "$tmp/$file" "$mirror/$pool/$file" 2>/dev/null &&
		! curl -fsS --retry 3 -o "$tmp/$file" "${mirror%/debian}/debian-security/${pool/#pool\/main/pool/updates/main}/$file"; then
		echo "pgheaders_install: cannot download $file ($found lists it in $pool) from $mirror nor its security archive" |
			tee "$dir.unavailable" >&2
		rm -rf "$tmp"; return 1
	fi
	if [ "$(sha256sum "$tmp/$file" | cut -d' ' -f1)" != "$sum" ]; then
		echo "pgheaders_install: $file does not match its SHA-256 in the Sources index" >&2
		rm -rf "$tmp"; return 1
	fi
	mkdir "$tmp/src"
	tar -xf "$tmp/$file" -C "$tmp/src" --strip-components=1 || { rm -rf "$tmp"; return 1; }
	if ! (cd "$tmp/src" &&
		./configure --prefix="$dir" --without-icu --without-readline --without-zlib \
			--without-lz4 --without-zstd >"$tmp/build.log" 2>&1 &&
		make -s -j"$(nproc)" -C src/backend generated-headers >>"$tmp/build.log" 2>&1 &&
		make -s -C src/include install DESTDIR="$tmp/dest" >>"$tmp/build.log" 2>&1); then
		echo "pgheaders_install: the headers of $file failed to build:" >&2
		tail -n 20 "$tmp/build.log" >&2
		rm -rf "$tmp"; return 1
	fi
	# only the server headers are kept: $dir/server is pg_config --includedir-server
	mkdir "$tmp/keep" && mv "$(dirname "$(find "$tmp/dest" -path '*/server/postgres.h')")" "$tmp/keep/server" ||
		{ rm -rf "$tmp"; return 1; }
	echo "$file from $found" >"$tmp/keep/VERSION"
	chmod -R a+rX "$tmp/keep" || { rm -rf "$tmp"; return 1; }
	rm -rf "$dir"
	if ! mv -T "$tmp/keep" "$dir"; then
		rm -rf "$tmp"; return 1
	fi
	rm -rf "$tmp"
	echo "$dir/server"
}
