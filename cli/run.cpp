#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <memory>
#include <set>
#include <system_error>

#include "cli/args.hpp"
#include "cli/command.hpp"
#include "cli/conceal.hpp"
#include "cli/errors.hpp"
#include "cli/output.hpp"
#include "cli/secret.hpp"
#include "cli/terminal.hpp"
#include "common/unique_fd.hpp"
#include "dbus/client.hpp"

extern char** environ;

namespace apikeyd::cli {
namespace {

// As env(1) and shells say it: the command could not be found, or found but
// not run.
constexpr int kExitNotFound = 127;
constexpr int kExitCannotRun = 126;

struct RunArgs {
    std::vector<std::string> bindings;  // VAR=ID
    bool mask = false;
    std::vector<std::string> command;
};

struct Binding {
    std::string name;
    std::string id;
};

bool is_env_name(std::string_view name) {
    const auto word = [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
               (c >= '0' && c <= '9');
    };
    return !name.empty() && !(name.front() >= '0' && name.front() <= '9') &&
           std::all_of(name.begin(), name.end(), word);
}

// Nothing of a refused --env is repeated but a valid name: what was given
// may be a secret pasted where VAR=ID belongs.
std::vector<Binding> parse_bindings(const std::vector<std::string>& texts) {
    std::vector<Binding> bindings;
    std::set<std::string> names;
    for (const auto& text : texts) {
        const size_t equals = text.find('=');
        if (equals == std::string::npos || !is_env_name(text.substr(0, equals))) {
            throw UsageError(
                "--env takes VAR=ID, VAR being letters, digits and _ and not starting with a "
                "digit");
        }
        Binding binding{text.substr(0, equals), text.substr(equals + 1)};
        std::string id = binding.id;
        if (!key_id()(id).empty()) {
            throw UsageError("--env " + binding.name +
                             "=...: not a key id (k_ followed by 12 of a-z, 2-7)");
        }
        if (!names.insert(binding.name).second) {
            throw UsageError("--env " + binding.name + " is given twice");
        }
        bindings.push_back(std::move(binding));
    }
    return bindings;
}

// "VAR=secret" for each binding, as the child's environment will hold them.
// unique_ptr because a Secret does not move; its buffer is wiped when it goes.
using EnvEntries = std::vector<std::unique_ptr<SecretText>>;

EnvEntries fetch_secrets(const std::vector<Binding>& bindings) {
    auto daemon = client::Client::connect_system();
    EnvEntries entries;
    for (const auto& binding : bindings) {
        std::vector<uint8_t> secret = daemon.get_secret(binding.id);
        WipeOnExit wipe_secret(secret);
        if (std::find(secret.begin(), secret.end(), 0) != secret.end()) {
            throw UsageError("The secret " + binding.id +
                             " contains a NUL byte, which an environment variable cannot hold");
        }
        auto entry = std::make_unique<SecretText>();
        entry->append(binding.name);
        entry->append("=");
        entry->append({reinterpret_cast<const char*>(secret.data()), secret.size()});
        entries.push_back(std::move(entry));
    }
    return entries;
}

// apikeyctl's environment without the variables given with --env, then those.
std::vector<char*> child_environment(const std::vector<Binding>& bindings,
                                     const EnvEntries& entries) {
    std::vector<char*> envp;
    for (char** entry = environ; *entry != nullptr; ++entry) {
        const std::string_view text(*entry);
        const std::string_view name = text.substr(0, text.find('='));
        if (std::none_of(bindings.begin(), bindings.end(),
                         [name](const Binding& b) { return b.name == name; })) {
            envp.push_back(*entry);
        }
    }
    for (const auto& entry : entries) {
        envp.push_back(const_cast<char*>(entry->bytes().c_str()));
    }
    envp.push_back(nullptr);
    return envp;
}

std::vector<char*> child_arguments(const std::vector<std::string>& command) {
    std::vector<char*> argv;
    for (const auto& arg : command) {
        argv.push_back(const_cast<char*>(arg.c_str()));
    }
    argv.push_back(nullptr);
    return argv;
}

int report_exec_failure(const std::string& program, int error) {
    std::cerr << "apikeyctl: Cannot run '" << printable(program) << "': " << std::strerror(error)
              << "." << std::endl;
    return error == ENOENT ? kExitNotFound : kExitCannotRun;
}

struct Pipe {
    UniqueFd read;
    UniqueFd write;
};

Pipe make_pipe() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        throw std::system_error(errno, std::generic_category(), "Cannot create a pipe");
    }
    return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// The signals a person or a service manager sends to end the command. Those
// from the terminal (Ctrl-C, Ctrl-\) reach the whole process group, the
// command included, so apikeyctl ignores them and keeps filtering until the
// command has ended; the others are sent to apikeyctl alone and passed on.
constexpr int kTerminalSignals[] = {SIGINT, SIGQUIT};
constexpr int kForwardedSignals[] = {SIGTERM, SIGHUP};

volatile sig_atomic_t g_child = 0;

extern "C" void forward_signal(int sig) {
    if (g_child > 0) {
        kill(static_cast<pid_t>(g_child), sig);
    }
}

// Holds the command's output, secrets included, before they are concealed.
using OutputBuffer = WipedBuffer<16384>;

// Copies the command's stdout and stderr to ours through a Concealer each,
// until both are closed.
void filter_output(UniqueFd& out, UniqueFd& err, const std::vector<std::string_view>& secrets) {
    struct Stream {
        UniqueFd& from;
        int to;
        Concealer concealer;
    };
    Stream streams[] = {{out, STDOUT_FILENO, Concealer(secrets)},
                        {err, STDERR_FILENO, Concealer(secrets)}};
    OutputBuffer chunk;
    SecretText passed;
    // Our side of the output is gone (`| head`): stop reading it, so that the
    // command, as in any pipeline, gets SIGPIPE when it writes next.
    const auto pass_on = [&passed](Stream& stream) {
        try {
            write_all(stream.to, passed.view());
        } catch (const std::system_error&) {
            stream.from.reset();
        }
        passed.clear();
    };
    while (streams[0].from.get() >= 0 || streams[1].from.get() >= 0) {
        pollfd fds[2] = {{streams[0].from.get(), POLLIN, 0}, {streams[1].from.get(), POLLIN, 0}};
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw std::system_error(errno, std::generic_category(), "Cannot wait for the command");
        }
        for (size_t i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || fds[i].revents == 0) {
                continue;
            }
            const ssize_t n = ::read(fds[i].fd, chunk.data, sizeof chunk.data);
            if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
                continue;
            }
            if (n <= 0) {
                streams[i].concealer.finish(passed);
                pass_on(streams[i]);
                streams[i].from.reset();
                continue;
            }
            streams[i].concealer.feed({chunk.data, static_cast<size_t>(n)}, passed);
            pass_on(streams[i]);
        }
    }
}

