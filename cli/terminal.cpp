#include "cli/terminal.hpp"

#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <system_error>

#include "cli/errors.hpp"

namespace apikeyd::cli {
namespace {

using InputBuffer = WipedBuffer<4096>;

// Returns 0 at end of file.
size_t read_some(int fd, InputBuffer& chunk, std::string_view what) {
    for (;;) {
        const ssize_t n = ::read(fd, chunk.data, sizeof chunk.data);
        if (n >= 0) {
            return static_cast<size_t>(n);
        }
        if (errno != EINTR) {
            throw UsageError("Cannot read " + std::string(what) + ": " + std::strerror(errno));
        }
    }
}

[[noreturn]] void too_long(std::string_view what, size_t max) {
    throw UsageError("The " + std::string(what) + " is longer than " + std::to_string(max) +
                     " bytes");
}

// The terminal state to put back, reachable from a signal handler.
termios g_saved_termios;
constexpr int kFatalSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

extern "C" void restore_echo_and_die(int sig) {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &g_saved_termios);
    [[maybe_unused]] const ssize_t ignored = write(STDERR_FILENO, "\n", 1);
    // SA_RESETHAND made the default action current again; the signal is
    // blocked until this handler returns, and then it ends the process.
    raise(sig);
}

// Echo off for the lifetime of the object. Without the signal handlers, a
// Ctrl-C at the prompt would leave the user's shell with no echo.
class EchoOff {
  public:
    EchoOff() {
        if (tcgetattr(STDIN_FILENO, &g_saved_termios) != 0) {
            throw UsageError(std::string("Cannot set up the terminal: ") + std::strerror(errno));
        }
        struct sigaction action {};
        action.sa_handler = restore_echo_and_die;
        action.sa_flags = SA_RESETHAND;
        sigemptyset(&action.sa_mask);
        for (size_t i = 0; i < std::size(kFatalSignals); ++i) {
            sigaction(kFatalSignals[i], &action, &old_actions_[i]);
        }
        termios quiet = g_saved_termios;
        quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO | ECHOE | ECHOK | ECHONL);
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }

    ~EchoOff() {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &g_saved_termios);
        for (size_t i = 0; i < std::size(kFatalSignals); ++i) {
            sigaction(kFatalSignals[i], &old_actions_[i], nullptr);
        }
        // The Enter that ended the input was not echoed either.
        std::cerr << std::endl;
    }

    EchoOff(const EchoOff&) = delete;
    EchoOff& operator=(const EchoOff&) = delete;

  private:
    struct sigaction old_actions_[std::size(kFatalSignals)]{};
};

}  // namespace

bool is_tty(int fd) {
    return isatty(fd) == 1;
}

void read_first_line(int fd, SecretText& out, size_t max, std::string_view what) {
    InputBuffer chunk;
    for (;;) {
        const size_t n = read_some(fd, chunk, what);
        if (n == 0) {
            break;
        }
        std::string_view data(chunk.data, n);
        const size_t newline = data.find('\n');
        const bool complete = newline != std::string_view::npos;
        if (complete) {
            data = data.substr(0, newline);
        }
        if (out.size() + data.size() > max) {
            too_long(what, max);
        }
        out.append(data);
        if (complete) {
            break;
        }
    }
    if (out.ends_with('\r')) {
        out.pop_back();
    }
}

template <typename Bytes>
void read_all(int fd, Secret<Bytes>& out, size_t max, std::string_view what) {
    InputBuffer chunk;
    while (const size_t n = read_some(fd, chunk, what)) {
        if (out.size() + n > max) {
            too_long(what, max);
        }
        out.append({chunk.data, n});
    }
}

template <typename Bytes>
void prompt_hidden(std::string_view prompt, Secret<Bytes>& out, size_t max, std::string_view what) {
    EchoOff echo_off;
    std::cerr << prompt << std::flush;
    SecretText line;
    read_first_line(STDIN_FILENO, line, max, what);
    out.append(line.view());
}

template void read_all(int, SecretText&, size_t, std::string_view);
template void read_all(int, SecretBytes&, size_t, std::string_view);
template void prompt_hidden(std::string_view, SecretText&, size_t, std::string_view);
template void prompt_hidden(std::string_view, SecretBytes&, size_t, std::string_view);

void read_secret_line(std::string_view prompt, SecretText& out, size_t max, std::string_view what) {
    if (is_tty(STDIN_FILENO)) {
        prompt_hidden(prompt, out, max, what);
    } else {
        read_first_line(STDIN_FILENO, out, max, std::string(what) + " on standard input");
    }
}

bool ask(std::string_view question, std::string& answer) {
    std::cerr << question << std::flush;
    if (!std::getline(std::cin, answer)) {
        std::cerr << std::endl;
        return false;
    }
    const auto blank = [](unsigned char c) { return std::isspace(c) != 0; };
    answer.erase(answer.begin(), std::find_if_not(answer.begin(), answer.end(), blank));
    answer.erase(std::find_if_not(answer.rbegin(), answer.rend(), blank).base(), answer.end());
    return true;
}

bool confirm(std::string_view question) {
    std::string answer;
    if (!ask(std::string(question) + " [y/N] ", answer)) {
        return false;
    }
    std::transform(answer.begin(), answer.end(), answer.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return answer == "y" || answer == "yes";
}

void write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw std::system_error(errno, std::generic_category(), "Cannot write the output");
        }
        data.remove_prefix(static_cast<size_t>(n));
    }
}

}  // namespace apikeyd::cli
