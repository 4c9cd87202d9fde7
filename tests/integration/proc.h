// SPDX-License-Identifier: BSD-3-Clause
// Child processes for integration tests: a binary run with stdout/stderr in
// files, killed (SIGKILL) and reaped by its destructor and by the death of the
// test process (PR_SET_PDEATHSIG); bounded waits; files; temporary directories.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

namespace qgt
{

// The whole file, "" when it cannot be read.
std::string ReadFile(const std::string &path);
void WriteFile(const std::string &path, const std::string &text);

// The last n bytes of s, marked "[...]" when cut.
std::string Tail(const std::string &s, size_t n = 3000);

// A numeric field of a one-line JSON object such as qgate-loadgen's summary ("key":number), or NAN when
// it is missing or not a number.
double JsonNumber(const std::string &json, const std::string &key);

// Poll cond every poll_ms for at most timeout_ms; true as soon as it holds.
bool WaitFor(const std::function<bool()> &cond, int timeout_ms, int poll_ms = 10);

// The executable that name resolves to (PATH lookup when it has no slash), "" when there is none.
std::string Which(const std::string &name);

// The CPUs this process may run on (never empty), and the lowest of them.
std::vector<int> AllowedCpus();
int FirstAllowedCpu();

// The command line bin args...
std::vector<std::string> Cmd(const std::string &bin, const std::vector<std::string> &args);

// A private temporary directory "<base>/<prefix>-XXXXXX" (base: $TMPDIR or /tmp when null), removed with
// everything in it.
class TempDir
{
      public:
	explicit TempDir(const std::string &prefix = "qgate-test", const char *base = nullptr);
	~TempDir();
	TempDir(const TempDir &) = delete;
	TempDir &operator=(const TempDir &) = delete;
	bool ok() const
	{
		return !path_.empty();
	}
	const std::string &path() const
	{
		return path_;
	}
	// Path of a file in the directory.
	std::string File(const std::string &name) const
	{
		return path_ + "/" + name;
	}
	// Create a subdirectory; its path.
	std::string Mkdir(const std::string &name) const;
	// Write a file; its path.
	std::string Write(const std::string &name, const std::string &text) const;

      private:
	std::string path_;
};

struct ChildOptions {
	// "NAME=value" entries added to (or replacing those of) the test's environment.
	std::vector<std::string> env;
	// Called in the child just before exec; must be async-signal-safe. A negative return makes the child
	// exit with 126.
	int (*pre_exec)() = nullptr;
	// How Describe() names the child; the command line when empty.
	std::string name;
	// Describe() shows only the last describe_tail bytes of each stream (0: all of them).
	size_t describe_tail = 0;
};

// One run of args[0] (looked up in PATH when it has no slash) with stdin from /dev/null and stdout/stderr
// in files. Everything the child needs is prepared before fork: it only calls async-signal-safe functions.
class Child
{
      public:
	Child(const std::vector<std::string> &args, const std::string &out_path, const std::string &err_path,
	      const ChildOptions &opts = {});
	// Output in dir, in files "<tag>-<n>.out" and "<tag>-<n>.err".
	Child(const TempDir &dir, const std::string &tag, const std::vector<std::string> &args,
	      const ChildOptions &opts = {});
	~Child();
	Child(const Child &) = delete;
	Child &operator=(const Child &) = delete;

	bool started() const
	{
		return pid_ > 0;
	}
	const std::string &spawn_error() const
	{
		return spawn_error_;
	}
	pid_t pid() const
	{
		return pid_;
	}
	// Reap the child if it has exited (non-blocking).
	bool Exited();
	// Wait up to timeout_ms for the exit; true when it exited.
	bool Wait(int timeout_ms);
	bool Signal(int sig);
	// SIGKILL and reap (blocking: SIGKILL cannot be ignored).
	void Kill();
	// SIGTERM, then SIGKILL when it is still there after timeout_ms. True when it exited without the
	// SIGKILL.
	bool Stop(int timeout_ms = 2000);
	// Wait up to timeout_ms until stderr contains text; false on timeout or when the child exits first.
	bool WaitForErr(const std::string &text, int timeout_ms);
	// Exit code, or -1 when it did not exit normally (then term_signal() tells why).
	int code() const;
	int term_signal() const;

	std::string out() const
	{
		return ReadFile(out_path_);
	}
	std::string err() const
	{
		return ReadFile(err_path_);
	}
	const std::string &out_path() const
	{
		return out_path_;
	}
	const std::string &err_path() const
	{
		return err_path_;
	}
	// Exit status and both streams, for failure messages.
	std::string Describe() const
	{
		return Describe(name_);
	}
	std::string Describe(const std::string &name) const;

      private:
	void Spawn(const std::vector<std::string> &args, const ChildOptions &opts);

	pid_t pid_ = -1;
	bool reaped_ = false;
	int status_ = 0;
	size_t tail_ = 0;
	std::string out_path_, err_path_, spawn_error_, name_;
};

// What a run to completion printed, and its exit code (-1 when it did not exit normally).
struct Result {
	int status = -1;
	std::string out, err;
};

// Run args to completion with both streams captured through pipes (drained together, so a chatty child
// cannot block on a full one). A child still writing after timeout_ms of silence is killed.
Result Run(const std::vector<std::string> &args, int timeout_ms = 15000);

} // namespace qgt