int exit_status_of(int wait_status) {
    if (WIFSIGNALED(wait_status)) {
        return 128 + WTERMSIG(wait_status);
    }
    return WEXITSTATUS(wait_status);
}

int run_masked(char* const* argv, char* const* envp, const std::vector<std::string_view>& secrets) {
    Pipe out = make_pipe();
    Pipe err = make_pipe();
    Pipe report = make_pipe();  // the child's errno if exec fails; closed by exec

    // Blocked until the handlers know the child, so none is lost or sent nowhere.
    sigset_t stop_signals;
    sigset_t previous_mask;
    sigemptyset(&stop_signals);
    for (const int sig : kTerminalSignals) {
        sigaddset(&stop_signals, sig);
    }
    for (const int sig : kForwardedSignals) {
        sigaddset(&stop_signals, sig);
    }
    sigprocmask(SIG_BLOCK, &stop_signals, &previous_mask);

    const pid_t pid = fork();
    if (pid < 0) {
        sigprocmask(SIG_SETMASK, &previous_mask, nullptr);
        throw std::system_error(errno, std::generic_category(), "Cannot start the command");
    }
    if (pid == 0) {
        signal(SIGPIPE, SIG_DFL);
        sigprocmask(SIG_SETMASK, &previous_mask, nullptr);
        if (dup2(out.write.get(), STDOUT_FILENO) >= 0 &&
            dup2(err.write.get(), STDERR_FILENO) >= 0) {
            execvpe(argv[0], argv, envp);
        }
        const int error = errno;
        [[maybe_unused]] const ssize_t ignored = ::write(report.write.get(), &error, sizeof error);
        _exit(kExitNotFound);
    }

    g_child = pid;
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    for (const int sig : kTerminalSignals) {
        sigaction(sig, &ignore, nullptr);
    }
    struct sigaction forward {};
    forward.sa_handler = forward_signal;
    forward.sa_flags = SA_RESTART;
    sigemptyset(&forward.sa_mask);
    for (const int sig : kForwardedSignals) {
        sigaction(sig, &forward, nullptr);
    }
    // Writing to a reader that went away must be an error to handle, not death.
    sigaction(SIGPIPE, &ignore, nullptr);
    sigprocmask(SIG_SETMASK, &previous_mask, nullptr);

    out.write.reset();
    err.write.reset();
    report.write.reset();
    int exec_error = 0;
    ssize_t n;
    while ((n = ::read(report.read.get(), &exec_error, sizeof exec_error)) < 0 && errno == EINTR) {
    }
    int status = 0;
    if (n <= 0) {
        filter_output(out.read, err.read, secrets);
    }
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            throw std::system_error(errno, std::generic_category(), "Cannot wait for the command");
        }
    }
    g_child = 0;
    if (n > 0) {
        return report_exec_failure(argv[0], exec_error);
    }
    return exit_status_of(status);
}

