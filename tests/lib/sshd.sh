# A private OpenSSH sshd on 127.0.0.1 for the integration tests and the
# benchmark (bash; source after common.sh).  Everything lives in one
# directory DIR: host keys, the client key, authorized_keys, known_hosts,
# sshd_config, the log and the PID file.
#
#   sshd_setup DIR [CLIENT_OWNER]  creates the test user ($SSHD_USER), the
#                        host keys (ed25519 and ecdsa), a client key
#                        DIR/id_ed25519 without passphrase (owned by
#                        CLIENT_OWNER, default root) and authorized_keys
#   sshd_start DIR [SFTP_OPTS]  starts sshd in the foreground on a free port
#                        (DIR/port), PID in DIR/pid; registers its stop with
#                        t_cleanup; SFTP_OPTS go to internal-sftp (e.g.
#                        "-P fsync@openssh.com" to deny a request)
#   sshd_restart DIR     starts it again on the same port (after sshd_kill)
#   sshd_known_hosts DIR [ssh-keyscan options]  writes DIR/known_hosts with
#                        the running server's ed25519 key (ssh-keyscan)
#   sshd_stop DIR        stops the listener and every session, by PID
#   sshd_kill DIR [SIG]  sends SIG (default KILL) to the listener and every
#                        session process (simulates a crashed server)
#   sshd_sessions DIR    PIDs of the running session processes
#   sshd_port DIR / sshd_url DIR PATH   the port / sftp://user@127.0.0.1:port/PATH
#   sshd_ssh_cmd DIR     an ssh command line for rsync -e / scp (same key, same
#                        known_hosts, batch mode)
#   sshd_throttle_proxy DIR BYTES_PER_SEC [DELAY_MS]   starts a TCP proxy on a
#                        free port (DIR/proxy_port) to the sshd, forwarding at
#                        most BYTES_PER_SEC per connection in each direction,
#                        each byte DELAY_MS (default 0) after it arrived, as a
#                        link with a round trip of twice that; PID in
#                        DIR/proxy_pid

: "${SSHD_USER:=walsftp}"
SSHD_BIN=${SSHD_BIN:-/usr/sbin/sshd}
export SSHD_USER

sshd_port() { cat "$1/port"; }
sshd_url()  { echo "sftp://$SSHD_USER@127.0.0.1:$(sshd_port "$1")/${2#/}"; }

sshd_setup() {
	local dir=$1 owner=${2:-root}
	mkdir -p "$dir" /run/sshd
	chmod 755 "$dir"
	if ! id "$SSHD_USER" >/dev/null 2>&1; then
		useradd -M -d / -s /bin/sh "$SSHD_USER" || return 1
	fi
	# sshd refuses a locked account ("!") even for key logins
	usermod -p '*' "$SSHD_USER" || return 1
	rm -f "$dir"/host_* "$dir"/id_ed25519*
	ssh-keygen -q -t ed25519 -N '' -C walarchive-test-host -f "$dir/host_ed25519" || return 1
	ssh-keygen -q -t ecdsa -N '' -C walarchive-test-host -f "$dir/host_ecdsa" || return 1
	ssh-keygen -q -t ed25519 -N '' -C walarchive-test-client -f "$dir/id_ed25519" || return 1
	cp "$dir/id_ed25519.pub" "$dir/authorized_keys"
	chmod 644 "$dir/authorized_keys"
	chown "$owner" "$dir/id_ed25519" "$dir/id_ed25519.pub"
}

sshd_start() {
	local dir=$1 sftp_opts=${2:-}
	local port; port=$(t_free_port)
	echo "$port" > "$dir/port"
	cat > "$dir/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $port
HostKey $dir/host_ed25519
HostKey $dir/host_ecdsa
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
Subsystem sftp internal-sftp $sftp_opts
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AllowUsers $SSHD_USER
MaxStartups 100
MaxSessions 100
LogLevel VERBOSE
EOF
	sshd_restart "$dir"
}

