#pragma once
// The real apikeyd, started on a PrivateBus with a state directory of its own.
// The constructor returns once the daemon owns org.apikeyd1 on the bus; the
// destructor stops it (SIGKILL if it must) whatever the test did.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/private_bus.hpp"
#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

namespace apikeyd::test {

struct DaemonOptions {
    // Pass --insecure-software-keyslot on the first start (an empty state
    // directory needs a keyslot choice); later starts run without it.
    bool software_keyslot = true;
    // Passed on every start.
    std::vector<std::string> extra_args;
    // Passed on the first start only, like software_keyslot: the keyslot
    // choice of an empty state directory, e.g. "--tpm2-device=swtpm:..."
    // (with software_keyslot = false). Later starts must unlock from what
    // the state directory holds.
    std::vector<std::string> first_start_args;
    // "NAME=value" entries added to the daemon's environment on every start
    // (e.g. SOFTHSM2_CONF, CREDENTIALS_DIRECTORY).
    std::vector<std::string> environment;
};

class Daemon {
  public:
    explicit Daemon(const PrivateBus& bus, DaemonOptions options = {});
    ~Daemon();
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    // Starts apikeyd and waits (bounded) until it owns org.apikeyd1. Throws
    // std::runtime_error with the daemon's log if it exits or times out.
    void start();
    // SIGTERM and wait; returns the exit code (128 + N for signal N; a daemon
    // that does not stop in time is killed and 128 + SIGKILL is returned).
    // Returns once org.apikeyd1 has left the bus.
    int stop();
    // SIGKILL, as a crash or power loss would end it.
    void kill9();
    // Waits up to `timeout` for the daemon to end by itself; its exit code
    // (as exit_code_of) then, nullopt while it runs.
    std::optional<int> wait_for_exit(std::chrono::milliseconds timeout);
    void restart() {
        stop();
        start();
    }

    bool running() const { return process_.running(); }
    pid_t pid() const { return process_.pid(); }
    const std::filesystem::path& state_dir() const { return state_dir_; }
    // Everything the daemon wrote to stderr, over all its starts.
    std::string log() const;
    // The sd_notify messages it sent ("READY=1", "STOPPING=1", ...), over all its starts.
    std::vector<std::string> notifications();

  private:
    void wait_until_gone_from_bus();

    const PrivateBus& bus_;
    DaemonOptions options_;
    TempDir dir_{"apikeyd-daemon"};
    std::filesystem::path state_dir_;
    std::filesystem::path log_path_;
    UniqueFd notify_socket_;
    std::vector<std::string> notifications_;
    bool started_before_ = false;
    ChildProcess process_;
};

}  // namespace apikeyd::test
