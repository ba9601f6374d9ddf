#pragma once
// A child on a pseudo-terminal, for commands that behave differently on a
// terminal (prompts, confirmations, writing to /dev/tty): everything it
// writes is collected, and answers are typed in as a person would.

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/process.hpp"

namespace apikeyd::test {

class PtyProcess {
  public:
    // Starts argv (argv[0] a path) with `env` as its whole environment, with
    // a new pty as its controlling terminal and its stdin, stdout and stderr.
    PtyProcess(const std::vector<std::string>& argv, const std::vector<std::string>& env);
    PtyProcess(const PtyProcess&) = delete;
    PtyProcess& operator=(const PtyProcess&) = delete;

    // Reads until `text` appears after the end of the previous match; false
    // on timeout or when the terminal closed first.
    bool wait_for(std::string_view text, std::chrono::milliseconds timeout);
    // Types `text` (add "\n" for Enter).
    void type(std::string_view text);
    // Reads until the child has ended and returns its exit code (as
    // exit_code_of()), or -1 after `timeout` (the child is then killed).
    int wait_exit(std::chrono::milliseconds timeout);

    // Everything read so far, with the terminal's echo of what was typed.
    const std::string& output() const { return output_; }
    // The terminal's device, e.g. /dev/pts/3.
    const std::string& tty_path() const { return tty_path_; }

  private:
    // Reads what is there within `timeout`; false once the terminal closed.
    bool read_some(std::chrono::milliseconds timeout);

    UniqueFd master_;
    ChildProcess child_;
    std::string tty_path_;
    std::string output_;
    size_t matched_ = 0;
};

}  // namespace apikeyd::test
