#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Does a datagram ever reach another client's flow? (perf/faults.sh, scenario i)

    crossflow.py --pid QGATE_PID --quic 127.0.0.1:PORT   # QUIC service, any table size
    crossflow.py --pid QGATE_PID --udp 127.0.0.1:PORT    # UDP service, flows_per_core: 2

qgate collects a receive burst's datagrams toward backends and sends them when
the burst ends. A flow removed in between (a QUIC migration onto an address
that has a flow, an eviction from a full table) must not let its queued
datagram leave through whatever a new flow of the same burst opens next. To
put the datagrams in one burst, qgate is stopped (SIGSTOP) while they are
sent, then resumed:
  quic  A and B open connections (DCIDs X, Y); then, in one burst: B sends on
        Y (queued on B's flow), B sends on X (A's connection migrates to B's
        address, B's flow is removed), C opens a new connection
  udp   (flows_per_core 2) A and B have flows; then, in one burst: A sends
        (queued), B sends, C's first datagram evicts the oldest flow, A's
The datagrams carry their sender's name. Exit 1 when C receives one of
another client's datagrams; one JSON line on stdout says what each got.
"""
import argparse
import json
import os
import signal
import socket
import struct
import sys
import time


def initial(dcid, scid, text):
    h = bytes([0xC3]) + struct.pack(">I", 1) + bytes([len(dcid)]) + dcid + bytes([len(scid)]) + scid + b"\x00"
    body = text.encode().ljust(1200 - len(h) - 2, b".")
    return h + struct.pack(">H", 0x4000 | len(body)) + body


def text_of(d, quic):
    return (d[26:80] if quic else d).split(b".")[0].decode(errors="replace")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--quic")
    g.add_argument("--udp")
    a = ap.parse_args()
    quic = a.quic is not None
    host, port = (a.quic or a.udp).rsplit(":", 1)
    vip = (host, int(port))
    socks = {}
    for name in "ABC":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.5)
        socks[name] = s

    def send(name, text, dcid=None):
        s = socks[name]
        s.sendto(initial(dcid, b"s" + name.encode() * 7, text) if quic else text.encode(), vip)

    X, Y, Z = b"X" * 8, b"Y" * 8, b"Z" * 8
    send("A", "A-hello", X)
    socks["A"].recv(2048)
    send("B", "B-hello", Y)
    socks["B"].recv(2048)
    os.kill(a.pid, signal.SIGSTOP)
    try:
        time.sleep(0.05)
        if quic:
            send("B", "B-private", Y)
            send("B", "B-on-X", X)
            send("C", "C-hello", Z)
        else:
            send("A", "A-private")
            send("B", "B-again")
            send("C", "C-hello")
        time.sleep(0.05)
    finally:
        os.kill(a.pid, signal.SIGCONT)
    got = {}
    for name, s in socks.items():
        got[name] = []
        try:
            while True:
                got[name].append(text_of(s.recv(2048), quic))
        except OSError:
            pass
    leak = [t for t in got["C"] if not t.startswith("C-")]
    print(json.dumps({"variant": "quic" if quic else "udp", "received": got, "leaked_to_c": leak}))
    return 1 if leak else 0


if __name__ == "__main__":
    sys.exit(main())
