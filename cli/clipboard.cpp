#include "cli/clipboard.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <sstream>
#include <system_error>
#include <vector>

#include "cli/output.hpp"
#include "cli/secret.hpp"
#include "cli/terminal.hpp"
#include "common/encoding.hpp"
#include "common/unique_fd.hpp"

extern char** environ;

namespace apikeyd::cli {
namespace {

constexpr unsigned kClearAfterSeconds = 45;
// Far longer than any key text: a clipboard holding more is not the key.
constexpr size_t kMaxPaste = 4096;

struct Tool {
    std::string name;
    std::vector<std::string> copy;   // the text on its stdin
    std::vector<std::string> paste;  // the clipboard on its stdout; empty: cannot read it back
    std::vector<std::string> clear;  // /dev/null on its stdin
};

std::optional<std::string> find_program(std::string_view name) {
    const char* path = std::getenv("PATH");
    std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
        // An empty entry would mean the working directory: a clipboard tool
        // dropped there by someone else must not get the key.
        if (dir.empty() || dir.front() != '/') {
            continue;
        }
        const std::string candidate = dir + "/" + std::string(name);
        if (access(candidate.c_str(), X_OK) == 0) {
            return candidate;
        }
    }
    return std::nullopt;
}

bool has_env(const char* name) {
    const char* value = std::getenv(name);
    return value != nullptr && *value != '\0';
}

std::optional<Tool> choose_tool() {
    if (has_env("WAYLAND_DISPLAY")) {
        if (const auto copy = find_program("wl-copy")) {
            Tool tool{"wl-copy", {*copy}, {}, {*copy, "--clear"}};
            if (const auto paste = find_program("wl-paste")) {
                tool.paste = {*paste, "--no-newline"};
            }
            return tool;
        }
    }
    if (has_env("DISPLAY")) {
        if (const auto xclip = find_program("xclip")) {
            return Tool{"xclip",
                        {*xclip, "-selection", "clipboard", "-in"},
                        {*xclip, "-selection", "clipboard", "-out"},
                        {*xclip, "-selection", "clipboard", "-in"}};
        }
        if (const auto xsel = find_program("xsel")) {
            return Tool{"xsel",
                        {*xsel, "--clipboard", "--input"},
                        {*xsel, "--clipboard", "--output"},
                        {*xsel, "--clipboard", "--clear"}};
        }
    }
    return std::nullopt;
}

// Runs `argv` with `input` on its stdin, or, when `output` is given, with
// /dev/null on its stdin and its stdout read into `output`. Everything else
// goes to /dev/null: the X11 and Wayland tools stay behind to serve the
// clipboard and would otherwise keep our stdout and stderr open. Returns its
// wait status, or -1 when it could not be started.
int run_tool(const std::vector<std::string>& argv, std::string_view input, SecretText* output) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        return -1;
    }
    UniqueFd read_end(fds[0]);
    UniqueFd write_end(fds[1]);
    UniqueFd dev_null(::open("/dev/null", O_RDWR | O_CLOEXEC));
    if (dev_null.get() < 0) {
        return -1;
    }
    std::vector<char*> args;
    for (const auto& arg : argv) {
        args.push_back(const_cast<char*>(arg.c_str()));
    }
    args.push_back(nullptr);
    const int child_stdin = output != nullptr ? dev_null.get() : read_end.get();
    const int child_stdout = output != nullptr ? write_end.get() : dev_null.get();

    const pid_t pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        // apikeyctl ignores SIGPIPE while it feeds the tool; the tool must not.
        signal(SIGPIPE, SIG_DFL);
        if (dup2(child_stdin, STDIN_FILENO) < 0 || dup2(child_stdout, STDOUT_FILENO) < 0 ||
            dup2(dev_null.get(), STDERR_FILENO) < 0) {
            _exit(127);
        }
        execve(args[0], args.data(), environ);
        _exit(127);
    }
    if (output != nullptr) {
        write_end.reset();
        char chunk[512];
        ssize_t n;
        while ((n = ::read(read_end.get(), chunk, sizeof chunk)) != 0) {
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0 || output->size() + static_cast<size_t>(n) > kMaxPaste) {
                break;
            }
            output->append({chunk, static_cast<size_t>(n)});
        }
        wipe(chunk, sizeof chunk);
    } else {
        read_end.reset();
        try {
            write_all(write_end.get(), input);
        } catch (const std::system_error&) {
            // The tool went away without reading it all; its status says why.
        }
    }
    read_end.reset();
    write_end.reset();
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            return -1;
        }
    }
    return status;
}

