#include "tests/support/as_nobody.hpp"

#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <stdexcept>

#include "dbus/client.hpp"
#include "tests/support/process.hpp"
#include "tests/support/timing.hpp"

namespace apikeyd::test {
namespace {

void write_all(int fd, const std::string& text) {
    size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return;
        }
        done += static_cast<size_t>(n);
    }
}

std::string drop_privileges() {
    if (setgroups(0, nullptr) != 0) {
        return std::string("setgroups: ") + std::strerror(errno);
    }
    if (setresgid(kNobodyGid, kNobodyGid, kNobodyGid) != 0) {
        return std::string("setresgid: ") + std::strerror(errno);
    }
    if (setresuid(kNobodyUid, kNobodyUid, kNobodyUid) != 0) {
        return std::string("setresuid: ") + std::strerror(errno);
    }
    if (getuid() != kNobodyUid || geteuid() != kNobodyUid || getegid() != kNobodyGid) {
        return "still privileged after dropping to nobody";
    }
    return "";
}

[[noreturn]] void run_child(int report_fd, pid_t parent,
                            const std::function<nlohmann::json()>& fn) {
    nlohmann::json report;
    const std::string dropped = drop_privileges();
    // Set after the uid change, which clears it: the child must not outlive the test.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) {
        _exit(1);
    }
    if (!dropped.empty()) {
        report = {{"ok", false}, {"error", dropped}};
    } else {
        try {
            report = {{"ok", true}, {"value", fn()}};
        } catch (const client::BusError& e) {
            report = {{"ok", false}, {"error", "BusError " + e.name() + ": " + e.what()}};
        } catch (const std::exception& e) {
            report = {{"ok", false}, {"error", std::string("exception: ") + e.what()}};
        } catch (...) {
            report = {{"ok", false}, {"error", "unknown exception"}};
        }
    }
    write_all(report_fd, report.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    // No destructors or atexit handlers of the test process run in the child.
    _exit(0);
}

}  // namespace

ChildOutcome run_as_nobody(const std::function<nlohmann::json()>& fn) {
    Pipe pipe = make_pipe();
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid < 0) {
        throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    }
    if (pid == 0) {
        pipe.read.reset();
        run_child(pipe.write.get(), parent, fn);
    }
    ChildProcess child(pid);
    pipe.write.reset();

    std::string text;
    bool timed_out = false;
    const auto deadline = std::chrono::steady_clock::now() + scaled(std::chrono::seconds(60));
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        pollfd pfd{pipe.read.get(), POLLIN, 0};
        const int ready = left.count() > 0 ? ::poll(&pfd, 1, static_cast<int>(left.count())) : 0;
        if (ready < 0 && errno == EINTR) {
            continue;
        }
        if (ready == 0) {
            timed_out = true;
            break;
        }
        char buffer[4096];
        const ssize_t n = read(pipe.read.get(), buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        text.append(buffer, static_cast<size_t>(n));
    }
    std::optional<int> status;
    if (!timed_out) {
        status = child.wait(scaled(std::chrono::seconds(10)));
    }
    if (!status) {
        status = child.stop(SIGKILL, std::chrono::seconds(5)).wait_status;
    }
    ChildOutcome outcome;
    if (timed_out) {
        outcome.error = "the child running as nobody did not finish in time";
        return outcome;
    }
    const auto parsed = nlohmann::json::parse(text, nullptr, false);
    if (parsed.is_discarded() || !parsed.is_object()) {
        outcome.error = "the child running as nobody " + describe_wait_status(*status) +
                        " without a report (got: '" + text + "')";
        return outcome;
    }
    outcome.ok = parsed.value("ok", false);
    outcome.error = parsed.value("error", "");
    if (parsed.contains("value")) {
        outcome.value = parsed["value"];
    }
    return outcome;
}

}  // namespace apikeyd::test