# sshd_restart DIR: starts sshd again with the same config and port (after sshd_kill).
sshd_restart() {
	local dir=$1
	local port; port=$(sshd_port "$dir")
	"$SSHD_BIN" -D -e -f "$dir/sshd_config" >>"$dir/sshd.log" 2>&1 &
	echo $! > "$dir/pid"
	t_cleanup "sshd_stop '$dir'"
	if ! t_wait 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"; then
		echo "sshd did not start on port $port:" >&2
		tail -n 20 "$dir/sshd.log" >&2
		return 1
	fi
}

# sshd_known_hosts DIR [ssh-keyscan options, e.g. -H]
sshd_known_hosts() {
	local dir=$1; shift
	ssh-keyscan -t ed25519 -p "$(sshd_port "$dir")" "$@" 127.0.0.1 > "$dir/known_hosts" 2>/dev/null
	[ -s "$dir/known_hosts" ] || { echo "ssh-keyscan found no key" >&2; return 1; }
	chmod 644 "$dir/known_hosts"
}

# Descendants of a PID (children first, then theirs).
_sshd_descendants() {
	local p c
	for p in "$@"; do
		for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do
			echo "$c"
			_sshd_descendants "$c"
		done
	done
}

sshd_sessions() {
	[ -f "$1/pid" ] || return 0
	_sshd_descendants "$(cat "$1/pid")"
}

sshd_kill() {
	local dir=$1 sig=${2:-KILL}
	[ -f "$dir/pid" ] || return 0
	local pid; pid=$(cat "$dir/pid")
	local procs; procs="$pid $(_sshd_descendants "$pid")"
	# shellcheck disable=SC2086
	kill -s "$sig" $procs 2>/dev/null
	if [ "$sig" = KILL ] || [ "$sig" = TERM ]; then
		wait "$pid" 2>/dev/null
		rm -f "$dir/pid"
	fi
	return 0
}

sshd_stop() { sshd_kill "$1" TERM; sshd_proxy_stop "$1"; }

sshd_ssh_cmd() {
	local dir=$1
	echo "ssh -p $(sshd_port "$dir") -i $dir/id_ed25519 -o UserKnownHostsFile=$dir/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes"
}

sshd_throttle_proxy() {
	local dir=$1 rate=$2 delay=${3:-0}
	local port; port=$(t_free_port)
	echo "$port" > "$dir/proxy_port"
	python3 - "$port" "$(sshd_port "$dir")" "$rate" "$delay" >>"$dir/proxy.log" 2>&1 <<'PY' &
import asyncio, sys, time
listen, target, rate = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
delay = float(sys.argv[4]) / 1000
# Each direction: a reader stamps what arrives; a writer sends it once it is
# delay old and the link has sent what went before, at rate. The queue between
# them is the link's buffer: when it is full, the reader stops reading and
# TCP's own flow control holds the sender back.
async def reader_side(reader, q):
    try:
        while True:
            data = await reader.read(16384)
            await q.put((time.monotonic() + delay, data))
            if not data:
                return
    except Exception:
        await q.put((0, b""))
async def writer_side(q, writer):
    free = 0.0   # when the link has sent what went before
    try:
        while True:
            due, data = await q.get()
            if not data:
                break
            at = max(due, free)
            wait = at - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
            free = at + len(data) / rate
    except Exception:
        pass
    finally:
        writer.close()
async def pipe(reader, writer):
    q = asyncio.Queue(maxsize=256)
    await asyncio.gather(reader_side(reader, q), writer_side(q, writer))
async def handle(cr, cw):
    try:
        sr, sw = await asyncio.open_connection("127.0.0.1", target)
    except Exception:
        cw.close()
        return
    await asyncio.gather(pipe(cr, sw), pipe(sr, cw))
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    async with server:
        await server.serve_forever()
asyncio.run(main())
PY
	echo $! > "$dir/proxy_pid"
	t_cleanup "sshd_proxy_stop '$dir'"
	t_wait 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"
}

sshd_proxy_stop() {
	[ -f "$1/proxy_pid" ] || return 0
	kill "$(cat "$1/proxy_pid")" 2>/dev/null
	wait "$(cat "$1/proxy_pid")" 2>/dev/null
	rm -f "$1/proxy_pid"
	return 0
}
