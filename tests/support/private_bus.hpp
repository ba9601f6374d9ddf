#pragma once
// A private system-type dbus-daemon for one test, configured like Debian's
// system bus (deny by default, holes punched by policy files) with the
// project's own dbus/org.apikeyd1.conf, so the tests exercise the real policy.

#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

namespace apikeyd::test {

// The project's policy file, dbus/org.apikeyd1.conf in the source tree.
std::filesystem::path project_policy_file();

class PrivateBus {
  public:
    // Starts dbus-daemon with copies of `policy_files` in its system.d.
    // Throws std::runtime_error (with dbus-daemon's stderr) if it does not come up.
    explicit PrivateBus(const std::vector<std::filesystem::path>& policy_files = {
                            project_policy_file()});
    ~PrivateBus();
    PrivateBus(const PrivateBus&) = delete;
    PrivateBus& operator=(const PrivateBus&) = delete;

    // As printed by dbus-daemon: "unix:path=.../bus_socket,guid=...".
    const std::string& address() const { return address_; }
    const std::filesystem::path& dir() const { return dir_.path(); }
    pid_t pid() const { return process_.pid(); }
    // SIGKILL, as a crash of the bus would end it: every connection drops.
    void kill9();
    // dbus-daemon's stderr (policy warnings and the like).
    std::string log() const;

  private:
    TempDir dir_{"apikeyd-bus"};
    ChildProcess process_;
    UniqueFd address_pipe_;
    std::string address_;
};

}  // namespace apikeyd::test
