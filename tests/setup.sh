#!/bin/bash
# Installs everything the build and the tests need on a fresh Debian 12
# machine (run as root): compilers and libraries, PostgreSQL 15, the test
# servers (sshd, nginx WebDAV, OpenStack Swift with s3api), pgBackRest and
# the tools the benchmark compares against; bison and flex build the
# pg_basebackup 18 that the 16-18 standbys need (tests/lib/pgclient.sh) and
# the server headers of the archive module for 16-18 (tests/lib/pgheaders.sh).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

# "core" installs only what the build and the local demonstration need.
CORE=(
	build-essential cmake pkg-config liblz4-dev lz4 libzstd-dev zstd libxxhash-dev libssh2-1-dev libcurl4-openssl-dev
	libexpat1-dev libssl-dev libpq-dev libcriterion-dev postgresql-15 postgresql-client-15
)
PACKAGES=(
	build-essential cmake pkg-config clang libclang-rt-14-dev clang-format valgrind
	liblz4-dev lz4 libzstd-dev zstd libxxhash-dev libssh2-1-dev libcurl4-openssl-dev libexpat1-dev libssl-dev
	libpq-dev libcriterion-dev
	postgresql-15 postgresql-client-15 postgresql-server-dev-15
	openssh-server openssh-client rsync
	nginx-extras apache2-utils openssl curl
	swift-proxy swift-account swift-container swift-object python3-swift
	python3-botocore awscli python3-prometheus-client python3-azure
	pgbackrest time procps iproute2 python3 man-db strace
	dpkg-dev debhelper lintian fakeroot
	bison flex xz-utils gpgv debian-archive-keyring
	age
)

[ "${1:-}" = core ] && PACKAGES=("${CORE[@]}")
missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Debian package starts a default cluster on port 5432; the tests run
# their own clusters on free ports and do not need it.
if command -v pg_ctlcluster >/dev/null && pg_lsclusters -h 2>/dev/null | grep -q '^15 main .* online'; then
	pg_ctlcluster 15 main stop || true
fi

# PostgreSQL 11 (and the other majors) from npm, for replinit's recovery.conf test.
if [ "${1:-}" != core ]; then
	source "$(dirname "$0")/lib/pgnpm.sh"
	pgnpm_install 11 >/dev/null
	# Azurite, the Azure Storage emulator, for the azure:// transport's tests
	source "$(dirname "$0")/lib/azurite.sh"
	azurite_install >/dev/null
fi
echo "setup: done"
