#include "tests/support/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/support/timing.hpp"

extern char** environ;

namespace apikeyd::test {
namespace {

std::runtime_error system_error(const std::string& what) {
    return std::runtime_error(what + ": " + std::strerror(errno));
}

std::string getenv_or(const char* name, const std::string& fallback) {
    const char* value = std::getenv(name);
    return value != nullptr ? value : fallback;
}

// Resolved in the parent: the child only calls async-signal-safe functions.
std::string resolve_program(const std::string& program) {
    if (program.find('/') != std::string::npos) {
        return program;
    }
    std::stringstream path(getenv_or("PATH", "/usr/local/bin:/usr/bin:/bin"));
    std::string dir;
    while (std::getline(path, dir, ':')) {
        const auto candidate = std::filesystem::path(dir.empty() ? "." : dir) / program;
        if (access(candidate.c_str(), X_OK) == 0) {
            return candidate.string();
        }
    }
    throw std::runtime_error("program not found on PATH: " + program);
}

void ignore_sigpipe_once() {
    static const bool done = [] {
        signal(SIGPIPE, SIG_IGN);
        return true;
    }();
    (void)done;
}

[[noreturn]] void child_fail(int report_fd, int error) {
    ssize_t ignored = write(report_fd, &error, sizeof error);
    (void)ignored;
    _exit(127);
}

void set_nonblocking(int fd) {
    const int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        throw system_error("fcntl O_NONBLOCK");
    }
}

}  // namespace

Pipe make_pipe() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        throw system_error("pipe2");
    }
    return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

std::vector<std::string> base_environment() {
    std::vector<std::string> env = {
        "PATH=" + getenv_or("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
        "LANG=C.UTF-8",
    };
    for (const char* name : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"}) {
        if (const char* value = std::getenv(name)) {
            env.push_back(std::string(name) + "=" + value);
        }
    }
    return env;
}

pid_t spawn(const SpawnOptions& options) {
    if (options.argv.empty()) {
        throw std::invalid_argument("spawn: empty argv");
    }
    // Everything the child needs is prepared before fork.
    const std::string program = resolve_program(options.argv[0]);
    std::vector<char*> argv;
    for (const auto& arg : options.argv) {
        argv.push_back(const_cast<char*>(arg.c_str()));
    }
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (const auto& entry : options.env) {
        envp.push_back(const_cast<char*>(entry.c_str()));
    }
    envp.push_back(nullptr);

    UniqueFd dev_null(open("/dev/null", O_RDWR | O_CLOEXEC));
    if (!dev_null) {
        throw system_error("open /dev/null");
    }
    const int targets[3] = {
        options.stdin_fd >= 0 ? options.stdin_fd : dev_null.get(),
        options.stdout_fd >= 0 ? options.stdout_fd : dev_null.get(),
        options.stderr_fd >= 0 ? options.stderr_fd : dev_null.get(),
    };
    Pipe report = make_pipe();  // the child writes errno here if exec fails
    const pid_t parent = getpid();

    const pid_t pid = fork();
    if (pid < 0) {
        throw system_error("fork");
    }
    if (pid == 0) {
        const int report_fd = report.write.get();
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) {
            child_fail(report_fd, ESRCH);
        }
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, nullptr);
        for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD}) {
            signal(sig, SIG_DFL);
        }
        // dup2 first onto fds above the standard ones so that a source fd in
        // 0..2 is not overwritten before it is used.
        int moved[3];
        for (int i = 0; i < 3; ++i) {
            moved[i] = fcntl(targets[i], F_DUPFD_CLOEXEC, 10);
            if (moved[i] < 0) {
                child_fail(report_fd, errno);
            }
        }
        for (int i = 0; i < 3; ++i) {
            if (dup2(moved[i], i) < 0) {
                child_fail(report_fd, errno);
            }
        }
        // Nothing else of the test process leaks into the child.
        if (report_fd > 3) {
            syscall(SYS_close_range, 3U, static_cast<unsigned>(report_fd - 1), 0U);
        }
        syscall(SYS_close_range, static_cast<unsigned>(report_fd + 1), ~0U, 0U);
        execve(program.c_str(), argv.data(), envp.data());
        child_fail(report_fd, errno);
    }

    report.write.reset();
    int child_errno = 0;
    ssize_t n;
    do {
        n = read(report.read.get(), &child_errno, sizeof child_errno);
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
        int status;
        waitpid(pid, &status, 0);
        throw std::runtime_error("cannot execute " + program + ": " + std::strerror(child_errno));
    }
    return pid;
}

std::optional<int> wait_for_exit(pid_t pid, std::chrono::milliseconds timeout) {
    std::optional<int> result;
    eventually(
        [&] {
            int status = 0;
            const pid_t r = waitpid(pid, &status, WNOHANG);
            if (r == pid) {
                result = status;
                return true;
            }
            if (r < 0 && errno != EINTR) {
                throw system_error("waitpid " + std::to_string(pid));
            }
            return false;
        },
        timeout, std::chrono::milliseconds(2));
    return result;
}

