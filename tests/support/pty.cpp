#include "tests/support/pty.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace apikeyd::test {

PtyProcess::PtyProcess(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
    if (argv.empty()) {
        throw std::invalid_argument("PtyProcess: empty argv");
    }
    std::vector<char*> args;
    for (const auto& arg : argv) {
        args.push_back(const_cast<char*>(arg.c_str()));
    }
    args.push_back(nullptr);
    std::vector<char*> envp;
    for (const auto& entry : env) {
        envp.push_back(const_cast<char*>(entry.c_str()));
    }
    envp.push_back(nullptr);
    const pid_t parent = getpid();

    int master = -1;
    const pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
    if (pid < 0) {
        throw std::runtime_error(std::string("forkpty: ") + std::strerror(errno));
    }
    if (pid == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) {
            _exit(127);
        }
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, nullptr);
        for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD}) {
            signal(sig, SIG_DFL);
        }
        syscall(SYS_close_range, 3U, ~0U, 0U);
        execve(args[0], args.data(), envp.data());
        _exit(127);
    }
    master_.reset(master);
    child_ = ChildProcess(pid);
    fcntl(master, F_SETFD, FD_CLOEXEC);
    char name[128];
    if (ptsname_r(master, name, sizeof name) == 0) {
        tty_path_ = name;
    }
}

bool PtyProcess::read_some(std::chrono::milliseconds timeout) {
    if (!master_) {
        return false;
    }
    pollfd fd{master_.get(), POLLIN, 0};
    const int ready = poll(&fd, 1, static_cast<int>(timeout.count()));
    if (ready <= 0) {
        return ready == 0 || errno == EINTR;
    }
    char buffer[4096];
    const ssize_t n = read(master_.get(), buffer, sizeof buffer);
    if (n > 0) {
        output_.append(buffer, static_cast<size_t>(n));
        return true;
    }
    if (n < 0 && errno == EINTR) {
        return true;
    }
    // EIO: no process has the terminal open any more.
    master_.reset();
    return false;
}

bool PtyProcess::wait_for(std::string_view text, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const size_t at = output_.find(text, matched_);
        if (at != std::string::npos) {
            matched_ = at + text.size();
            return true;
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0 || !read_some(left)) {
            return false;
        }
    }
}

void PtyProcess::type(std::string_view text) {
    while (!text.empty()) {
        const ssize_t n = write(master_.get(), text.data(), text.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw std::runtime_error(std::string("writing to the pty: ") + std::strerror(errno));
        }
        text.remove_prefix(static_cast<size_t>(n));
    }
}

int PtyProcess::wait_exit(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    // A process the child left behind may hold the terminal open: the end of
    // the child, not of the terminal, is what is waited for.
    while (!child_.poll()) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            child_.stop(SIGKILL, std::chrono::seconds(5));
            return -1;
        }
        if (!read_some(std::min(left, std::chrono::milliseconds(50)))) {
            child_.wait(left);
        }
    }
    while (master_) {
        pollfd fd{master_.get(), POLLIN, 0};
        if (poll(&fd, 1, 0) <= 0 || !read_some(std::chrono::milliseconds(0))) {
            break;
        }
    }
    return exit_code_of(*child_.wait_status());
}

}  // namespace apikeyd::test
