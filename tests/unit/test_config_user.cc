// SPDX-License-Identifier: BSD-3-Clause
// The identity keys of the configuration: top-level user and group (whom
// qgate runs as after binding) and admin.owner / admin.group (who owns the
// admin socket). Names are resolved through the system's databases, so these
// tests use the accounts every Debian system has: nobody (65534) and nogroup
// (65534), root (0).
#include <grp.h>
#include <pwd.h>

#include "unit/config_test_util.h"

using namespace qgcfg;

namespace
{

// A uid (or gid) no database entry has, for the "bare id" cases.
uint32_t UnusedUid()
{
	for (uint32_t id = 3999999; id < 4100000; id++)
		if (!getpwuid(id) && !getgrgid(id))
			return id;
	return 0;
}

TEST(ConfigUser, AbsentMeansNoDrop)
{
	Result r;

	Load(kServices, &r);
	ASSERT_EQ(r.ret, 0) << Dump(r.errs);
	EXPECT_EQ(r.cfg->run_as.enabled, 0);
	EXPECT_EQ(r.cfg->admin.has_owner, 0);
	EXPECT_EQ(r.cfg->admin.has_group, 0);
}

TEST(ConfigUser, UserByNameTakesItsPrimaryGroup)
{
	Result r;

	Load("user: nobody\n" + kServices, &r);
	ASSERT_EQ(r.ret, 0) << Dump(r.errs);
	const struct passwd *pw = getpwnam("nobody");
	ASSERT_NE(pw, nullptr);
	EXPECT_EQ(r.cfg->run_as.enabled, 1);
	EXPECT_EQ(r.cfg->run_as.uid, pw->pw_uid);
	EXPECT_EQ(r.cfg->run_as.gid, pw->pw_gid);
	EXPECT_STREQ(r.cfg->run_as.user, "nobody");
	EXPECT_EQ(r.cfg->run_as.line, 1);
}

TEST(ConfigUser, UserAndGroupByNameOrNumber)
{
	Result named, numeric;

	Load("user: nobody\ngroup: nogroup\n" + kServices, &named);
	ASSERT_EQ(named.ret, 0) << Dump(named.errs);
	EXPECT_EQ(named.cfg->run_as.gid, getgrnam("nogroup")->gr_gid);

	// A number with an entry gets the entry's name (for its supplementary groups).
	Load("user: 65534\ngroup: '65534'\n" + kServices, &numeric);
	ASSERT_EQ(numeric.ret, 0) << Dump(numeric.errs);
	EXPECT_EQ(numeric.cfg->run_as.uid, 65534u);
	EXPECT_EQ(numeric.cfg->run_as.gid, 65534u);
	EXPECT_STREQ(numeric.cfg->run_as.user, getpwuid(65534)->pw_name);
}

TEST(ConfigUser, BareUidNeedsAGroup)
{
	uint32_t id = UnusedUid();
	ASSERT_NE(id, 0u);
	std::string uid = std::to_string(id);
	Result r;

	Load("user: " + uid + "\ngroup: " + uid + "\n" + kServices, &r);
	ASSERT_EQ(r.ret, 0) << Dump(r.errs);
	EXPECT_EQ(r.cfg->run_as.uid, id);
	EXPECT_EQ(r.cfg->run_as.gid, id);
	EXPECT_STREQ(r.cfg->run_as.user, "") << "no name: only the one group";

	ExpectOneError("user: " + uid + "\n" + kServices, 1, 7,
		       "user: uid " + uid +
			       " has no entry in the user database, so it has no primary group: "
			       "set group too");
}

TEST(ConfigUser, Errors)
{
	ExpectOneError(
		"user: qgate-no-such-user\n" + kServices, 1, 7,
		"user: no user 'qgate-no-such-user' on this system (getent passwd qgate-no-such-user)");
	ExpectOneError(
		"user: nobody\ngroup: qgate-no-such-group\n" + kServices, 2, 8,
		"group: no group 'qgate-no-such-group' on this system (getent group qgate-no-such-group)");
	ExpectOneError(kServices + "group: nogroup\n", 6, 1, "group is only allowed with user");
	ExpectOneError("user: root\n" + kServices, 1, 7, "user: root is root (uid 0), which drops nothing");
	ExpectOneError("user: 0\n" + kServices, 1, 7, "user: root is root (uid 0)");
	ExpectOneError(
		"user: 'bad name!'\n" + kServices, 1, 7,
		"user: 'bad name!' is not a user name or id (letters, digits, '_', '.', '-', at most 32 "
		"characters, or a number)");
	ExpectOneError("user: -5\n" + kServices, 1, 7, "is not a user name or id");
	ExpectOneError("user: " + std::string(33, 'a') + "\n" + kServices, 1, 7, "at most 32 characters");
	ExpectOneError("user: 4294967295\n" + kServices, 1, 7,
		       "user: 4294967295 is out of range (0..4294967294)");
	ExpectOneError("user: 0100\n" + kServices, 1, 7, "user: '0100' has a leading zero");
	ExpectOneError("user: [nobody]\n" + kServices, 1, 7, "user: expected a value, found a sequence");
	ExpectOneError("user:\n" + kServices, 1, 6, "user: expected a value, found an empty value");
	ExpectOneError("user: nobody\nuser: nobody\n" + kServices, 2, 1,
		       "duplicate key 'user' at the top level");
	ExpectOneError(
		kServices + "users: nobody\n", 6, 1,
		"unknown key 'users' at the top level (valid keys: dataplane, stats_interval, services, "
		"metrics, admin, drain_timeout, degradation, bridges, user, group)");
}

TEST(ConfigUser, RefusedWithTheDpdkBackend)
{
	const std::string dpdk = "dataplane:\n"
				 "  backend: dpdk\n"
				 "  dpdk: {ports: [{name: net_null0, addresses: [192.0.2.1/24]}]}\n";
	Result probe;

	Load(dpdk + kServices, &probe);
	if (probe.ret != 0)
		GTEST_SKIP() << "this build has no DPDK backend: " << Dump(probe.errs);
	ExpectOneError("user: nobody\n" + dpdk + kServices, 1, 1,
		       "user is not supported with backend dpdk: the DPDK backend runs as root");
}

TEST(ConfigAdmin, OwnerAndGroup)
{
	Result r, numeric;
	uint32_t bare = UnusedUid();

	Load("admin: {socket: /run/q/a.sock, mode: 0660, owner: nobody, group: nogroup}\n" + kServices, &r);
	ASSERT_EQ(r.ret, 0) << Dump(r.errs);
	EXPECT_EQ(r.cfg->admin.has_owner, 1);
	EXPECT_EQ(r.cfg->admin.owner, getpwnam("nobody")->pw_uid);
	EXPECT_EQ(r.cfg->admin.has_group, 1);
	EXPECT_EQ(r.cfg->admin.group, getgrnam("nogroup")->gr_gid);
	EXPECT_EQ(r.cfg->run_as.enabled, 0) << "admin.group is not the top-level group";

	// Numbers need no entry: the file just gets them.
	Load("admin: {owner: 0, group: " + std::to_string(bare) + "}\n" + kServices, &numeric);
	ASSERT_EQ(numeric.ret, 0) << Dump(numeric.errs);
	EXPECT_EQ(numeric.cfg->admin.has_owner, 1);
	EXPECT_EQ(numeric.cfg->admin.owner, 0u);
	EXPECT_EQ(numeric.cfg->admin.group, bare);
	EXPECT_STREQ(numeric.cfg->admin.socket, QG_CONFIG_ADMIN_SOCKET_DEFAULT);
}

TEST(ConfigAdmin, OwnerAndGroupErrors)
{
	ExpectOneError("admin: {owner: qgate-no-such-user}\n" + kServices, 1, 16,
		       "owner: no user 'qgate-no-such-user' on this system");
	ExpectOneError("admin: {group: qgate-no-such-group}\n" + kServices, 1, 16,
		       "group: no group 'qgate-no-such-group' on this system");
	ExpectOneError("admin: {owner: 'a b'}\n" + kServices, 1, 16, "owner: 'a b' is not a user name or id");
	ExpectOneError("admin: {group: 4294967295}\n" + kServices, 1, 16,
		       "group: 4294967295 is out of range (0..4294967294)");
	ExpectOneError("admin: {owner: {name: x}}\n" + kServices, 1, 16,
		       "owner: expected a value, found a mapping");
	ExpectOneError("admin: {user: nobody}\n" + kServices, 1, 9,
		       "unknown key 'user' in admin (valid keys: socket, mode, owner, group)");
}

// Several problems at once, each at its place, in document order.
TEST(ConfigUser, EveryProblemReported)
{
	Result r;

	Load("admin: {owner: qgate-no-such-user, group: qgate-no-such-group}\n"
	     "user: root\n" +
		     kServices,
	     &r);
	ASSERT_EQ(r.ret, -EINVAL);
	ASSERT_EQ(r.errs.count, 3u) << Dump(r.errs);
	EXPECT_EQ(r.errs.items[0].line, 1);
	EXPECT_EQ(r.errs.items[0].column, 16);
	EXPECT_EQ(r.errs.items[1].line, 1);
	EXPECT_EQ(r.errs.items[1].column, 43);
	EXPECT_EQ(r.errs.items[2].line, 2);
	EXPECT_EQ(r.errs.items[2].column, 7);
}

} // namespace
