#pragma once
// Starting and reaping child processes for the timing tools: posix_spawn, so
// that what is timed is the child's start, not a fork of a large parent.

#include <sys/types.h>

#include <string>
#include <vector>

namespace apikeyd::bench {

struct SpawnSpec {
    std::vector<std::string> argv;
    // NAME=VALUE entries that replace or extend this process's environment.
    std::vector<std::string> env;
    int stdout_fd = -1;  // -1: inherit
    int stderr_fd = -1;
};

// Throws std::runtime_error when the program cannot be started.
pid_t spawn(const SpawnSpec& spec);
// Blocks until `pid` ends; returns its wait status.
int wait_for(pid_t pid);
// "exited with status 3", "killed by signal 9".
std::string describe_wait_status(int status);

}  // namespace apikeyd::bench
