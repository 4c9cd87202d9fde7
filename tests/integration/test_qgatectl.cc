// SPDX-License-Identifier: BSD-3-Clause
// qgatectl as operators run it (the real executable, QGATECTL_BIN): every
// QUIC-LB draft-21 vector through "cid encode" and "cid decode", help, and
// the bad-input cases, which must exit 2 with one line on stderr naming the
// problem and nothing on stdout.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "integration/proc.h"

#ifndef QGATECTL_BIN
#error "QGATECTL_BIN (path of the qgatectl executable) must be defined by the build"
#endif

namespace
{

using qgt::Result;

// Run qgatectl with args; stdout and stderr are captured separately.
Result RunCtl(const std::vector<std::string> &args)
{
	return qgt::Run(qgt::Cmd(QGATECTL_BIN, args), 10000);
}

size_t Lines(const std::string &s)
{
	size_t n = 0;
	for (char c : s)
		n += c == '\n';
	return n;
}

struct Vector {
	int cr;
	const char *key; // "" for plaintext
	const char *sid;
	const char *nonce;
	const char *cid;
};

const char kKey[] = "8f95f09245765f80256934e50c66207f";

// quic-lb-draft21-vectors.txt, with the plaintext row 2 corrected and row 4 in both cr_bits forms.
const Vector kVectors[] = {
	{ 0, "", "c4605e", "4504cc4f", "07c4605e4504cc4f" },
	{ 1, "", "350d28b420", "03487d970b", "2a350d28b42003487d970b" },
	{ 0, kKey, "ed793a", "ee080dbf", "0720b1d07b359d3c" },
	{ 1, kKey, "ed793a51d49b8f5fab65", "ee080dbf48", "2fcc381bc74cb4fbad2823a3d1f8fed2" },
	{ 2, kKey, "ed793a51d49b8f5f", "ee080dbf48c0d1e5", "504dd2d05a7b0de9b2b9907afb5ecf8cc3" },
	{ 0, kKey, "ed793a51d49b8f5fab", "ee080dbf48c0d1e55d", "125779c9cc86beb3a3a4a3ca96fce4bfe0cdbc" },
	{ 3, kKey, "ed793a51d49b8f5fab", "ee080dbf48c0d1e55d", "725779c9cc86beb3a3a4a3ca96fce4bfe0cdbc" },
	{ 0, "fdf726a9893ec05c0632d3956680baf0", "31441a", "9c69c275", "0767947d29be054a" },
};

class CtlVector : public ::testing::TestWithParam<Vector>
{
};

TEST_P(CtlVector, Encodes)
{
	const Vector &v = GetParam();
	std::vector<std::string> args = { "cid",	 "encode", "--config-id", std::to_string(v.cr),
					  "--server-id", v.sid,	   "--nonce",	  v.nonce };
	if (*v.key) {
		args.push_back("--key");
		args.push_back(v.key);
	}
	Result r = RunCtl(args);
	EXPECT_EQ(r.status, 0) << r.err;
	EXPECT_EQ(r.out, std::string(v.cid) + "\n");
	EXPECT_EQ(r.err, "");
}

TEST_P(CtlVector, Decodes)
{
	const Vector &v = GetParam();
	std::vector<std::string> args = { "cid",
					  "decode",
					  "--server-id-len",
					  std::to_string(strlen(v.sid) / 2),
					  "--nonce-len",
					  std::to_string(strlen(v.nonce) / 2) };
	if (*v.key)
		args.push_back(std::string("--key=") + v.key); // the "=" form too
	args.push_back(v.cid);
	Result r = RunCtl(args);
	EXPECT_EQ(r.status, 0) << r.err;
	EXPECT_EQ(r.out,
		  "config_id=" + std::to_string(v.cr) + " server_id=" + v.sid + " nonce=" + v.nonce + "\n");
	EXPECT_EQ(r.err, "");
}

INSTANTIATE_TEST_SUITE_P(Draft21, CtlVector, ::testing::ValuesIn(kVectors));

TEST(Qgatectl, AcceptsUppercaseAnd0xPrefix)
{
	Result r = RunCtl({ "cid", "encode", "--config-id", "0", "--server-id", "0xED793A", "--nonce",
			    "EE080DBF", "--key", std::string("0x") + kKey });
	EXPECT_EQ(r.status, 0) << r.err;
	EXPECT_EQ(r.out, "0720b1d07b359d3c\n");
}

TEST(Qgatectl, HelpExitsZero)
{
	for (auto args : std::vector<std::vector<std::string>>{
		     { "--help" }, { "-h" }, { "cid", "--help" }, { "cid", "encode", "--help" } }) {
		Result r = RunCtl(args);
		EXPECT_EQ(r.status, 0) << args.back();
		EXPECT_NE(r.out.find("usage: qgatectl cid encode"), std::string::npos);
		EXPECT_NE(r.out.find("qgatectl cid decode"), std::string::npos);
	}
	Result r = RunCtl({});
	EXPECT_EQ(r.status, 2) << "no command is a usage error";
	EXPECT_NE(r.err.find("usage:"), std::string::npos);
}

struct BadCase {
	std::vector<std::string> args;
	const char *message; // must appear in the stderr line
};

TEST(Qgatectl, BadInputExitsTwoWithOneLine)
{
	const std::string k = kKey;
	const std::vector<BadCase> cases = {
		{ { "cid", "encode", "--config-id", "0", "--server-id", "ed793", "--nonce", "ee080dbf" },
		  "odd number of hex digits" },
		{ { "cid", "encode", "--config-id", "0", "--server-id", "ed79zz", "--nonce", "ee080dbf" },
		  "not a hex digit" },
		{ { "cid", "encode", "--config-id", "7", "--server-id", "ed793a", "--nonce", "ee080dbf" },
		  "unroutable" },
		{ { "cid", "encode", "--config-id", "8", "--server-id", "ed793a", "--nonce", "ee080dbf" },
		  "out of range" },
		{ { "cid", "encode", "--config-id", "x", "--server-id", "ed793a", "--nonce", "ee080dbf" },
		  "not a number" },
		{ { "cid", "encode", "--config-id", "0", "--server-id", "ed793a", "--nonce", "ee080d" },
		  "--nonce" },
		{ { "cid", "encode", "--config-id", "0", "--server-id", "00112233445566778899aabbccddeeff",
		    "--nonce", "ee080dbf" },
		  "--server-id" },
		{ { "cid", "encode", "--config-id", "0", "--server-id", "00112233445566778899", "--nonce",
		    "00112233445566778899" },
		  "at most 19" },
		{ { "cid", "encode", "--config-id", "0", "--server-id", "ed793a", "--nonce", "ee080dbf",
		    "--key", "8f95f09245765f80256934e50c6620" },
		  "16 octets" },
		{ { "cid", "encode", "--config-id", "0", "--server-id", "ed793a" },
		  "missing option --nonce" },
		{ { "cid", "encode", "--config-id", "0", "--server-id", "ed793a", "--nonce" },
		  "needs a value" },
		{ { "cid", "encode", "--config-id", "0", "--server-id", "ed793a", "--nonce", "ee080dbf",
		    "--frob", "1" },
		  "unknown option '--frob'" },
		{ { "cid", "decode", "--server-id-len", "3", "--nonce-len", "4", "--key", k,
		    "0720b1d07b359d" },
		  "CID too short" },
		{ { "cid", "decode", "--server-id-len", "3", "--nonce-len", "4", "e720b1d07b359d3c" },
		  "unroutable" },
		{ { "cid", "decode", "--server-id-len", "0", "--nonce-len", "4", "0720b1d07b359d3c" },
		  "--server-id-len" },
		{ { "cid", "decode", "--server-id-len", "3", "--nonce-len", "3", "0720b1d07b359d3c" },
		  "--nonce-len" },
		{ { "cid", "decode", "--server-id-len", "10", "--nonce-len", "10", "0720b1d07b359d3c" },
		  "at most 19" },
		{ { "cid", "decode", "--server-id-len", "3", "--nonce-len", "4", "--key", "00",
		    "0720b1d07b359d3c" },
		  "16 octets" },
		{ { "cid", "decode", "--server-id-len", "3", "--nonce-len", "4", "0720b1d07b359d3" },
		  "odd number of hex digits" },
		{ { "cid", "decode", "--server-id-len", "3", "--nonce-len", "4" }, "missing CID_HEX" },
		{ { "cid", "decode", "--server-id-len", "3", "--nonce-len", "4", "0720b1d07b359d3c", "07" },
		  "unexpected argument" },
		{ { "cid", "frob" }, "unknown subcommand 'frob'" },
		{ { "cid" }, "missing subcommand" },
		{ { "frob" }, "unknown command 'frob'" },
	};
	for (const auto &c : cases) {
		std::string cmdline;
		for (const auto &a : c.args)
			cmdline += a + " ";
		SCOPED_TRACE(cmdline);
		Result r = RunCtl(c.args);
		EXPECT_EQ(r.status, 2);
		EXPECT_EQ(r.out, "");
		EXPECT_EQ(Lines(r.err), 1u) << r.err;
		EXPECT_EQ(r.err.rfind("qgatectl: ", 0), 0u) << r.err;
		EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
	}
}

} // namespace
