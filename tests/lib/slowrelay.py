#!/usr/bin/python3
# A TCP relay for the integration tests: listens on 127.0.0.1:LISTEN_PORT and
# forwards each connection to 127.0.0.1:TARGET_PORT, at most RATE bytes per
# second in each direction, so a test can stop the server in the middle of a
# transfer.  Usage: slowrelay.py LISTEN_PORT TARGET_PORT RATE [CORRUPT_AT]
# With CORRUPT_AT, the byte at that offset of each connection's client-to-server
# stream is flipped (a body damaged in transit); "corrupted" goes to stderr.
# Progress goes to stderr too, each time another 64 KiB has been forwarded in
# a direction (all connections together): "relay LISTEN_PORT up|down BYTES",
# so that a test can see a transfer under way before it stops the server.
import socket
import sys
import threading
import time

listen_port, target_port, rate = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
corrupt_at = int(sys.argv[4]) if len(sys.argv) > 4 else -1
CHUNK = 16384
PROGRESS = 65536
relayed = {"up": 0, "down": 0}
relayed_lock = threading.Lock()


def progress(direction, n):
    with relayed_lock:
        before = relayed[direction]
        relayed[direction] = before + n
        if before // PROGRESS != relayed[direction] // PROGRESS:
            print("relay %d %s %d" % (listen_port, direction, relayed[direction]),
                  file=sys.stderr, flush=True)


def pump(src, dst, direction, corrupt=-1):
    offset = 0
    try:
        while True:
            data = src.recv(CHUNK)
            if not data:
                break
            if offset <= corrupt < offset + len(data):
                i = corrupt - offset
                data = data[:i] + bytes([data[i] ^ 0x55]) + data[i + 1:]
                print("corrupted", file=sys.stderr, flush=True)
            offset += len(data)
            dst.sendall(data)
            progress(direction, len(data))
            time.sleep(len(data) / rate)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def serve(client):
    try:
        upstream = socket.create_connection(("127.0.0.1", target_port))
    except OSError:
        client.close()
        return
    threading.Thread(target=pump, args=(client, upstream, "up", corrupt_at), daemon=True).start()
    threading.Thread(target=pump, args=(upstream, client, "down"), daemon=True).start()


server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", listen_port))
server.listen(16)
while True:
    conn, _ = server.accept()
    serve(conn)
