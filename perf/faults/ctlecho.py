#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""A UDP echo backend whose socket can be closed while the process lives (perf/faults.sh).

    ctlecho.py 127.0.0.1:PORT

SIGUSR1 closes the socket: datagrams to the port then get ICMP port unreachable
from the kernel, as from a server that stopped listening. SIGUSR2 binds it
again on the same port. SIGTERM/SIGINT exit. Prints "ctlecho: listening on
ADDR" / "ctlecho: closed" on stderr after each change, so scripts can wait.
"""
import errno
import select
import signal
import socket
import sys

host, port = sys.argv[1].rsplit(":", 1)
addr = (host, int(port))
want_open = True
running = True
sock = None


def on_signal(sig, _frame):
    global want_open, running
    if sig == signal.SIGUSR1:
        want_open = False
    elif sig == signal.SIGUSR2:
        want_open = True
    else:
        running = False


for s in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM, signal.SIGINT):
    signal.signal(s, on_signal)


def bind():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind(addr)
    s.setblocking(False)
    return s


while running:
    if want_open and sock is None:
        sock = bind()
        print(f"ctlecho: listening on {host}:{port}", file=sys.stderr, flush=True)
    elif not want_open and sock is not None:
        sock.close()
        sock = None
        print("ctlecho: closed", file=sys.stderr, flush=True)
    if sock is None:
        select.select([], [], [], 0.01)
        continue
    try:
        r, _, _ = select.select([sock], [], [], 0.01)
    except InterruptedError:
        continue
    if not r:
        continue
    for _ in range(256):
        try:
            data, peer = sock.recvfrom(65535)
        except BlockingIOError:
            break
        except OSError as e:  # ECONNREFUSED from an earlier send: not fatal
            if e.errno in (errno.ECONNREFUSED, errno.EINTR):
                continue
            raise
        try:
            sock.sendto(data, peer)
        except OSError:
            pass
if sock is not None:
    sock.close()
