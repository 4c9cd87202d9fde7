// SPDX-License-Identifier: BSD-3-Clause
#include "integration/proc.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

extern char **environ;

namespace qgt
{

std::string ReadFile(const std::string &path)
{
	std::ifstream f(path, std::ios::binary);
	std::ostringstream s;
	s << f.rdbuf();
	return s.str();
}

void WriteFile(const std::string &path, const std::string &text)
{
	std::ofstream f(path, std::ios::binary | std::ios::trunc);
	f << text;
}

std::string Tail(const std::string &s, size_t n)
{
	return s.size() <= n ? s : "[...]\n" + s.substr(s.size() - n);
}

double JsonNumber(const std::string &json, const std::string &key)
{
	std::string k = "\"" + key + "\":";
	size_t pos = json.find(k);
	if (pos == std::string::npos)
		return NAN;
	const char *p = json.c_str() + pos + k.size();
	char *end;
	double v = strtod(p, &end);
	return end == p ? NAN : v;
}

bool WaitFor(const std::function<bool()> &cond, int timeout_ms, int poll_ms)
{
	auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
	for (;;) {
		if (cond())
			return true;
		if (std::chrono::steady_clock::now() >= deadline)
			return false;
		std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
	}
}

std::string Which(const std::string &name)
{
	if (name.find('/') != std::string::npos)
		return access(name.c_str(), X_OK) == 0 ? name : "";
	const char *path = getenv("PATH");
	std::istringstream dirs(path && *path ? path : "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin");
	for (std::string d; std::getline(dirs, d, ':');) {
		std::string p = (d.empty() ? "." : d) + "/" + name;
		struct stat st;
		if (stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(p.c_str(), X_OK) == 0)
			return p;
	}
	return "";
}

std::vector<std::string> Cmd(const std::string &bin, const std::vector<std::string> &args)
{
	std::vector<std::string> v{ bin };
	v.insert(v.end(), args.begin(), args.end());
	return v;
}

std::vector<int> AllowedCpus()
{
	std::vector<int> out;
	cpu_set_t set;
	CPU_ZERO(&set);
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		for (int c = 0; c < CPU_SETSIZE; c++)
			if (CPU_ISSET(c, &set))
				out.push_back(c);
	if (out.empty())
		out.push_back(0);
	return out;
}

int FirstAllowedCpu()
{
	return AllowedCpus().front();
}

// ---- TempDir ----

TempDir::TempDir(const std::string &prefix, const char *base)
{
	if (!base) {
		base = getenv("TMPDIR");
		if (!base || !*base)
			base = "/tmp";
	}
	std::string tmpl = std::string(base) + "/" + prefix + "-XXXXXX";
	std::vector<char> buf(tmpl.begin(), tmpl.end());
	buf.push_back('\0');
	if (mkdtemp(buf.data()))
		path_ = buf.data();
}

TempDir::~TempDir()
{
	std::error_code ec;
	if (!path_.empty())
		std::filesystem::remove_all(path_, ec);
}

std::string TempDir::Mkdir(const std::string &name) const
{
	std::string p = File(name);
	mkdir(p.c_str(), 0700);
	return p;
}

std::string TempDir::Write(const std::string &name, const std::string &text) const
{
	std::string p = File(name);
	WriteFile(p, text);
	return p;
}

// ---- Child ----

namespace
{

// argv and envp of an exec, built before fork (the child must not allocate).
struct ExecImage {
	std::string path;
	std::vector<std::string> env_s;
	std::vector<char *> argv, envp;

	ExecImage(const std::vector<std::string> &args, const std::vector<std::string> &extra_env)
	{
		if (!args.empty()) {
			path = Which(args[0]);
			if (path.empty())
				path = args[0]; // execve fails: the child exits with 127
		}
		for (auto &a : args)
			argv.push_back(const_cast<char *>(a.c_str()));
		argv.push_back(nullptr);
		env_s = extra_env;
		for (char **e = environ; *e; e++) {
			bool overridden = false;
			for (auto &x : extra_env)
				overridden |= strncmp(*e, x.c_str(), x.find('=') + 1) == 0;
			if (!overridden)
				env_s.emplace_back(*e);
		}
		for (auto &e : env_s)
			envp.push_back(const_cast<char *>(e.c_str()));
		envp.push_back(nullptr);
	}
};

// In the child after fork: die with the test process, default signal mask, stdin/stdout/stderr, then exec.
// Async-signal-safe only.
[[noreturn]] void ExecChild(pid_t parent, int in, int out, int err, int (*pre_exec)(), ExecImage &img)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, nullptr);
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
		_exit(127);
	if (pre_exec && pre_exec() < 0)
		_exit(126);
	execve(img.path.c_str(), img.argv.data(), img.envp.data());
	_exit(127);
}

void CloseIfOpen(int fd)
{
	if (fd >= 0)
		close(fd);
}

} // namespace

Child::Child(const std::vector<std::string> &args, const std::string &out_path, const std::string &err_path,
	     const ChildOptions &opts)
    : out_path_(out_path), err_path_(err_path)
{
	Spawn(args, opts);
}

