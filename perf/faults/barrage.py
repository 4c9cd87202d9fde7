#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Malformed-datagram barrage for perf/faults.sh.

    barrage.py --target 127.0.0.1:4433 [--target 127.0.0.1:4434 ...] [--rounds N]
               [--rate PPS] [--sockets K] [--seed S]

Sends the same set of hostile datagrams to every target, --rounds times,
paced at --rate datagrams/s in total, from K client sockets used in turn
(each socket is one source port, i.e. one flow on a UDP service). Replies are
read and thrown away. Prints one JSON line on stdout: datagrams sent per
category and in total, and the send errors.

Categories (per round, per target):
  random        random bytes, random lengths 1..1500
  truncated     every prefix (1..header length + 4) of a valid v1 Initial's header,
                and of a short header; Initials whose token length or Length field
                points past the end of the datagram
  cid_len       long headers with every DCID length 0..255 and every SCID length
                0..255, padded to 1200 bytes and unpadded (the bytes are there or not)
  zero_len      empty datagrams
  max_len       65507-byte datagrams (the largest UDP payload over IPv4)
  versions      long headers of wrong versions (0 = a client VN, 2, v2, drafts,
                reserved 0x?a?a?a?a, 0xffffffff, random), 1200 bytes and 100 bytes
  types         0-RTT, Handshake and Retry packets from a client, Initials with
                8-byte varints, fixed bit cleared, every first byte value alone
  short         short headers with random DCIDs of random lengths
"""
import argparse
import json
import os
import random
import select
import socket
import struct
import sys
import time


def varint(v, n=None):
    if n is None:
        n = 1 if v < 64 else 2 if v < 16384 else 4 if v < 2**30 else 8
    prefix = {1: 0, 2: 0x40, 4: 0x80, 8: 0xC0}[n]
    b = v.to_bytes(n, "big")
    return bytes([b[0] | prefix]) + b[1:]


def long_header(first, version, dcid, scid, token=b"", length=None, pn=b"\x00", pad_to=0, lnlen=2, rnd=os.urandom):
    hdr = bytes([first]) + struct.pack(">I", version)
    hdr += bytes([len(dcid) & 0xFF]) + dcid + bytes([len(scid) & 0xFF]) + scid
    if (first & 0x30) == 0x00:  # Initial carries a token
        hdr += varint(len(token)) + token
    body_len = max(len(pn), pad_to - len(hdr) - lnlen) if pad_to else len(pn) + 16
    if length is None:
        length = body_len
    return hdr + varint(length, lnlen) + (pn + rnd(body_len - len(pn)) if body_len > len(pn) else pn)


def build(rng):
    cats = {}
    dc, sc = rng.randbytes(8), rng.randbytes(8)
    valid_initial = long_header(0xC3, 1, dc, sc, pn=b"\x00\x00\x00\x01", pad_to=1200)
    hdr_len = 1 + 4 + 1 + 8 + 1 + 8 + 1 + 2 + 4

    cats["random"] = [rng.randbytes(rng.randint(1, 1500)) for _ in range(400)]

    t = [valid_initial[:n] for n in range(1, hdr_len + 5)]
    short = b"\x40" + dc + b"\x00\x01"
    t += [short[:n] for n in range(1, len(short) + 1)]
    # token length 1000 with 20 bytes of token present; Length 1500 in a 1200-byte datagram
    t.append(bytes([0xC3]) + struct.pack(">I", 1) + b"\x08" + dc + b"\x08" + sc + varint(1000) + rng.randbytes(20))
    t.append(long_header(0xC3, 1, dc, sc, length=1500, pn=b"\x00\x00\x00\x02", pad_to=1200))
    t.append(long_header(0xC3, 1, dc, sc, length=2**62 - 1, pn=b"\x00\x00\x00\x03", pad_to=1200, lnlen=8))
    cats["truncated"] = t

    c = []
    for n in range(256):
        cid = rng.randbytes(n)
        c.append(long_header(0xC3, 1, cid, sc, pad_to=1200))  # DCID length n
        c.append(long_header(0xC3, 1, dc, cid, pad_to=1200))  # SCID length n
        c.append(bytes([0xC3]) + struct.pack(">I", 1) + bytes([n]) + rng.randbytes(min(n, 40)))  # length byte lies
    cats["cid_len"] = c

    cats["zero_len"] = [b""] * 20
    cats["max_len"] = [rng.randbytes(65507), long_header(0xC3, 1, dc, sc, pad_to=65507, lnlen=4)]

    v = []
    for ver in (0x00000000, 0x00000002, 0x6B3343CF, 0xFF00001D, 0xFF000020, 0x1A2A3A4A, 0xFAFAFAFA,
                0xFFFFFFFF, rng.getrandbits(32)):
        v.append(long_header(0xC3, ver, rng.randbytes(8), sc, pad_to=1200))
        v.append(long_header(0xC3, ver, rng.randbytes(8), sc, pad_to=100))
    cats["versions"] = v

    ty = []
    for first in (0xD3, 0xE3, 0xF3):  # 0-RTT, Handshake, Retry
        ty.append(long_header(first, 1, rng.randbytes(8), sc, pad_to=1200))
        ty.append(long_header(first, 1, rng.randbytes(8), sc, pad_to=60))
    ty.append(long_header(0xC3, 1, rng.randbytes(8), sc, pad_to=1200, lnlen=8))
    ty.append(long_header(0x83, 1, rng.randbytes(8), sc, pad_to=1200))  # fixed bit clear
    ty += [bytes([b]) for b in range(256)]
    cats["types"] = ty

    cats["short"] = [bytes([0x40 | rng.getrandbits(6)]) + rng.randbytes(rng.randint(0, 40)) for _ in range(200)]
    return cats


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", action="append", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--rate", type=float, default=10000)
    ap.add_argument("--sockets", type=int, default=32)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    targets = []
    for t in a.target:
        h, p = t.rsplit(":", 1)
        targets.append((h, int(p)))
    socks = []
    for _ in range(a.sockets):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        s.setblocking(False)
        socks.append(s)
    sent = {}
    errors = 0
    n = 0
    t0 = time.monotonic()
    for r in range(a.rounds):
        cats = build(rng)
        for name, dgrams in cats.items():
            for d in dgrams:
                for tgt in targets:
                    # pace: datagram n leaves at t0 + n / rate
                    due = t0 + n / a.rate
                    now = time.monotonic()
                    if due > now:
                        time.sleep(due - now)
                    s = socks[n % len(socks)]
                    try:
                        s.sendto(d, tgt)
                        sent[name] = sent.get(name, 0) + 1
                    except OSError:
                        errors += 1
                    n += 1
                    if n % 256 == 0:  # throw replies away so nothing backs up
                        for rs in select.select(socks, [], [], 0)[0]:
                            try:
                                while True:
                                    rs.recv(65535)
                            except OSError:
                                pass
    out = {"targets": a.target, "rounds": a.rounds, "sent": sent, "total": sum(sent.values()),
           "send_errors": errors, "duration_s": round(time.monotonic() - t0, 3)}
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
