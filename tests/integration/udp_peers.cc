// SPDX-License-Identifier: BSD-3-Clause
#include "integration/udp_peers.h"

#include <arpa/inet.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace qgt
{

qg_addr Addr(const std::string &text)
{
	qg_addr a;
	if (qg_addr_parse(text.c_str(), &a) != 0) {
		fprintf(stderr, "bad address in test: %s\n", text.c_str());
		abort();
	}
	return a;
}

std::string Str(const qg_addr &a)
{
	char buf[QG_ADDR_STRLEN];
	return qg_addr_format(&a, buf, sizeof(buf));
}

static int BindLoopback(const char *host, qg_addr *bound)
{
	bool v6 = strchr(host, ':') != nullptr;
	std::string text = v6 ? std::string("[") + host + "]:0" : std::string(host) + ":0";
	qg_addr a = Addr(text);
	sockaddr_storage ss;
	socklen_t len = qg_addr_to_sockaddr(&a, &ss);
	int fd = socket(a.family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int big = 8 << 20;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
	if (bind(fd, reinterpret_cast<sockaddr *>(&ss), len) < 0) {
		close(fd);
		return -1;
	}
	len = sizeof(ss);
	getsockname(fd, reinterpret_cast<sockaddr *>(&ss), &len);
	qg_addr_from_sockaddr(reinterpret_cast<sockaddr *>(&ss), bound);
	return fd;
}

uint16_t FreePort(const char *host)
{
	qg_addr a{};
	int fd = BindLoopback(host, &a);
	if (fd < 0)
		return 0;
	close(fd);
	return ntohs(a.port);
}

uint16_t FreeTcpPort()
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	sockaddr_in sin{};
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(sin);
	uint16_t port = 0;
	if (bind(fd, (sockaddr *)&sin, sizeof(sin)) == 0 && getsockname(fd, (sockaddr *)&sin, &len) == 0)
		port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

std::string HttpGet(uint16_t port, const std::string &path)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	timeval tv{ 5, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	sockaddr_in sin{};
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	std::string resp;
	if (connect(fd, (sockaddr *)&sin, sizeof(sin)) == 0) {
		std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
		if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) == (ssize_t)req.size()) {
			char buf[8192];
			ssize_t n;
			while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
				resp.append(buf, (size_t)n);
		}
	}
	close(fd);
	return resp;
}

bool Ipv6Available()
{
	qg_addr a{};
	int fd = BindLoopback("::1", &a);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

EchoServer::EchoServer(const char *host)
{
	fd_ = BindLoopback(host, &addr_);
	if (fd_ < 0) {
		fprintf(stderr, "echo server: cannot bind %s\n", host);
		abort();
	}
	thread_ = std::thread([this] { Run(); });
}

EchoServer::~EchoServer()
{
	Stop();
}

void EchoServer::Stop()
{
	if (stop_.exchange(true))
		return;
	// shutdown() wakes the blocked poll; close after the thread is gone.
	shutdown(fd_, SHUT_RDWR);
	thread_.join();
	close(fd_);
	fd_ = -1;
}

void EchoServer::Run()
{
	std::vector<uint8_t> buf(65536);
	while (!stop_.load()) {
		pollfd p = { fd_, POLLIN, 0 };
		if (poll(&p, 1, 50) <= 0)
			continue;
		sockaddr_storage from;
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(fd_, buf.data(), buf.size(), MSG_DONTWAIT,
				     reinterpret_cast<sockaddr *>(&from), &flen);
		if (n < 0)
			continue;
		if (n >= 4) {
			uint32_t id;
			memcpy(&id, buf.data(), 4);
			std::lock_guard<std::mutex> g(mu_);
			clients_[id]++;
		}
		datagrams_++;
		bytes_ += static_cast<uint64_t>(n);
		sendto(fd_, buf.data(), static_cast<size_t>(n), 0, reinterpret_cast<sockaddr *>(&from), flen);
	}
}

std::map<uint32_t, uint64_t> EchoServer::clients()
{
	std::lock_guard<std::mutex> g(mu_);
	return clients_;
}

bool EchoServer::served(uint32_t id)
{
	std::lock_guard<std::mutex> g(mu_);
	return clients_.count(id) != 0;
}

Client::Client(const char *host)
{
	qg_addr a{};
	fd_ = BindLoopback(host, &a);
	if (fd_ < 0) {
		fprintf(stderr, "client: cannot bind %s\n", host);
		abort();
	}
}

Client::~Client()
{
	if (fd_ >= 0)
		close(fd_);
}

bool Client::Send(const qg_addr &to, const void *data, size_t len)
{
	sockaddr_storage ss;
	socklen_t sl = qg_addr_to_sockaddr(&to, &ss);
	return sendto(fd_, data, len, 0, reinterpret_cast<sockaddr *>(&ss), sl) == static_cast<ssize_t>(len);
}

ssize_t Client::Recv(void *buf, size_t len, int timeout_ms)
{
	pollfd p = { fd_, POLLIN, 0 };
	if (poll(&p, 1, timeout_ms) <= 0)
		return -1;
	return recv(fd_, buf, len, MSG_DONTWAIT);
}

std::vector<uint8_t> Payload(uint32_t id, uint32_t seq, size_t n)
{
	std::vector<uint8_t> v(n);
	for (size_t i = 0; i < n; i++)
		v[i] = static_cast<uint8_t>((id * 131 + seq * 7 + i) & 0xff);
	if (n >= 4)
		memcpy(v.data(), &id, 4);
	if (n >= 8)
		memcpy(v.data() + 4, &seq, 4);
	return v;
}

bool RoundTrip(Client &c, const qg_addr &to, const std::vector<uint8_t> &payload, int timeout_ms, int tries)
{
	std::vector<uint8_t> buf(65536);
	for (int t = 0; t < tries; t++) {
		if (!c.Send(to, payload.data(), payload.size()))
			continue;
		for (;;) {
			ssize_t n = c.Recv(buf.data(), buf.size(), timeout_ms);
			if (n < 0)
				break;
			if (static_cast<size_t>(n) == payload.size() &&
			    (payload.empty() || memcmp(buf.data(), payload.data(), payload.size()) == 0))
				return true;
			// A late duplicate of an earlier try: keep reading.
		}
	}
	return false;
}

} // namespace qgt
