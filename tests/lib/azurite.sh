# shellcheck shell=bash
# A private Azurite, Microsoft's Azure Storage emulator (its blob service),
# for the integration tests (bash; source after common.sh).  It checks
# Shared Key and SAS signatures like Azure does.  Installed from npm into
# $WALARCHIVE_AZURITE_CACHE once (needs node and npm, and the npm registry
# on first use); the reference client needs Debian's python3-azure.
#
#   azurite_start NAME [CONTAINER]   starts azurite-blob in $WALARCHIVE_TMP/NAME
#       on 127.0.0.1 and a free port, creates CONTAINER (default
#       "walarchive") with the reference client, and sets
#       AZURITE_PORT, AZURITE_ENDPOINT (http://127.0.0.1:PORT/devstoreaccount1),
#       AZURITE_ACCOUNT, AZURITE_KEY, AZURITE_CONTAINER, AZURITE_DIR, AZURITE_PID
#   azref ARGS / azurite_keys CONTAINER [PREFIX]   the Azure SDK reference
#       client (tests/lib/azref.py) against this server
#   azurite_stop / azurite_restart   stop (by PID; registered with
#       t_cleanup) and start again on the same port and data

: "${WALARCHIVE_AZURITE_CACHE:=/var/cache/walarchive-test/azurite}"
AZURITE_VERSION=3.35.0
AZURITE_PY=${AZURITE_PY:-/usr/bin/python3}
# the emulator's well-known development account
AZURITE_ACCOUNT=devstoreaccount1
AZURITE_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

# azurite_install: installs the pinned version once; prints azurite-blob's path.
azurite_install() {
	local dir=$WALARCHIVE_AZURITE_CACHE/$AZURITE_VERSION tmp
	if [ -f "$dir/.installed" ]; then
		echo "$dir/node_modules/.bin/azurite-blob"
		return 0
	fi
	if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
		echo "azurite_install: npm and node are needed to install azurite" >&2; return 1
	fi
	mkdir -p "$WALARCHIVE_AZURITE_CACHE" || return 1
	# a private temp dir renamed into place: never a half-made $dir
	tmp=$(mktemp -d "$WALARCHIVE_AZURITE_CACHE/.install.XXXXXX") || return 1
	echo '{"private": true}' > "$tmp/package.json"
	if ! (cd "$tmp" && npm install --no-save --no-audit --no-fund "azurite@$AZURITE_VERSION" \
		>"$tmp/npm.log" 2>&1); then
		tail -n 20 "$tmp/npm.log" >&2
		rm -rf "$tmp"
		return 1
	fi
	touch "$tmp/.installed"
	mv -T "$tmp" "$dir" 2>/dev/null || rm -rf "$tmp"
	echo "$dir/node_modules/.bin/azurite-blob"
}

# (in a subshell: bash reports no "Killed" when azurite_stop kills it)
_azurite_run() {
	AZURITE_PID=$("$AZURITE_BIN" --blobHost 127.0.0.1 --blobPort "$AZURITE_PORT" \
		--location "$AZURITE_DIR/data" --skipApiVersionCheck --disableProductStyleUrl --silent \
		>>"$AZURITE_DIR/azurite.log" 2>&1 & echo $!)
}

# ready when the reference client lists the container (or can make it)
_azurite_ready() {
	local i
	for i in $(seq 1 60); do
		azref keys "$1" none/ >/dev/null 2>&1 && return 0
		azref mb "$1" >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	tail -n 20 "$AZURITE_DIR/azurite.log" >&2
	return 1
}

azurite_start() {
	local name=$1 container=${2:-walarchive}
	AZURITE_BIN=$(azurite_install) || return 1
	AZURITE_DIR=$WALARCHIVE_TMP/$name
	mkdir -p "$AZURITE_DIR/data"
	AZURITE_PORT=$(t_free_port)
	AZURITE_ENDPOINT=http://127.0.0.1:$AZURITE_PORT/$AZURITE_ACCOUNT
	AZURITE_CONTAINER=$container
	_azurite_run
	t_cleanup "azurite_stop"
	export AZURITE_PORT AZURITE_ENDPOINT AZURITE_ACCOUNT AZURITE_KEY AZURITE_CONTAINER AZURITE_DIR
	_azurite_ready "$container"
}

# azref ARGS...: the Azure SDK reference client (azref.py) against this server.
azref() {
	AZREF_ENDPOINT=$AZURITE_ENDPOINT AZREF_ACCOUNT=$AZURITE_ACCOUNT AZREF_KEY=$AZURITE_KEY \
		"$AZURITE_PY" "$WALARCHIVE_SRC/tests/lib/azref.py" "$@"
}

# azurite_keys CONTAINER [PREFIX]: every blob name under PREFIX, one a line.
azurite_keys() { azref keys "$@"; }

azurite_stop() {
	[ -n "$AZURITE_PID" ] || return 0
	kill -9 "$AZURITE_PID" 2>/dev/null
	t_wait 10 bash -c "! kill -0 $AZURITE_PID"
	AZURITE_PID=
}

azurite_restart() {
	_azurite_run
	_azurite_ready "$AZURITE_CONTAINER"
}