int exit_code_of(int wait_status) {
    if (WIFEXITED(wait_status)) {
        return WEXITSTATUS(wait_status);
    }
    if (WIFSIGNALED(wait_status)) {
        return 128 + WTERMSIG(wait_status);
    }
    return -1;
}

std::string describe_wait_status(int wait_status) {
    if (WIFEXITED(wait_status)) {
        return "exited with " + std::to_string(WEXITSTATUS(wait_status));
    }
    if (WIFSIGNALED(wait_status)) {
        const int sig = WTERMSIG(wait_status);
        return "killed by signal " + std::to_string(sig) + " (" + strsignal(sig) + ")";
    }
    return "wait status " + std::to_string(wait_status);
}

ChildProcess::~ChildProcess() {
    kill_and_reap();
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(other.pid_), status_(other.status_) {
    other.pid_ = -1;
    other.status_.reset();
}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
    if (this != &other) {
        kill_and_reap();
        pid_ = other.pid_;
        status_ = other.status_;
        other.pid_ = -1;
        other.status_.reset();
    }
    return *this;
}

std::optional<int> ChildProcess::poll() {
    if (pid_ > 0 && !status_) {
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
            status_ = status;
        }
    }
    return status_;
}

std::optional<int> ChildProcess::wait(std::chrono::milliseconds timeout) {
    if (pid_ > 0 && !status_) {
        status_ = wait_for_exit(pid_, timeout);
    }
    return status_;
}

ChildProcess::StopResult ChildProcess::stop(int signal, std::chrono::milliseconds timeout) {
    if (pid_ <= 0) {
        throw std::logic_error("ChildProcess::stop without a child");
    }
    if (poll()) {
        return StopResult{*status_, false};
    }
    kill(pid_, signal);
    if (auto status = wait(timeout)) {
        return StopResult{*status, false};
    }
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    status_ = status;
    return StopResult{status, true};
}

void ChildProcess::kill_and_reap() noexcept {
    if (pid_ > 0 && !status_) {
        kill(pid_, SIGKILL);
        int status = 0;
        while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        status_ = status;
    }
}

std::string ProcessResult::describe() const {
    std::string text = "exit code " + std::to_string(exit_code);
    if (timed_out) {
        text += " (killed after the timeout)";
    }
    text += "\n--- stdout ---\n" + out + "\n--- stderr ---\n" + err + "\n--------------";
    return text;
}

ProcessResult run_process(const std::vector<std::string>& argv, const std::string& stdin_text,
                          const std::vector<std::string>& env, std::chrono::milliseconds timeout) {
    ignore_sigpipe_once();
    Pipe in = make_pipe();
    Pipe out = make_pipe();
    Pipe err = make_pipe();
    ChildProcess child(
        spawn(SpawnOptions{argv, env, in.read.get(), out.write.get(), err.write.get()}));
    in.read.reset();
    out.write.reset();
    err.write.reset();
    set_nonblocking(in.write.get());
    if (stdin_text.empty()) {
        in.write.reset();
    }

    ProcessResult result;
    size_t written = 0;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (out.read || err.read) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            result.timed_out = true;
            break;
        }
        pollfd fds[3] = {
            {out.read.get(), POLLIN, 0}, {err.read.get(), POLLIN, 0}, {in.write.get(), POLLOUT, 0}};
        const int ready = ::poll(fds, 3, static_cast<int>(left.count()));
        if (ready < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw system_error("poll");
        }
        std::pair<pollfd*, std::pair<UniqueFd*, std::string*>> readers[2] = {
            {&fds[0], {&out.read, &result.out}}, {&fds[1], {&err.read, &result.err}}};
        for (auto& [pfd, target] : readers) {
            if (pfd->fd >= 0 && (pfd->revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
                char buffer[4096];
                const ssize_t n = read(pfd->fd, buffer, sizeof buffer);
                if (n > 0) {
                    target.second->append(buffer, static_cast<size_t>(n));
                } else if (n == 0 || errno != EINTR) {
                    target.first->reset();
                }
            }
        }
        if (fds[2].fd >= 0 && fds[2].revents != 0) {
            const ssize_t n =
                write(in.write.get(), stdin_text.data() + written, stdin_text.size() - written);
            if (n > 0) {
                written += static_cast<size_t>(n);
            }
            // A child that stops reading (EPIPE) simply does not get the rest.
            if ((n < 0 && errno != EAGAIN && errno != EINTR) || written == stdin_text.size()) {
                in.write.reset();
            }
        }
    }
    in.write.reset();
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (!result.timed_out) {
        if (auto status = child.wait(std::max(left, std::chrono::milliseconds(1)))) {
            result.exit_code = exit_code_of(*status);
            return result;
        }
        result.timed_out = true;
    }
    const auto stopped = child.stop(SIGKILL, std::chrono::seconds(5));
    result.exit_code = exit_code_of(stopped.wait_status);
    return result;
}

}  // namespace apikeyd::test
