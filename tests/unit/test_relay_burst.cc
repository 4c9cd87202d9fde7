// SPDX-License-Identifier: BSD-3-Clause
// A flow removed in the middle of a burst while one of its datagrams waits in
// the burst's to_backend list (an eviction from a full table, a QUIC
// migration onto an address that has a flow): that datagram must leave on the
// upstream it was queued for, never on one a later datagram of the same burst
// opened for a new flow on the freed index. The mock I/O reuses freed upstream
// indices last-in first-out, as the socket backends' pool does, and tells
// every socket it opens apart by a generation number. perf/faults.sh scenario
// i checks the same end to end.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

extern "C" {
#include "dataplane/pipeline/relay.h"
#include "qgate/addr.h"
#include "qgate/config.h"
#include "qgate/counters.h"
}

namespace
{

struct PoolIo {
	std::vector<uint32_t> gen = std::vector<uint32_t>(64, 0); // per index: its socket now
	std::vector<bool> open = std::vector<bool>(64, false);
	std::vector<uint32_t> freed; // LIFO, like the upstream pool
	uint32_t next = 0, gens = 0;
	struct Sent {
		std::string bytes;
		uint32_t up, gen;
		bool open;
	};
	std::vector<Sent> to_backend;
};

PoolIo *Io(qg_io *io)
{
	return reinterpret_cast<PoolIo *>(io);
}

int Open(qg_io *io, uint32_t, const qg_addr *, uint32_t *up)
{
	PoolIo *m = Io(io);
	if (!m->freed.empty()) {
		*up = m->freed.back();
		m->freed.pop_back();
	} else {
		*up = m->next++;
	}
	m->gen[*up] = ++m->gens;
	m->open[*up] = true;
	return 0;
}

void Close(qg_io *io, uint32_t up, int)
{
	Io(io)->open[up] = false;
	Io(io)->freed.push_back(up);
}

void TxBackend(qg_io *io, qg_pkt *p, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		Io(io)->to_backend.push_back({ std::string((const char *)p[i].data, p[i].len), p[i].upstream,
					       Io(io)->gen[p[i].upstream],
					       (bool)Io(io)->open[p[i].upstream] });
}

void TxClient(qg_io *, qg_pkt *, unsigned)
{
}

void Release(qg_io *, qg_pkt *, unsigned)
{
}

void Flush(qg_io *)
{
}

qg_addr Addr(const char *text)
{
	qg_addr a;
	EXPECT_EQ(qg_addr_parse(text, &a), 0) << text;
	return a;
}

struct Rig {
	PoolIo io;
	qg_ctr_block ctr{};
	qg_config_backend be[2]{};
	qg_config_service svc{};
	qg_config cfg{};
	qg_io_ops ops{};
	qg_svc_table *table = nullptr;
	qg_relay *relay = nullptr;
	std::vector<std::string> keep; // datagram bytes, alive until the burst is sent

	Rig(bool quic, uint32_t flows)
	{
		be[0].addr = Addr("10.0.0.1:4433");
		be[1].addr = Addr("10.0.0.2:4433");
		be[0].weight = be[1].weight = 1;
		snprintf(svc.name, sizeof(svc.name), "s");
		svc.listen = Addr("127.0.0.1:443");
		svc.protocol = quic ? QG_CONFIG_PROTO_QUIC : QG_CONFIG_PROTO_UDP;
		svc.policy = QG_CONFIG_POLICY_MAGLEV;
		svc.idle_timeout_ms = 30000;
		svc.n_backends = 2;
		svc.backends = be;
		cfg.n_services = 1;
		cfg.services = &svc;
		EXPECT_EQ(qg_svc_table_build(&cfg, 1, &table), 0);
		ops.name = "pool-mock";
		ops.tx_backend = TxBackend;
		ops.tx_client = TxClient;
		ops.release = Release;
		ops.flush = Flush;
		ops.upstream_open = Open;
		ops.upstream_close = Close;
		qg_relay_params p{};
		p.ops = &ops;
		p.io = reinterpret_cast<qg_io *>(&io);
		p.ctr = &ctr;
		p.table = table;
		p.flows = flows;
		p.max_upstreams = 64;
		p.burst = 8;
		p.seed = 7;
		EXPECT_EQ(qg_relay_create(&p, &relay), 0);
	}
	~Rig()
	{
		qg_relay_destroy(relay);
		qg_svc_table_free(table);
	}
	Rig(const Rig &) = delete;
	Rig &operator=(const Rig &) = delete;

