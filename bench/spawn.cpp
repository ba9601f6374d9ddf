#include "bench/spawn.hpp"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

extern char** environ;

namespace apikeyd::bench {
namespace {

std::string name_of(const std::string& assignment) {
    return assignment.substr(0, assignment.find('='));
}

std::vector<std::string> merged_environment(const std::vector<std::string>& overrides) {
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) {
        const std::string entry(*e);
        bool replaced = false;
        for (const auto& o : overrides) {
            replaced = replaced || name_of(o) == name_of(entry);
        }
        if (!replaced) {
            env.push_back(entry);
        }
    }
    env.insert(env.end(), overrides.begin(), overrides.end());
    return env;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
    std::vector<char*> out;
    for (auto& s : strings) {
        out.push_back(s.data());
    }
    out.push_back(nullptr);
    return out;
}

// Owns the file actions so that every way out of spawn() destroys them.
class FileActions {
  public:
    FileActions() { posix_spawn_file_actions_init(&actions_); }
    ~FileActions() { posix_spawn_file_actions_destroy(&actions_); }
    FileActions(const FileActions&) = delete;
    FileActions& operator=(const FileActions&) = delete;
    void redirect(int from, int to) {
        if (from >= 0) {
            posix_spawn_file_actions_adddup2(&actions_, from, to);
        }
    }
    posix_spawn_file_actions_t* get() { return &actions_; }

  private:
    posix_spawn_file_actions_t actions_;
};

}  // namespace

pid_t spawn(const SpawnSpec& spec) {
    std::vector<std::string> argv = spec.argv;
    std::vector<std::string> env = merged_environment(spec.env);
    auto argv_ptrs = pointers(argv);
    auto env_ptrs = pointers(env);
    FileActions actions;
    actions.redirect(spec.stdout_fd, STDOUT_FILENO);
    actions.redirect(spec.stderr_fd, STDERR_FILENO);
    pid_t pid = 0;
    const int r =
        posix_spawnp(&pid, argv_ptrs[0], actions.get(), nullptr, argv_ptrs.data(), env_ptrs.data());
    if (r != 0) {
        throw std::runtime_error("cannot start " + spec.argv.at(0) + ": " + std::strerror(r));
    }
    return pid;
}

int wait_for(pid_t pid) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            throw std::runtime_error(std::string("waitpid: ") + std::strerror(errno));
        }
    }
    return status;
}

std::string describe_wait_status(int status) {
    if (WIFEXITED(status)) {
        return "exited with status " + std::to_string(WEXITSTATUS(status));
    }
    if (WIFSIGNALED(status)) {
        return "killed by signal " + std::to_string(WTERMSIG(status));
    }
    return "ended with wait status " + std::to_string(status);
}

}  // namespace apikeyd::bench
