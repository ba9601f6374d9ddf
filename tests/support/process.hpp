#pragma once
// Child processes for the integration tests: started with fork+exec, tied to
// the test process (they get SIGKILL if it dies), and reaped by RAII so that a
// failing test leaves nothing running.

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "common/unique_fd.hpp"

namespace apikeyd::test {

struct Pipe {
    UniqueFd read;
    UniqueFd write;
};
// Both ends close-on-exec; spawn() dup2()s the child's end into place.
Pipe make_pipe();

// The environment a test child starts with: PATH, LANG=C.UTF-8 and the
// sanitizer settings of the test process, nothing else from the host.
std::vector<std::string> base_environment();

struct SpawnOptions {
    std::vector<std::string> argv;  // argv[0] is the program path
    std::vector<std::string> env;   // "NAME=value", the complete environment
    int stdin_fd = -1;              // -1: /dev/null
    int stdout_fd = -1;             // -1: /dev/null
    int stderr_fd = -1;             // -1: /dev/null
};

// Starts a child with fork+exec. It receives SIGKILL if the test process dies.
// Throws std::runtime_error if fork fails or the program cannot be executed.
pid_t spawn(const SpawnOptions& options);

// Waits up to `timeout` for `pid` to end; returns its wait status, or nullopt
// if it is still running.
std::optional<int> wait_for_exit(pid_t pid, std::chrono::milliseconds timeout);

// Exit code for a normal exit, 128 + N for death by signal N (as a shell says).
int exit_code_of(int wait_status);
// "exited with 3", "killed by signal 9 (Killed)".
std::string describe_wait_status(int wait_status);

// A running child that is killed and reaped when the object goes away.
class ChildProcess {
  public:
    ChildProcess() = default;
    explicit ChildProcess(pid_t pid) : pid_(pid) {}
    ~ChildProcess();
    ChildProcess(ChildProcess&& other) noexcept;
    ChildProcess& operator=(ChildProcess&& other) noexcept;
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    pid_t pid() const { return pid_; }
    bool running() const { return pid_ > 0 && !status_; }

    // Reaps the child if it has ended; returns its wait status then.
    std::optional<int> poll();
    // Waits up to `timeout` for the child to end; returns its wait status then.
    std::optional<int> wait(std::chrono::milliseconds timeout);
    // Sends `signal`, then waits up to `timeout`; on timeout, SIGKILL and wait.
    // Returns the wait status (of the SIGKILL if it came to that) and whether the
    // child ended within the timeout.
    struct StopResult {
        int wait_status = 0;
        bool timed_out = false;
    };
    StopResult stop(int signal, std::chrono::milliseconds timeout);
    std::optional<int> wait_status() const { return status_; }

  private:
    void kill_and_reap() noexcept;
    pid_t pid_ = -1;
    std::optional<int> status_;
};

struct ProcessResult {
    int exit_code = -1;  // as exit_code_of()
    std::string out;
    std::string err;
    bool timed_out = false;
    // For assertion messages: exit code, stdout and stderr.
    std::string describe() const;
};

// Runs a program to completion: feeds `stdin_text`, collects stdout and stderr.
// After `timeout` the child is killed and `timed_out` is set.
ProcessResult run_process(const std::vector<std::string>& argv, const std::string& stdin_text,
                          const std::vector<std::string>& env,
                          std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace apikeyd::test
