#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Helper of perf/cost-dpdk.sh.

  cost_dpdk.py pcap OUT PACKETS FLOWS [--size BYTES] [--order rr|shuffled]
                [--quic-lb ID:SID_LEN:NONCE_LEN[:KEYHEX] --server-ids HEX,HEX,...]
      Writes a pcap of PACKETS UDP/IPv4 datagrams to the VIP 10.1.0.100:4433,
      round robin over FLOWS clients (flow f: 10.1.<1 + a/250>.<1 + a%250> with
      a = f / 64512, port 1024 + f % 64512), correct IPv4 and UDP checksums.
      --order shuffled: every pass over the flows still sends each flow once,
      in another order per pass (an affine permutation), so a flow's neighbours
      in arrival order, and in an LRU list, are not the next datagram's flow.
      With --quic-lb each payload is a QUIC short header (0x41) whose DCID is
      the QUIC-LB CID of flow f (server ID server_ids[f % n], nonce = f), one
      CID per flow, then the same filler up to BYTES.

  cost_dpdk.py quic-cid ID:SID_LEN:NONCE_LEN[:KEYHEX] SERVER_ID_HEX NONCE_HEX
      Prints one QUIC-LB CID (to check the encoder against qgatectl cid decode).

  cost_dpdk.py backend-counts PACKETS FLOWS N [rr|shuffled]
      Prints how many datagrams each of N backends must receive when flow f
      names server_ids[f % N] (the QUIC modes' routing check).

  cost_dpdk.py worker-file CALLGRIND_OUT_PREFIX
      Prints the per-thread callgrind file of qgate's worker thread.

  cost_dpdk.py analyze RUNS.json OUT.json
      RUNS.json: {"qgate": path, "runs": [{"name", "file", "packets", "flows",
      "baseline": bool}, ...]}. Reads every worker-thread callgrind file, removes
      startup and idle polling with the two baseline runs (0 packets, idle for
      different times: cost = a + b * empty_polls), leaves out the timer work
      (qg_relay_expire, run once per millisecond of wall time), writes the
      result and prints a table. Runs may carry "mode" (udp, quic-lb1,
      quic-lb4): each QUIC case gets the inclusive cost of the QUIC routing
      steps and its ratio to the udp case of the same flow count.
      Profiles with cache events (callgrind --cache-sim=yes, --branch-sim=yes)
      get, per case and per packet, the same subtraction applied to every
      event: Ir, I1/D1/LL misses, mispredicts and the cycle estimate CEst
      (cache_per_packet, by scope; misses_per_packet_by_function), and a
      "cache_model" section: the simulated geometry, the steady state of two
      cases with the same mode and flows (the later packets only look flows
      up) and the modelled throughput ratio CEst(fewest flows) / CEst(case).
"""
import json
import os
import re
import struct
import sys

VIP = bytes([10, 1, 0, 100])
VPORT = 4433
PORTS_PER_IP = 65536 - 1024
DUT_MAC = bytes.fromhex("020000000101")
CLIENT_MAC = bytes.fromhex("020000000001")


def fold(s):
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def client_of(flow):
    a = flow // PORTS_PER_IP
    return bytes([10, 1, 1 + a // 250, 1 + a % 250]), 1024 + flow % PORTS_PER_IP


class QuicLb:
    """QUIC-LB CID encoder (draft-ietf-quic-load-balancers-21 Sec 5), as dataplane/quic/quic_lb.c."""

    def __init__(self, spec):
        parts = spec.split(":")
        if len(parts) not in (3, 4):
            sys.exit("cost_dpdk: --quic-lb wants ID:SID_LEN:NONCE_LEN[:KEYHEX]")
        self.id, self.sid_len, self.nonce_len = (int(x) for x in parts[:3])
        self.len = self.sid_len + self.nonce_len
        self.aes = None
        if len(parts) == 4:
            from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

            self.aes = Cipher(algorithms.AES(bytes.fromhex(parts[3])), modes.ECB()).encryptor()

    def _round(self, half, pass_, src, dst):
        blk = bytes(src[:half]) + bytes(14 - half) + bytes([self.len, pass_])
        out = self.aes.update(blk)
        for i in range(half):
            dst[i] ^= out[i]

    def encode(self, sid, nonce):
        plain = bytes(sid) + bytes(nonce)
        assert len(sid) == self.sid_len and len(nonce) == self.nonce_len
        n = self.len
        if self.aes is None:
            payload = plain
        elif n == 16:
            payload = self.aes.update(plain)
        else:
            # Four passes; for odd lengths the halves share the middle octet's nibbles.
            half, odd = (n + 1) // 2, n & 1
            left, right = bytearray(plain[:half]), bytearray(plain[n - half:])

            def clear_left():
                if odd:
                    left[half - 1] &= 0xF0

            def clear_right():
                if odd:
                    right[0] &= 0x0F

            clear_left()
            clear_right()
            self._round(half, 1, left, right)
            clear_right()
            self._round(half, 2, right, left)
            clear_left()
            self._round(half, 3, left, right)
            clear_right()
            self._round(half, 4, right, left)
            clear_left()
            out = bytearray(n)
            out[n - half:] = right
            out[: n // 2] = left[: n // 2]
            if odd:
                out[half - 1] = left[half - 1] | right[0]
            payload = bytes(out)
        return bytes([self.id << 5 | n]) + payload


def quic_payload(lb, server_ids, flow, filler):
    """Short header: first octet 0x41 (fixed bit, 2-byte packet number), the flow's CID, filler."""
    sid = server_ids[flow % len(server_ids)]
    nonce = (flow + 1).to_bytes(lb.nonce_len, "big")
    hdr = b"\x41" + lb.encode(sid, nonce)
    if len(hdr) + 2 > len(filler):
        sys.exit("cost_dpdk: --size too small for a short header with a %d-byte CID" % (len(hdr) - 1))
    return hdr + filler[len(hdr):]


def _is_prime(n):
    if n < 2:
        return False
    i = 2
    while i * i <= n:
        if n % i == 0:
            return False
        i += 1
    return True


def flow_order(flows, order):
    """flow_of(k): the flow of the k-th datagram. Shuffled: pass p sends flow (a_p * j + b_p) % flows
    for j = 0..flows-1, a_p a prime above flows (so coprime with it: a permutation)."""
    if order == "rr":
        return lambda k: k % flows
    mults = {}

    def mult(p):
        if p not in mults:
            a = flows + 1 + (flows * 0.6180339887 * (p + 1)) // 1
            a = int(a)
            while not _is_prime(a):
                a += 1
            mults[p] = a
        return mults[p]

    return lambda k: (mult(k // flows) * (k % flows) + 7919 * (k // flows)) % flows


def write_pcap(path, packets, flows, size, lb=None, server_ids=None, order="rr"):
    ulen = 8 + size
    tot = 20 + ulen
    filler = bytes((i * 7 + 3) & 0xFF for i in range(size))

    def psum_of(payload):
        padded = payload + (b"\0" if size & 1 else b"")
        return sum(padded[i] << 8 | padded[i + 1] for i in range(0, len(padded), 2))

    psum = psum_of(filler)
    vip_sum = (VIP[0] << 8 | VIP[1]) + (VIP[2] << 8 | VIP[3])
    eth = DUT_MAC + CLIENT_MAC + b"\x08\x00"
    frame_len = 14 + tot
    # Headers per flow are computed once (a flow's frames differ only in the pcap record).
    cache = {}
    flow_of = flow_order(flows, order)
    with open(path, "wb", buffering=1 << 22) as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for k in range(packets):
            fl = flow_of(k)
            hdr = cache.get(fl) if flows <= 100000 else None
            if hdr is None:
                payload, ps = filler, psum
                if lb is not None:
                    payload = quic_payload(lb, server_ids, fl, filler)
                    ps = psum_of(payload)
                sip, port = client_of(fl)
                ssum = (sip[0] << 8 | sip[1]) + (sip[2] << 8 | sip[3])
                ck = ~fold(0x4500 + tot + 0x4000 + (64 << 8 | 17) + ssum + vip_sum) & 0xFFFF
                iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, tot, 0, 0x4000, 64, 17, ck, sip, VIP)
                uck = ~fold(ssum + vip_sum + 17 + ulen + port + VPORT + ulen + ps) & 0xFFFF
                hdr = eth + iph + struct.pack("!HHHH", port, VPORT, ulen, uck or 0xFFFF) + payload
                if flows <= 100000:
                    cache[fl] = hdr
            f.write(struct.pack("<IIII", k // 1000000, k % 1000000, frame_len, frame_len))
            f.write(hdr)


def backend_counts(packets, flows, n, order="rr"):
    """Datagrams per backend when flow f goes to backend f % n."""
    counts = [0] * n
    if order != "rr":
        flow_of = flow_order(flows, order)
        for k in range(packets):
            counts[flow_of(k) % n] += 1
        return counts
    full, rest = divmod(packets, flows)
    for b in range(n):
        per_round = len(range(b, flows, n))
        counts[b] = full * per_round + len(range(b, rest, n))
    return counts


# ---- callgrind output -------------------------------------------------------------

NAME_RE = re.compile(r"^\((\d+)\)(?: (.*))?$")
# GCC's clones of a function (link-time optimisation, constant propagation, split-off cold
# parts): counted as the function itself, so a build with and without LTO reads the same.
CLONE_RE = re.compile(r"(\.(?:lto_priv|constprop|isra|part|cold)(?:\.\d+)?)+$")


class Profile:
    """One callgrind output file (positions: line; events: Ir, plus the cache and branch events of
    --cache-sim=yes / --branch-sim=yes when they were collected). Costs are kept per event; a
    view(event) has the attributes metrics() reads, for that event alone."""

    def __init__(self, path):
        self.path = path
        self.events = ["Ir"]
        self.desc = []  # "desc:" lines: the simulated cache geometry with --cache-sim
        self.total = None  # [cost per event]
        self.self_cost = {}  # (ob, fn) -> [cost per event]
        self.calls = {}  # (ob, fn) -> times called
        self.edges = {}  # ((ob, fn), (ob, fn)) -> [count, [inclusive cost per event]]
        self._parse()

    def _vec(self, parts):
        v = [int(x) for x in parts[1:1 + len(self.events)]]
        return v + [0] * (len(self.events) - len(v))

    def _parse(self):
        names = {"ob": {}, "fn": {}}
        ob = fn = cob = cfn = None
        pending_call = None
        n = len(self.events)
        with open(self.path, encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.rstrip("\n")
                if not line or line.startswith("#"):
                    continue
                c = line[0]
                if c.isdigit() or c in "+-*":
                    cost = self._vec(line.split())
                    if pending_call is not None:
                        key = ((ob, fn), (cob or ob, cfn))
                        e = self.edges.setdefault(key, [0, [0] * n])
                        e[0] += pending_call
                        e[1] = [a + b for a, b in zip(e[1], cost)]
                        self.calls[(cob or ob, cfn)] = self.calls.get((cob or ob, cfn), 0) + pending_call
                        pending_call = None
                        cob = None
                    else:
                        old = self.self_cost.get((ob, fn))
                        self.self_cost[(ob, fn)] = cost if old is None else [a + b for a, b in zip(old, cost)]
                    continue
                if line.startswith("desc:"):
                    self.desc.append(line.split(":", 1)[1].strip())
                    continue
                if line.startswith("events:"):
                    self.events = line.split(":", 1)[1].split()
                    n = len(self.events)
                    continue
                if line.startswith(("summary:", "totals:")):
                    v = self._vec(["-"] + line.split(":", 1)[1].split())
                    self.total = v if self.total is None or v[0] > self.total[0] else self.total
                    continue
                key, _, val = line.partition("=")
                if key in ("ob", "cob", "fn", "cfn"):
                    space = "ob" if key in ("ob", "cob") else "fn"
                    m = NAME_RE.match(val)
                    if m:
                        if m.group(2) is not None:
                            names[space][m.group(1)] = m.group(2)
                        name = names[space].get(m.group(1), val)
                    else:
                        name = val
                    if space == "fn":
                        name = CLONE_RE.sub("", name)
                    if key == "ob":
                        ob = name
                    elif key == "cob":
                        cob = name
                    elif key == "fn":
                        fn = name
                        cob = None
                    else:
                        cfn = name
                elif key == "calls":
                    pending_call = int(val.split()[0])
        if self.total is None:
            self.total = [0] * n

    def view(self, event):
        return ProfileView(self, self.events.index(event))


class ProfileView:
    """One event of a Profile, with the attributes of a single-event profile."""

    def __init__(self, p, k):
        self.total = p.total[k]
        self.self_cost = {key: v[k] for key, v in p.self_cost.items()}
        self.calls = p.calls
        self.edges = {key: [cnt, v[k]] for key, (cnt, v) in p.edges.items()}

    def func_names(self):
        return {fn for (_, fn) in self.self_cost} | {fn for (_, fn) in self.calls}

    def calls_to(self, name):
        return sum(n for (ob, fn), n in self.calls.items() if fn == name)

    def inclusive(self, name):
        """Self cost plus every call it makes (a function calling itself is not counted twice)."""
        s = sum(v for (ob, fn), v in self.self_cost.items() if fn == name)
        for (src, dst), (_, cost) in self.edges.items():
            if src[1] == name and dst[1] != name:
                s += cost
        return s


def is_pmd(ob):
    return ob is not None and "librte_net_pcap" in os.path.basename(ob)


def is_crypto(ob):
    return ob is not None and os.path.basename(ob).startswith("libcrypto")


# Steps of the QUIC path, inclusive (what they call, AES in libcrypto included), per packet.
QUIC_STEPS = (
    ("route", "qg_quic_route_client"),
    ("parse", "qg_quic_parse"),
    ("decode", "qg_quic_lb_ring_decode"),
    ("member_by_sid", "qg_svc_member_by_server_id"),
    ("cid_lookup", "qg_cid_lookup"),
    ("flow_lookup", "qg_flow_lookup_hashed"),
    ("new_flow", "qg_relay_new_flow_to"),
)


def metrics(p, qgate, all_funcs=False):
    """Scalar costs of one worker-thread profile, for the event of the view p (Ir, D1mr, ...).
    all_funcs: also the self cost of every function of any object ("fn:NAME [OBJECT]")."""
    qg = os.path.realpath(qgate)
    m = {"total": p.total}
    # The pcap PMD with everything it calls (libpcap, stdio, mbuf allocation): calls into the
    # PMD's object from outside it.
    m["pcap_pmd"] = sum(cost for (src, dst), (_, cost) in p.edges.items() if is_pmd(dst[0]) and not is_pmd(src[0]))
    m["qgate_self"] = sum(v for (ob, fn), v in p.self_cost.items() if ob and os.path.realpath(ob) == qg)
    for (ob, fn), v in p.self_cost.items():
        if ob and os.path.realpath(ob) == qg:
            m["self:" + fn] = m.get("self:" + fn, 0) + v
    # Timer work (qg_relay_expire, once per millisecond of wall time whatever the traffic) is left
    # out of every figure: under valgrind its share depends on how slow the run was.
    m["timer"] = p.inclusive("qg_relay_expire")
    timer_self = sum(m.pop("self:" + fn, 0) for fn in ("qg_relay_expire", "qg_flow_expire"))
    if all_funcs:
        for (ob, fn), v in p.self_cost.items():
            if fn in ("qg_relay_expire", "qg_flow_expire"):
                continue
            mine = ob and os.path.realpath(ob) == qg
            label = "fn:" + fn if mine else "fn:%s [%s]" % (fn, os.path.basename(ob or "?").split(".so")[0])
            m[label] = m.get(label, 0) + v
    m["total"] -= m["timer"]
    m["qgate_self"] -= timer_self
    m["other"] = m["total"] - m["pcap_pmd"] - m["qgate_self"]
    # AES of QUIC-LB decoding: libcrypto's own instructions (part of "other").
    m["crypto"] = sum(v for (ob, fn), v in p.self_cost.items() if is_crypto(ob))
    # What a real NIC would leave: everything but the pcap PMD (qgate, DPDK libs, libc, libcrypto).
    m["no_pmd"] = m["total"] - m["pcap_pmd"]
    for _, name in QUIC_STEPS:
        m["incl:" + name] = p.inclusive(name)
    for name in ("qg_relay_burst", "dpdk_rx_burst", "dpdk_flush", "dpdk_tx_backend", "egress",
                 "qg_relay_new_flow_to", "relay_flow_open", "dpdk_upstream_open"):
        m["incl:" + name] = p.inclusive(name)
    m["polls"] = p.calls_to("dpdk_rx_burst")
    m["bursts"] = p.calls_to("qg_relay_burst")
    # The compiler may inline qg_relay_new_flow_to into its UDP caller: count the insertions, and
    # take the cost of a new flow from relay_flow_open (insert, upstream/NAT port) when it does.
    m["new_flows"] = p.calls_to("qg_flow_insert")
    if not p.calls_to("qg_relay_new_flow_to"):
        m["incl:qg_relay_new_flow_to"] = m["incl:relay_flow_open"]
    m["empty_polls"] = m["polls"] - m["bursts"]
    return m


def worker_file(prefix):
    d = os.path.dirname(prefix) or "."
    base = os.path.basename(prefix)
    best = None
    for name in sorted(os.listdir(d)):
        if not name.startswith(base + "-"):
            continue
        path = os.path.join(d, name)
        with open(path, encoding="utf-8", errors="replace") as f:
            if any(re.match(r"^c?fn=\(\d+\) qg_worker_main$", line.rstrip("\n")) for line in f):
                best = path
                break
    if not best:
        sys.exit("cost_dpdk: no worker thread (qg_worker_main) in %s-*" % prefix)
    print(best)


# ---- cache simulation (--cache-sim) ----------------------------------------------

# Events of callgrind --cache-sim=yes (I1, D1, LL read and write misses) and --branch-sim=yes
# (conditional and indirect branches, and their mispredictions).
CACHE_EVENTS = ("Dr", "Dw", "I1mr", "D1mr", "D1mw", "ILmr", "DLmr", "DLmw", "Bc", "Bcm", "Bi", "Bim")
# Scopes of the cache figures: label -> metrics() key.
CACHE_SCOPES = (("total", "total"), ("qgate_own", "qgate_self"), ("pcap_pmd", "pcap_pmd"),
                ("total_without_pmd", "no_pmd"))
CEST_FORMULA = ("CEst = Ir + 10 x (I1mr + D1mr + D1mw) + 100 x (ILmr + DLmr + DLmw) + 10 x (Bcm + Bim): "
                "callgrind/KCachegrind's cycle estimate, a model (no prefetcher, no overlap of misses, "
                "no out-of-order execution), not a measurement")


def cache_derived(d):
    """Per-packet event dict (Ir, D1mr, ...) plus the sums and the cycle estimate."""
    g = lambda k: d.get(k, 0.0)  # noqa: E731
    out = {k: round(v, 3) for k, v in d.items()}
    out["I1_misses"] = round(g("I1mr"), 3)
    out["D1_misses"] = round(g("D1mr") + g("D1mw"), 3)
    out["LL_misses"] = round(g("ILmr") + g("DLmr") + g("DLmw"), 3)
    out["DL_misses"] = round(g("DLmr") + g("DLmw"), 3)
    if "Bc" in d:
        out["branch_mispredicts"] = round(g("Bcm") + g("Bim"), 3)
    out["cest"] = round(g("Ir") + 10 * (g("I1mr") + g("D1mr") + g("D1mw")) + 100 * (g("ILmr") + g("DLmr") + g("DLmw"))
                        + 10 * (g("Bcm") + g("Bim")), 1)
    return out


def cache_case(case, r, net):
    """Adds the cache figures of one case: per scope and per function (self), per packet."""
    n = case["packets"]
    evs = ["Ir"] + list(r["cache"])
    raw = {label: {ev: net(key, ev) for ev in evs} for label, key in CACHE_SCOPES}
    case["_cache_net"] = raw  # for the steady-state difference of two cases (dropped from the JSON)
    case["cache_per_packet"] = {label: cache_derived({ev: v / n for ev, v in d.items()}) for label, d in raw.items()}
    labels = set()
    for ev in evs:
        labels |= {k for k in (r["m"] if ev == "Ir" else r["cache"][ev]) if k.startswith("fn:")}
    case["_fn_net"] = {k[3:]: {ev: net(k, ev) for ev in evs} for k in labels}
    case["misses_per_packet_by_function"] = top_missers(case["_fn_net"], n)


def top_missers(fn_net, n):
    """Functions by the cycles their misses add in the model (CEst - Ir), self, per packet."""
    funcs = {}
    for fn, raw in fn_net.items():
        d = cache_derived({ev: v / n for ev, v in raw.items()})
        if d["D1_misses"] >= 0.01 or d["LL_misses"] >= 0.01:
            funcs[fn] = {x: d[x] for x in ("Ir", "D1_misses", "LL_misses", "DLmr", "DLmw", "cest")}
    return dict(sorted(funcs.items(), key=lambda kv: -(kv[1]["cest"] - kv[1]["Ir"]))[:25])


def cache_summary(result):
    """Steady state (two cases of one mode and flow count: the difference is lookups only) and the
    modelled throughput ratio CEst(fewest flows) / CEst(case), per mode."""
    cases = [c for c in result["cases"] if "cache_per_packet" in c]
    steady = []
    for c1 in cases:
        for c2 in cases:
            if (c1["mode"], c1["flows"]) != (c2["mode"], c2["flows"]) or c2["packets"] <= c1["packets"]:
                continue
            if any(c["packets"] > c1["packets"] and c["packets"] < c2["packets"] for c in cases
                   if (c["mode"], c["flows"]) == (c1["mode"], c1["flows"])):
                continue
            dp = c2["packets"] - c1["packets"]
            steady.append({
                "name": "%s-steady" % c2["name"],
                "mode": c1["mode"],
                "flows": c1["flows"],
                "from": [c1["name"], c2["name"]],
                "packets": dp,
                "flows_created": c2["flows_created"] - c1["flows_created"],
                "cache_per_packet": {label: cache_derived({ev: (c2["_cache_net"][label][ev] - v) / dp for ev, v in d.items()})
                                     for label, d in c1["_cache_net"].items()},
                "misses_per_packet_by_function": top_missers(
                    {fn: {ev: c2["_fn_net"].get(fn, {}).get(ev, 0) - c1["_fn_net"].get(fn, {}).get(ev, 0) for ev in d}
                     for fn, d in c2["_fn_net"].items()}, dp),
            })
    ratios = []
    for mode in sorted({c["mode"] for c in cases}):
        mine = [c for c in cases if c["mode"] == mode]
        base = min(mine, key=lambda c: (c["flows"], -c["packets"]))
        for c in mine + [s for s in steady if s["mode"] == mode]:
            if c is base or c["flows"] == base["flows"]:
                continue
            ratios.append({
                "mode": mode,
                "base": base["name"],
                "case": c["name"],
                "flows": [base["flows"], c["flows"]],
                "cest_ratio": {label: round(base["cache_per_packet"][label]["cest"] / c["cache_per_packet"][label]["cest"], 3)
                               for label in ("total", "total_without_pmd")},
            })
    result["cache_model"] = {"formula": CEST_FORMULA, "geometry": result.pop("_geometry", []),
                             "steady_state": steady, "throughput_ratio": ratios}


def analyze(runs_path, out_path):
    with open(runs_path) as f:
        spec = json.load(f)
    qgate = spec["qgate"]
    runs = spec["runs"]
    for r in runs:
        prof = Profile(r["file"])
        cache = [ev for ev in CACHE_EVENTS if ev in prof.events]
        r["m"] = metrics(prof.view("Ir"), qgate, all_funcs=bool(cache))
        r["cache"] = {ev: metrics(prof.view(ev), qgate, all_funcs=True) for ev in cache}
        r["geometry"] = [d for d in prof.desc if "cache:" in d]
    base = [r for r in runs if r.get("baseline")]
    if len(base) != 2:
        sys.exit("cost_dpdk: need exactly two baseline runs")
    b1, b2 = sorted(base, key=lambda r: r["m"]["empty_polls"])
    de = b2["m"]["empty_polls"] - b1["m"]["empty_polls"]
    if de <= 0:
        sys.exit("cost_dpdk: the baselines polled equally often; cannot separate idle polling")

    def mget(r, ev):
        return r["m"] if ev == "Ir" else r["cache"].get(ev, {})

    def model(key, ev="Ir"):
        x1, x2 = mget(b1, ev).get(key, 0), mget(b2, ev).get(key, 0)
        b = (x2 - x1) / de
        return x1 - b * b1["m"]["empty_polls"], b  # startup, cost per empty poll

    result = {
        "baseline": {
            "runs": [{"name": r["name"], "empty_polls": r["m"]["empty_polls"], "total_ir": r["m"]["total"]} for r in (b1, b2)],
            "intercept_ir": round(model("total")[0]),
            "ir_per_empty_poll": round(model("total")[1], 2),
        },
        "cases": [],
    }
    for r in runs:
        if r.get("baseline"):
            continue
        m, n = r["m"], r["packets"]
        keys = set(m) | set(b1["m"]) | set(b2["m"])

        def net(key, ev="Ir", r=r):
            a, b = model(key, ev)
            return mget(r, ev).get(key, 0) - a - b * m["empty_polls"]

        per = lambda v: round(v / n, 1)  # noqa: E731
        funcs = {}
        for k in keys:
            if k.startswith("self:"):
                v = net(k)
                if abs(v) / n >= 0.05:
                    funcs[k[5:]] = per(v)
        case = {
            "name": r["name"],
            "mode": r.get("mode", "udp"),
            "packets": n,
            "flows": r["flows"],
            "flows_created": m["new_flows"],
            "bursts": m["bursts"],
            "empty_polls": m["empty_polls"],
            "worker_total_ir": m["total"],
            "timer_ir_excluded": m["timer"],
            "ir_per_packet": {
                "total": per(net("total")),
                "qgate_own": per(net("qgate_self")),
                "pcap_pmd": per(net("pcap_pmd")),
                "other_libs": per(net("other")),
                "libcrypto": per(net("crypto")),
                "total_without_pmd": per(net("no_pmd")),
                "rx_path_incl": per(net("incl:dpdk_rx_burst")),
                "relay_incl": per(m["incl:qg_relay_burst"]),
                "tx_flush_incl": per(net("incl:dpdk_flush")),
            },
            "ir_per_new_flow": round(m["incl:qg_relay_new_flow_to"] / m["new_flows"], 1) if m["new_flows"] else None,
            "qgate_functions_self_per_packet": dict(sorted(funcs.items(), key=lambda kv: -kv[1])),
        }
        if r["cache"]:
            cache_case(case, r, net)
        if case["mode"] != "udp":
            case["quic_steps_incl_per_packet"] = {k: per(m["incl:" + fn]) for k, fn in QUIC_STEPS}
        result["cases"].append(case)
    # QUIC / UDP at the same flow count.
    udp = {c["flows"]: c for c in result["cases"] if c["mode"] == "udp"}
    for c in result["cases"]:
        u = udp.get(c["flows"])
        if c["mode"] == "udp" or not u:
            continue
        c["ratio_to_udp"] = {
            k: round(c["ir_per_packet"][k] / u["ir_per_packet"][k], 3) if u["ir_per_packet"][k] else None
            for k in ("qgate_own", "total_without_pmd", "total")
        }
    if any("cache_per_packet" in c for c in result["cases"]):
        result["_geometry"] = next((r["geometry"] for r in runs if r["geometry"]), [])
        cache_summary(result)
    for c in result["cases"]:
        c.pop("_cache_net", None)
        c.pop("_fn_net", None)
    with open(out_path, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    return result


def print_table(result):
    cases = result["cases"]
    print("Instructions (Ir) per packet, qgate worker thread, startup and idle polling removed")
    print("(baselines: %.1f Ir per empty poll, fixed part %d Ir; timer work excluded)" % (result["baseline"]["ir_per_empty_poll"], result["baseline"]["intercept_ir"]))
    print()
    hdr = "%-34s" % "" + "".join("%20s" % c["name"] for c in cases)
    print(hdr)
    print("-" * len(hdr))

    def row(label, get):
        print("%-34s" % label + "".join("%20s" % get(c) for c in cases))

    row("packets", lambda c: c["packets"])
    row("flows (created)", lambda c: "%d (%d)" % (c["flows"], c["flows_created"]))
    for k, label in (("total", "total"), ("qgate_own", "  qgate's own functions (self)"),
                     ("pcap_pmd", "  pcap PMD (+ libpcap, stdio)"), ("other_libs", "  other (DPDK libs, libc, ld.so)"),
                     ("libcrypto", "    of which libcrypto (AES)"), ("total_without_pmd", "total without the pcap PMD"),
                     ("rx_path_incl", "rx: dpdk_rx_burst incl."), ("relay_incl", "relay: qg_relay_burst incl."),
                     ("tx_flush_incl", "tx: dpdk_flush incl.")):
        row(label, lambda c, k=k: c["ir_per_packet"][k])
    row("per new flow: qg_relay_new_flow_to", lambda c: c["ir_per_new_flow"])
    if any(c["mode"] != "udp" for c in cases):
        print()
        print("QUIC steps, inclusive Ir per packet (all packets):")
        for k, fn in QUIC_STEPS:
            row("  %s (%s)" % (k, fn[:18]), lambda c, k=k: c.get("quic_steps_incl_per_packet", {}).get(k, "-"))
        print("QUIC / UDP at the same flow count:")
        for k in ("qgate_own", "total_without_pmd", "total"):
            row("  " + k, lambda c, k=k: c.get("ratio_to_udp", {}).get(k, "-"))
    print()
    names = []
    for c in cases:
        for fn in c["qgate_functions_self_per_packet"]:
            if fn not in names:
                names.append(fn)
    print("qgate functions, self Ir per packet:")
    for fn in names[:20]:
        row("  " + fn[:32], lambda c, fn=fn: c["qgate_functions_self_per_packet"].get(fn, "-"))
    if "cache_model" in result:
        print_cache(result)


def print_cache(result):
    cm = result["cache_model"]
    cols = [c for c in result["cases"] if "cache_per_packet" in c] + cm["steady_state"]
    print()
    print("Simulated caches (callgrind --cache-sim): " + "; ".join(cm["geometry"]))
    print(cm["formula"])
    print()
    w = max([20] + [len(c["name"]) + 2 for c in cols])
    hdr = "%-34s" % "per packet" + "".join("%*s" % (w, c["name"]) for c in cols)
    print(hdr)
    print("-" * len(hdr))

    def row(label, get):
        print("%-34s" % label + "".join("%*s" % (w, get(c)) for c in cols))

    row("packets (flows created)", lambda c: "%d (%d)" % (c["packets"], c["flows_created"]))
    for scope in ("total", "total_without_pmd", "qgate_own", "pcap_pmd"):
        print(scope + ":")
        for k, label in (("Ir", "Ir"), ("D1_misses", "D1 misses (D1mr + D1mw)"),
                         ("LL_misses", "LL misses (ILmr + DLmr + DLmw)"), ("I1_misses", "I1 misses"),
                         ("branch_mispredicts", "branch mispredicts"), ("cest", "CEst (cycles, model)")):
            row("  " + label, lambda c, k=k, scope=scope: c["cache_per_packet"][scope].get(k, "-"))
    if cm["throughput_ratio"]:
        print()
        print("Modelled throughput ratio CEst(base) / CEst(case), per packet:")
        for t in cm["throughput_ratio"]:
            print("  %-8s %s / %s: total %.3f, without the pcap PMD %.3f" % (
                t["mode"], t["case"], t["base"], t["cest_ratio"]["total"], t["cest_ratio"]["total_without_pmd"]))
    print()
    names = []
    for c in cols:
        for fn in c.get("misses_per_packet_by_function", {}):
            if fn not in names:
                names.append(fn)
    print("Misses per packet by function (self; D1 / LL):")
    for fn in names[:20]:
        row("  " + fn[:32], lambda c, fn=fn: "%s / %s" % (
            c.get("misses_per_packet_by_function", {}).get(fn, {}).get("D1_misses", "-"),
            c.get("misses_per_packet_by_function", {}).get(fn, {}).get("LL_misses", "-")))


def main(argv):
    if len(argv) >= 5 and argv[1] == "pcap":
        opts = dict(zip(argv[5::2], argv[6::2]))
        if len(argv[5:]) % 2 or set(opts) - {"--size", "--quic-lb", "--server-ids", "--order"}:
            sys.exit(__doc__)
        if opts.get("--order", "rr") not in ("rr", "shuffled"):
            sys.exit("cost_dpdk: --order is rr or shuffled")
        lb = QuicLb(opts["--quic-lb"]) if "--quic-lb" in opts else None
        sids = [bytes.fromhex(x) for x in opts.get("--server-ids", "").split(",") if x]
        if lb and (not sids or any(len(s) != lb.sid_len for s in sids)):
            sys.exit("cost_dpdk: --quic-lb needs --server-ids of SID_LEN bytes each")
        write_pcap(argv[2], int(argv[3]), int(argv[4]), int(opts.get("--size", 64)), lb, sids,
                   opts.get("--order", "rr"))
    elif len(argv) == 5 and argv[1] == "quic-cid":
        print(QuicLb(argv[2]).encode(bytes.fromhex(argv[3]), bytes.fromhex(argv[4])).hex())
    elif len(argv) in (5, 6) and argv[1] == "backend-counts":
        order = argv[5] if len(argv) == 6 else "rr"
        print(" ".join(str(c) for c in backend_counts(int(argv[2]), int(argv[3]), int(argv[4]), order)))
    elif len(argv) == 3 and argv[1] == "worker-file":
        worker_file(argv[2])
    elif len(argv) == 4 and argv[1] == "analyze":
        print_table(analyze(argv[2], argv[3]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
