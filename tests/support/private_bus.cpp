#include "tests/support/private_bus.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>

#include "tests/support/timing.hpp"

namespace apikeyd::test {
namespace {

// Debian's /usr/share/dbus-1/system.conf without the parts a test bus cannot
// or must not have (user switch, fork, activation helper, pid file, syslog,
// host include dirs).
std::string bus_config(const std::filesystem::path& dir) {
    return R"(<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=)" +
           (dir / "bus_socket").string() + R"(</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus"
          send_interface="org.freedesktop.DBus"
          send_member="UpdateActivationEnvironment"/>
    <deny send_destination="org.freedesktop.DBus"
          send_interface="org.freedesktop.DBus.Debug.Stats"/>
  </policy>
  <policy user="root">
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Monitoring"/>
  </policy>
  <includedir>)" +
           (dir / "system.d").string() + R"(</includedir>
</busconfig>
)";
}

}  // namespace

std::filesystem::path project_policy_file() {
    return std::filesystem::path(APIKEYD_SOURCE_DIR) / "dbus" / "org.apikeyd1.conf";
}

PrivateBus::PrivateBus(const std::vector<std::filesystem::path>& policy_files) {
    const auto policy_dir = dir() / "system.d";
    std::filesystem::create_directory(policy_dir);
    for (const auto& file : policy_files) {
        if (!std::filesystem::is_regular_file(file)) {
            throw std::runtime_error("bus policy file missing: " + file.string());
        }
        std::filesystem::copy_file(file, policy_dir / file.filename());
    }
    const auto config = dir() / "bus.conf";
    write_file(config, bus_config(dir()));

    const auto log_path = dir() / "dbus-daemon.log";
    UniqueFd log(open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!log) {
        throw std::runtime_error("cannot create " + log_path.string());
    }
    Pipe address = make_pipe();
    process_ = ChildProcess(spawn(SpawnOptions{
        {"dbus-daemon", "--config-file=" + config.string(), "--nofork", "--print-address=1"},
        base_environment(),
        -1,
        address.write.get(),
        log.get()}));
    address.write.reset();
    address_pipe_ = std::move(address.read);

    // dbus-daemon prints the address once it listens.
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + scaled(std::chrono::seconds(10));
    while (line.find('\n') == std::string::npos) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        pollfd pfd{address_pipe_.get(), POLLIN, 0};
        const int ready = left.count() > 0 ? ::poll(&pfd, 1, static_cast<int>(left.count())) : 0;
        if (ready < 0 && errno == EINTR) {
            continue;
        }
        char buffer[512];
        const ssize_t n = ready > 0 ? read(address_pipe_.get(), buffer, sizeof buffer) : 0;
        if (n <= 0) {
            process_.stop(SIGKILL, std::chrono::seconds(5));
            throw std::runtime_error("dbus-daemon did not print its address (" +
                                     std::string(ready == 0 ? "timeout" : "it exited") +
                                     "); its stderr:\n" + this->log());
        }
        line.append(buffer, static_cast<size_t>(n));
    }
    address_ = line.substr(0, line.find('\n'));
}

PrivateBus::~PrivateBus() {
    if (process_.running()) {
        process_.stop(SIGTERM, std::chrono::seconds(5));
    }
}

void PrivateBus::kill9() {
    process_.stop(SIGKILL, std::chrono::seconds(5));
}

std::string PrivateBus::log() const {
    return read_file(dir() / "dbus-daemon.log");
}

}  // namespace apikeyd::test