int run_run(const RunArgs& args) {
    const std::vector<Binding> bindings = parse_bindings(args.bindings);
    const EnvEntries entries = fetch_secrets(bindings);
    const std::vector<char*> envp = child_environment(bindings, entries);
    const std::vector<char*> argv = child_arguments(args.command);
    if (!args.mask) {
        // The secrets go with the environment into the command, which
        // replaces this process and its memory.
        execvpe(argv[0], argv.data(), envp.data());
        return report_exec_failure(args.command.front(), errno);
    }
    SecretForms forms;
    for (const auto& entry : entries) {
        const std::string_view text = entry->view();
        forms.add(text.substr(text.find('=') + 1));
    }
    return run_masked(argv.data(), envp.data(), forms.views());
}

}  // namespace

Runner setup_run(CLI::App& command) {
    auto args = std::make_shared<RunArgs>();
    command
        .add_option("-e,--env", args->bindings,
                    "Put the imported secret ID into the environment variable VAR; repeatable")
        ->required()
        ->allow_extra_args(false)
        ->type_name("VAR=ID");
    command.add_flag("--mask", args->mask,
                     "Replace the secrets, also in hex or Base64, with <concealed> wherever the "
                     "command prints them");
    command
        .add_option("COMMAND", args->command,
                    "The command to run and its arguments, after -- so that its options are not "
                    "taken for run's")
        ->required();
    command.footer(
        "The secrets go into the command's environment only, never onto its command line.\n"
        "Without --mask the command replaces apikeyctl. With --mask its output passes\n"
        "through apikeyctl (a pipe, not the terminal) and apikeyctl exits with its exit\n"
        "status (128+N when signal N ended it); output that may be the start of a secret\n"
        "waits until what follows shows it is not. Exit status 127: the command was not\n"
        "found; 126: it could not be run.\n\n" +
        command.get_footer());
    return [args] { return run_run(*args); };
}

}  // namespace apikeyd::cli