	// One burst of client datagrams {bytes, from}.
	void Burst(const std::vector<std::pair<std::string, const char *>> &dgrams, uint32_t now)
	{
		std::vector<qg_pkt> pkts(dgrams.size());
		keep.clear();
		keep.reserve(dgrams.size());
		for (size_t i = 0; i < dgrams.size(); i++) {
			keep.push_back(dgrams[i].first);
			pkts[i].data = (uint8_t *)&keep[i][0];
			pkts[i].len = (uint32_t)keep[i].size();
			pkts[i].dir = QG_PKT_FROM_CLIENT;
			pkts[i].svc = 0;
			pkts[i].peer = Addr(dgrams[i].second);
		}
		qg_relay_burst(relay, pkts.data(), (unsigned)pkts.size(), now);
	}
	// The upstream and its socket's generation a datagram containing text left on.
	const PoolIo::Sent *SentWith(const std::string &text) const
	{
		for (const auto &s : io.to_backend)
			if (s.bytes.find(text) != std::string::npos)
				return &s;
		return nullptr;
	}
};

// A QUIC v1 Initial-type long header (no token), the text in its payload.
std::string Initial(char dcid, char scid, const std::string &text)
{
	std::string d("\xc3\x00\x00\x00\x01", 5);
	d += '\x08' + std::string(8, dcid) + '\x08' + std::string(8, scid) + '\x00';
	std::string body = std::string(4, '\0') + text;
	d += (char)(0x40 | (body.size() >> 8));
	d += (char)(body.size() & 0xff);
	return d + body;
}

TEST(RelayBurst, EvictedFlowsQueuedDatagramLeavesOnItsOwnUpstream)
{
	Rig rig(false, 2); // a table of two flows
	rig.Burst({ { "A-hello", "192.0.2.1:1000" } }, 1);
	rig.Burst({ { "B-hello", "192.0.2.2:2000" } }, 2);
	const PoolIo::Sent *a = rig.SentWith("A-hello");
	ASSERT_NE(a, nullptr);
	uint32_t a_up = a->up, a_gen = a->gen;
	// One burst: A's datagram is queued, B touches its flow, C's first datagram evicts the
	// oldest flow, A's, whose upstream index C's new flow would take.
	rig.Burst({ { "A-private", "192.0.2.1:1000" },
		    { "B-again", "192.0.2.2:2000" },
		    { "C-hello", "192.0.2.3:3000" } },
		  3);
	EXPECT_EQ(rig.ctr.v[QG_CTR_FLOW_EVICTED], 1u);
	const PoolIo::Sent *ap = rig.SentWith("A-private"), *c = rig.SentWith("C-hello");
	ASSERT_NE(ap, nullptr);
	ASSERT_NE(c, nullptr);
	EXPECT_EQ(ap->up, a_up);
	EXPECT_EQ(ap->gen, a_gen) << "A's datagram left on a socket opened after it was queued (C's)";
	EXPECT_TRUE(ap->open);
	EXPECT_NE(c->up, a_up) << "C's flow took A's upstream within the burst that still used it";
	// The next burst closes what the last one removed.
	rig.Burst({ { "C-again", "192.0.2.3:3000" } }, 4);
	EXPECT_FALSE(rig.io.open[a_up]);
}

TEST(RelayBurst, AnEvictedIdleFlowsUpstreamServesTheNewFlowAtOnce)
{
	// No datagram of the burst waits for the evicted flow: its upstream is free at once, so a
	// table and a pool of the same size keep admitting (no upstream_exhausted).
	Rig rig(false, 2);
	rig.Burst({ { "A-hello", "192.0.2.1:1000" } }, 1);
	rig.Burst({ { "B-hello", "192.0.2.2:2000" } }, 2);
	uint32_t a_up = rig.SentWith("A-hello")->up;
	rig.Burst({ { "C-hello", "192.0.2.3:3000" }, { "D-hello", "192.0.2.4:4000" } }, 3);
	EXPECT_EQ(rig.ctr.v[QG_CTR_FLOW_EVICTED], 2u);
	EXPECT_EQ(rig.ctr.v[QG_CTR_DROP_UPSTREAM_EXHAUSTED], 0u);
	EXPECT_EQ(rig.SentWith("C-hello")->up, a_up);
	EXPECT_EQ(rig.io.next, 2u) << "C and D must reuse the indices of the flows they evicted";
}

TEST(RelayBurst, FlowRemovedByAQuicMigrationKeepsItsQueuedDatagram)
{
	Rig rig(true, 64);
	rig.Burst({ { Initial('X', 'a', "A-hello"), "192.0.2.1:1000" } }, 1);
	rig.Burst({ { Initial('Y', 'b', "B-hello"), "192.0.2.2:2000" } }, 2);
	const PoolIo::Sent *b = rig.SentWith("B-hello");
	ASSERT_NE(b, nullptr);
	uint32_t b_up = b->up, b_gen = b->gen;
	// One burst: B sends on its connection (queued on B's flow), then on A's CID: A's
	// connection migrates to B's address and B's flow gives way; C opens a connection.
	rig.Burst({ { Initial('Y', 'b', "B-private"), "192.0.2.2:2000" },
		    { Initial('X', 'b', "B-on-X"), "192.0.2.2:2000" },
		    { Initial('Z', 'c', "C-hello"), "192.0.2.3:3000" } },
		  3);
	EXPECT_EQ(rig.ctr.v[QG_CTR_QUIC_MIGRATED], 1u);
	const PoolIo::Sent *bp = rig.SentWith("B-private"), *c = rig.SentWith("C-hello");
	ASSERT_NE(bp, nullptr);
	ASSERT_NE(c, nullptr);
	EXPECT_EQ(bp->up, b_up);
	EXPECT_EQ(bp->gen, b_gen) << "B's datagram left on a socket opened after it was queued (C's)";
	EXPECT_NE(c->up, b_up);
}

// A worker behind its receive queue (worker.c: full polls for 100 ms) refuses
// new flows before any flow-table or upstream work, counted as overload, and
// still relays the flows it has; once it catches up, new flows are admitted.
TEST(RelayBurst, BehindWorkerRefusesNewFlowsAndRelaysEstablishedOnes)
{
	Rig rig(false, 16);
	rig.Burst({ { "A-hello", "192.0.2.1:1000" } }, 1);
	ASSERT_NE(rig.SentWith("A-hello"), nullptr);
	uint32_t opened = rig.io.gens;
	qg_relay_set_behind(rig.relay, 1);
	rig.Burst({ { "B-hello", "192.0.2.2:2000" },
		    { "A-again", "192.0.2.1:1000" },
		    { "C-hello", "192.0.2.3:3000" } },
		  2);
	EXPECT_NE(rig.SentWith("A-again"), nullptr) << "an established flow is relayed while behind";
	EXPECT_EQ(rig.SentWith("B-hello"), nullptr);
	EXPECT_EQ(rig.SentWith("C-hello"), nullptr);
	EXPECT_EQ(rig.ctr.v[QG_CTR_DROP_OVERLOAD], 2u);
	EXPECT_EQ(rig.ctr.v[QG_CTR_FLOW_CREATED], 1u);
	EXPECT_EQ(rig.io.gens, opened) << "no upstream opened for a refused flow";
	qg_relay_set_behind(rig.relay, 0);
	rig.Burst({ { "B-again", "192.0.2.2:2000" } }, 3);
	EXPECT_NE(rig.SentWith("B-again"), nullptr);
	EXPECT_EQ(rig.ctr.v[QG_CTR_FLOW_CREATED], 2u);
	EXPECT_EQ(rig.ctr.v[QG_CTR_DROP_OVERLOAD], 2u);
}

} // namespace