Child::Child(const TempDir &dir, const std::string &tag, const std::vector<std::string> &args,
	     const ChildOptions &opts)
{
	static int seq;
	std::string base = tag + "-" + std::to_string(++seq);
	out_path_ = dir.File(base + ".out");
	err_path_ = dir.File(base + ".err");
	Spawn(args, opts);
}

void Child::Spawn(const std::vector<std::string> &args, const ChildOptions &opts)
{
	tail_ = opts.describe_tail;
	name_ = opts.name;
	if (name_.empty())
		for (size_t i = 0; i < args.size(); i++)
			name_ += (i ? " " : "") + args[i];
	if (args.empty()) {
		spawn_error_ = "no command";
		return;
	}
	ExecImage img(args, opts.env);
	int out = open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int err = open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (out < 0 || err < 0 || in < 0) {
		spawn_error_ = std::string("cannot open capture files: ") + strerror(errno);
	} else {
		pid_t parent = getpid();
		pid_ = fork();
		if (pid_ == 0)
			ExecChild(parent, in, out, err, opts.pre_exec, img);
		if (pid_ < 0)
			spawn_error_ = std::string("fork: ") + strerror(errno);
	}
	CloseIfOpen(out);
	CloseIfOpen(err);
	CloseIfOpen(in);
}

Child::~Child()
{
	Kill();
}

bool Child::Exited()
{
	if (reaped_)
		return true;
	if (pid_ <= 0)
		return false;
	int st;
	if (waitpid(pid_, &st, WNOHANG) == pid_) {
		reaped_ = true;
		status_ = st;
	}
	return reaped_;
}

bool Child::Wait(int timeout_ms)
{
	return WaitFor([this] { return Exited(); }, timeout_ms);
}

bool Child::Signal(int sig)
{
	return pid_ > 0 && !reaped_ && kill(pid_, sig) == 0;
}

void Child::Kill()
{
	if (pid_ > 0 && !reaped_) {
		kill(pid_, SIGKILL);
		int st = 0;
		while (waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
		}
		reaped_ = true;
		status_ = st;
	}
}

bool Child::Stop(int timeout_ms)
{
	if (Exited())
		return true;
	Signal(SIGTERM);
	if (Wait(timeout_ms))
		return true;
	Kill();
	return false;
}

bool Child::WaitForErr(const std::string &text, int timeout_ms)
{
	bool found = false;
	WaitFor(
		[&] {
			found = err().find(text) != std::string::npos;
			return found || Exited();
		},
		timeout_ms);
	return found;
}

int Child::code() const
{
	return reaped_ && WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
}

int Child::term_signal() const
{
	return reaped_ && WIFSIGNALED(status_) ? WTERMSIG(status_) : 0;
}

std::string Child::Describe(const std::string &name) const
{
	std::string o = out(), e = err();
	if (tail_) {
		o = Tail(o, tail_);
		e = Tail(e, tail_);
	}
	std::ostringstream s;
	s << "\n--- " << name << ": exit code " << code() << ", signal " << term_signal() << "\n--- stdout:\n"
	  << o << "\n--- stderr:\n"
	  << e << "\n---";
	return s.str();
}

// ---- Run ----

Result Run(const std::vector<std::string> &args, int timeout_ms)
{
	Result r;
	if (args.empty())
		return r;
	ExecImage img(args, {});
	int out_pipe[2], err_pipe[2];
	if (pipe2(out_pipe, O_CLOEXEC) != 0)
		return r;
	if (pipe2(err_pipe, O_CLOEXEC) != 0) {
		close(out_pipe[0]);
		close(out_pipe[1]);
		return r;
	}
	int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
	pid_t parent = getpid();
	pid_t pid = in < 0 ? -1 : fork();
	if (pid == 0)
		ExecChild(parent, in, out_pipe[1], err_pipe[1], nullptr, img);
	CloseIfOpen(in);
	close(out_pipe[1]);
	close(err_pipe[1]);
	struct pollfd fds[2] = { { out_pipe[0], POLLIN, 0 }, { err_pipe[0], POLLIN, 0 } };
	std::string *sinks[2] = { &r.out, &r.err };
	int open_fds = 2;
	while (pid > 0 && open_fds > 0 && poll(fds, 2, timeout_ms) > 0) {
		for (int i = 0; i < 2; i++) {
			if (fds[i].fd < 0 || !fds[i].revents)
				continue;
			char buf[4096];
			ssize_t n = read(fds[i].fd, buf, sizeof(buf));
			if (n > 0) {
				sinks[i]->append(buf, (size_t)n);
			} else {
				close(fds[i].fd);
				fds[i].fd = -1;
				open_fds--;
			}
		}
	}
	for (auto &f : fds)
		CloseIfOpen(f.fd);
	if (pid <= 0)
		return r;
	if (open_fds > 0)
		kill(pid, SIGKILL);
	int st = 0;
	pid_t w;
	while ((w = waitpid(pid, &st, 0)) < 0 && errno == EINTR) {
	}
	if (w == pid && WIFEXITED(st))
		r.status = WEXITSTATUS(st);
	return r;
}

} // namespace qgt
