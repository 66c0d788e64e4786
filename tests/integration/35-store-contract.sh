#!/bin/bash
# SANITIZE_OK: also run against the ASan+UBSan build by tests/run.sh
# Not in the memcheck pass: about 2 minutes there (92 program starts); clean when run by hand.
# The store contract of lib/store/store.h, the same checks against every
# driver: file (a local directory), sftp (a private sshd), https WebDAV
# (nginx), s3 (Swift s3api) and azure (Azurite).  Through storectl (tests/tools/storectl.c,
# installed beside the programs by a build with WALARCHIVE_TESTS): put, get,
# stat, list, remove; a put never replaces (EEXIST, the object untouched);
# a put whose source breaks in the middle leaves nothing under the name;
# a missing object is "not found" to stat, get and remove.  What is proper
# to one transport (host keys, TLS, SigV4, a server gone mid-transfer)
# stays in 30-sftp, 40-webdav, 41-s3 and 45-azure.
. "$(dirname "$0")/../lib/common.sh"
. "$WALARCHIVE_SRC/tests/lib/pg.sh"
. "$WALARCHIVE_SRC/tests/lib/sshd.sh"
. "$WALARCHIVE_SRC/tests/lib/nginx.sh"
. "$WALARCHIVE_SRC/tests/lib/swift.sh"
. "$WALARCHIVE_SRC/tests/lib/azurite.sh"

export LC_ALL=C
BIN=$WALARCHIVE_BIN
T=$WALARCHIVE_TMP
[ -x "$BIN/storectl" ] || { t_fail "$BIN/storectl is not installed (cmake --install BUILD --component tests)"; t_done; }
# storectl exits with the wal_err number (lib/base/error.h)
OK=0 ENOENT=1 EEXIST=2

# ---- one configuration per driver -----------------------------------------
mkdir -p "$T/file-root"
walarchive_conf "$T/file.conf" "archive=$T/file-root"

D=$T/sshd
SARCH=$T/sftp-root
if t_setup "sshd" sshd_setup "$D" && t_setup "sshd starts" sshd_start "$D" &&
   t_setup "ssh-keyscan" sshd_known_hosts "$D"; then
	mkdir -p "$SARCH"
	chown "$SSHD_USER" "$SARCH"
	walarchive_conf "$T/sftp.conf" "archive=$(sshd_url "$D" "$SARCH")" "ssh_key=$D/id_ed25519" \
		"ssh_known_hosts=$D/known_hosts" "timeout=5" "retries=1"
fi

if t_setup "nginx webdav with tls and basic auth" nginx_start dav; then
	walarchive_conf "$T/https.conf" "archive=$NGINX_URL" "http_user=$NGINX_USER" \
		"http_password=$NGINX_PASS" "tls_ca_file=$NGINX_CA" "timeout=5" "retries=1"
fi

if t_setup "swift with s3api" swift_start swift walarchive; then
	walarchive_conf "$T/s3.conf" "archive=s3://$SWIFT_BUCKET/contract" \
		"s3_endpoint=http://127.0.0.1:$SWIFT_PORT" "s3_uri_style=path" "s3_region=us-east-1" \
		"timeout=5" "retries=1"
	export AWS_ACCESS_KEY_ID=$SWIFT_ACCESS AWS_SECRET_ACCESS_KEY=$SWIFT_SECRET
fi

if t_setup "azurite" azurite_start azurite walarchive; then
	walarchive_conf "$T/azure.conf" "archive=azure://$AZURITE_ACCOUNT/$AZURITE_CONTAINER/contract" \
		"azure_endpoint=$AZURITE_ENDPOINT" "azure_account_key=$AZURITE_KEY" "timeout=5" "retries=1"
fi

# 1 MiB of incompressible bytes (several writes on every transport), and
# another content for the same name
head -c 1048576 /dev/urandom > "$T/data"
head -c 4096 /dev/urandom > "$T/other"

# sc DRIVER ARGS...: storectl with DRIVER's configuration; stdout in $T/out
sc() { local d=$1; shift; "$BIN/storectl" "$T/$d.conf" "$@" >"$T/out" 2>"$T/err"; }
# listed DRIVER DIR: the entries of DIR, temporary (dot) names left out, sorted
listed() { sc "$1" list "$2" && grep -v '^\.' "$T/out" | sort | tr '\n' ' '; }

# contract DRIVER: every check of the contract against DRIVER
contract() {
	local d=$1
	t_exit "$d: put a new object" $OK sc "$d" put c/d/obj <"$T/data"
	t_exit "$d: stat finds it" $OK sc "$d" stat c/d/obj
	t_eq "$d: stat gives its size" "$(cat "$T/out")" 1048576
	t_exit "$d: get it" $OK sc "$d" get c/d/obj
	t_check "$d: get gives the bytes put" cmp -s "$T/out" "$T/data"
	t_eq "$d: list shows it" "$(listed "$d" c/d)" "obj "
	t_eq "$d: list of the parent shows the directory" "$(listed "$d" c)" "d/ "

	t_exit "$d: a put over it is refused, EEXIST" $EEXIST sc "$d" put c/d/obj <"$T/other"
	sc "$d" get c/d/obj
	t_check "$d: and the object is untouched" cmp -s "$T/out" "$T/data"

	sc "$d" put --fail-after 524288 c/d/part <"$T/data"
	t_check "$d: a put whose source breaks midway fails" test $? -ne $OK
	t_exit "$d: and stat does not find the name" $ENOENT sc "$d" stat c/d/part
	t_exit "$d: nor get" $ENOENT sc "$d" get c/d/part
	t_eq "$d: nor list" "$(listed "$d" c/d)" "obj "

	t_exit "$d: stat of a missing object: ENOENT" $ENOENT sc "$d" stat c/d/missing
	t_exit "$d: get of a missing object: ENOENT" $ENOENT sc "$d" get c/d/missing
	t_eq "$d: and writes nothing" "$(wc -c <"$T/out")" 0
	t_exit "$d: remove of a missing object: ENOENT" $ENOENT sc "$d" remove c/d/missing

	t_exit "$d: remove the object" $OK sc "$d" remove c/d/obj
	t_exit "$d: stat no longer finds it" $ENOENT sc "$d" stat c/d/obj
	t_exit "$d: get no longer finds it" $ENOENT sc "$d" get c/d/obj
	t_eq "$d: list no longer shows it" "$(listed "$d" c/d)" ""
	t_exit "$d: a put under the freed name works" $OK sc "$d" put c/d/obj <"$T/other"
	sc "$d" get c/d/obj
	t_check "$d: and get gives the new bytes" cmp -s "$T/out" "$T/other"
}

for d in file sftp https s3 azure; do
	if [ -f "$T/$d.conf" ]; then
		contract "$d"
	else
		t_skip "$d: the contract (its server did not start)"
	fi
done
t_done
