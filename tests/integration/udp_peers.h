// SPDX-License-Identifier: BSD-3-Clause
// Real UDP peers for integration tests: echo backends that record which
// client ids they served, and clients with their own source ports.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

extern "C" {
#include "qgate/addr.h"
}

namespace qgt
{

// Parse "ip:port" into a qg_addr, aborting the test binary on bad input.
qg_addr Addr(const std::string &text);
std::string Str(const qg_addr &a);

// A free UDP port on host ("127.0.0.1" or "::1") right now.
uint16_t FreePort(const char *host = "127.0.0.1");

// A free TCP port on 127.0.0.1 right now.
uint16_t FreeTcpPort();

// GET path from 127.0.0.1:port over a plain HTTP/1.0 connection (MHD answers as HTTP/1.1, which 1.0
// clients accept); the whole response (headers and body), "" on failure. 5 s timeouts.
std::string HttpGet(uint16_t port, const std::string &path);

// 1 when ::1 can be bound here.
bool Ipv6Available();

// Echo backend on loopback: replies with the exact payload. A payload of at
// least 4 bytes starts with the client id (little endian) it records.
class EchoServer
{
      public:
	explicit EchoServer(const char *host = "127.0.0.1");
	~EchoServer();
	void Stop(); // closes the socket: later datagrams get ICMP port unreachable
	qg_addr addr() const
	{
		return addr_;
	}
	std::string addr_str() const
	{
		return Str(addr_);
	}
	uint64_t datagrams() const
	{
		return datagrams_.load();
	}
	uint64_t bytes() const // payload bytes received (and echoed)
	{
		return bytes_.load();
	}
	std::map<uint32_t, uint64_t> clients(); // id -> datagrams
	bool served(uint32_t id);

      private:
	void Run();
	int fd_ = -1;
	qg_addr addr_{};
	std::atomic<bool> stop_{ false };
	std::atomic<uint64_t> datagrams_{ 0 };
	std::atomic<uint64_t> bytes_{ 0 };
	std::mutex mu_;
	std::map<uint32_t, uint64_t> clients_;
	std::thread thread_;
};

// A UDP client with its own ephemeral port.
class Client
{
      public:
	explicit Client(const char *host = "127.0.0.1");
	~Client();
	Client(const Client &) = delete;
	Client &operator=(const Client &) = delete;
	bool Send(const qg_addr &to, const void *data, size_t len);
	// Receive one datagram within timeout_ms; returns its length or -1.
	ssize_t Recv(void *buf, size_t len, int timeout_ms);
	int fd() const
	{
		return fd_;
	}

      private:
	int fd_ = -1;
};

// Send one datagram and wait for the identical echo (retrying up to tries
// times on timeout). Returns true when the reply matched.
bool RoundTrip(Client &c, const qg_addr &to, const std::vector<uint8_t> &payload, int timeout_ms = 500,
	       int tries = 3);

// Payload of n bytes for client id and sequence seq (id in the first 4 bytes).
std::vector<uint8_t> Payload(uint32_t id, uint32_t seq, size_t n);

} // namespace qgt