bool succeeded(int status) {
    return status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

constexpr std::string_view kOsc52Clear = "\x1b]52;c;\a";

// Runs in the detached process: the clipboard is cleared only if it still
// holds the key, so that whatever the person copied since is left alone.
void clear_if_unchanged(const std::optional<Tool>& tool, int tty, const std::string& key) {
    if (!tool) {
        // An empty payload: the terminal cannot be asked what it holds.
        [[maybe_unused]] const ssize_t ignored =
            ::write(tty, kOsc52Clear.data(), kOsc52Clear.size());
        return;
    }
    if (!tool->paste.empty()) {
        SecretText current;
        if (!succeeded(run_tool(tool->paste, {}, &current)) || current.view() != key) {
            return;
        }
    }
    run_tool(tool->clear, {}, nullptr);
}

// Forks twice so that the clearing process is nobody's child here and
// survives apikeyctl, in a session of its own so that the terminal's Ctrl-C or
// hang-up does not end it early.
void schedule_clear(const std::optional<Tool>& tool, int tty, const std::string& key) {
    const pid_t pid = fork();
    if (pid < 0) {
        throw std::system_error(errno, std::generic_category(),
                                "Cannot start the clearing process");
    }
    if (pid == 0) {
        if (setsid() < 0 || fork() != 0) {
            _exit(0);
        }
        // It holds the key for a while: no core dump, no ptrace by the user's
        // other processes.
        prctl(PR_SET_DUMPABLE, 0);
        // Nothing of apikeyctl's is kept open for 45 seconds (its bus
        // connection, the pipes of whoever reads its output) but the terminal.
        const int dev_null = ::open("/dev/null", O_RDWR);
        if (dev_null >= 0) {
            dup2(dev_null, STDIN_FILENO);
            dup2(dev_null, STDOUT_FILENO);
            dup2(dev_null, STDERR_FILENO);
        }
        constexpr int kTtyFd = 3;
        if (tty >= 0 && tty != kTtyFd) {
            dup2(tty, kTtyFd);
        }
        close_range(tty >= 0 ? kTtyFd + 1 : kTtyFd, ~0U, 0);
        tty = tty >= 0 ? kTtyFd : -1;
        timespec left{kClearAfterSeconds, 0};
        while (nanosleep(&left, &left) != 0 && errno == EINTR) {
        }
        clear_if_unchanged(tool, tty, key);
        // This process's copy of the caller's buffer: it ends with _exit,
        // which runs no destructor that would wipe it.
        wipe(const_cast<char*>(key.data()), key.size());
        _exit(0);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
}

std::string clear_time_text() {
    return absolute_time(now_usec() + uint64_t{kClearAfterSeconds} * 1'000'000) + ", in " +
           std::to_string(kClearAfterSeconds) + " seconds";
}

void copy(const std::string& key) {
    const std::optional<Tool> tool = choose_tool();
    if (tool) {
        const int status = run_tool(tool->copy, key, nullptr);
        if (!succeeded(status)) {
            std::cerr << "apikeyctl: Could not copy the key to the clipboard: " << tool->name
                      << (status < 0 ? " could not be started" : " failed") << "." << std::endl;
            return;
        }
        schedule_clear(tool, -1, key);
        std::cerr << "Copied the key to the clipboard with " << tool->name
                  << "; it will be cleared at " << clear_time_text() << "." << std::endl;
        return;
    }
    UniqueFd tty(::open("/dev/tty", O_WRONLY | O_NOCTTY | O_CLOEXEC));
    if (tty.get() < 0) {
        std::cerr << "apikeyctl: Could not copy the key: no wl-copy (Wayland), xclip or xsel (X11) "
                     "for this session, and no terminal for OSC 52."
                  << std::endl;
        return;
    }
    SecretText sequence;
    sequence.append("\x1b]52;c;");
    encoding::append_base64(sequence, key);
    sequence.append("\a");
    write_all(tty.get(), sequence.view());
    schedule_clear(std::nullopt, tty.get(), key);
    std::cerr << "Sent the key to the terminal's clipboard (OSC 52, if the terminal allows it); "
                 "it will be cleared at "
              << clear_time_text() << "." << std::endl;
}

}  // namespace

void copy_to_clipboard(const std::string& key) {
    // A tool that exits before reading the key must not take apikeyctl with it.
    struct sigaction ignore {};
    struct sigaction previous {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    sigaction(SIGPIPE, &ignore, &previous);
    try {
        copy(key);
    } catch (const std::system_error& e) {
        std::cerr << "apikeyctl: Could not copy the key: " << e.what() << "." << std::endl;
    }
    sigaction(SIGPIPE, &previous, nullptr);
}

}  // namespace apikeyd::cli
