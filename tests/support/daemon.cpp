#include "tests/support/daemon.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "common/bus_names.hpp"
#include "tests/support/bus_connection.hpp"
#include "tests/support/timing.hpp"

namespace apikeyd::test {
namespace {

using bus_names::kBusName;

UniqueFd bind_notify_socket(const std::filesystem::path& path) {
    UniqueFd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (!fd || path.string().size() >= sizeof address.sun_path) {
        throw std::runtime_error("cannot create notify socket " + path.string());
    }
    std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
    if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        throw std::runtime_error("bind " + path.string() + ": " + std::strerror(errno));
    }
    return fd;
}

}  // namespace

Daemon::Daemon(const PrivateBus& bus, DaemonOptions options)
    : bus_(bus),
      options_(std::move(options)),
      state_dir_(dir_ / "state"),
      log_path_(dir_ / "apikeyd.stderr") {
    std::filesystem::create_directory(state_dir_);
    chmod(state_dir_.c_str(), 0700);
    notify_socket_ = bind_notify_socket(dir_ / "notify");
    start();
}

Daemon::~Daemon() {
    if (process_.running()) {
        process_.stop(SIGTERM, scaled(std::chrono::seconds(10)));
    }
}

void Daemon::start() {
    if (process_.running()) {
        throw std::logic_error("Daemon::start while it runs");
    }
    std::vector<std::string> argv = {APIKEYD_BINARY, "--state-directory=" + state_dir_.string()};
    if (options_.software_keyslot && !started_before_) {
        argv.push_back("--insecure-software-keyslot");
    }
    if (!started_before_) {
        argv.insert(argv.end(), options_.first_start_args.begin(), options_.first_start_args.end());
    }
    argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
    auto env = base_environment();
    env.push_back("DBUS_SYSTEM_BUS_ADDRESS=" + bus_.address());
    env.push_back("NOTIFY_SOCKET=" + (dir_ / "notify").string());
    env.insert(env.end(), options_.environment.begin(), options_.environment.end());

    UniqueFd log(open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (!log) {
        throw std::runtime_error("cannot open " + log_path_.string());
    }
    process_ = ChildProcess(spawn(SpawnOptions{argv, env, -1, -1, log.get()}));
    started_before_ = true;

    auto bus = BusConnection::connect(bus_.address());
    std::optional<int> exited;
    const bool ready = eventually(
        [&] {
            exited = process_.poll();
            return exited || bus.name_owner_pid(kBusName) == process_.pid();
        },
        scaled(std::chrono::seconds(10)));
    if (exited) {
        throw std::runtime_error("apikeyd " + describe_wait_status(*exited) + " before it owned " +
                                 kBusName + "; its log:\n" + this->log());
    }
    if (!ready) {
        process_.stop(SIGKILL, std::chrono::seconds(5));
        throw std::runtime_error(std::string("apikeyd did not own ") + kBusName +
                                 " within the time bound; its log:\n" + this->log());
    }
}

int Daemon::stop() {
    const auto result = process_.stop(SIGTERM, scaled(std::chrono::seconds(10)));
    wait_until_gone_from_bus();
    return exit_code_of(result.wait_status);
}

void Daemon::kill9() {
    process_.stop(SIGKILL, std::chrono::seconds(10));
    wait_until_gone_from_bus();
}

void Daemon::wait_until_gone_from_bus() {
    // The bus drops the name when it sees the connection close; wait for that
    // so that a restart cannot race the old owner.
    auto bus = BusConnection::connect(bus_.address());
    if (!eventually([&] { return !bus.name_has_owner(kBusName); },
                    scaled(std::chrono::seconds(10)))) {
        throw std::runtime_error("org.apikeyd1 still owned after apikeyd ended");
    }
}

std::optional<int> Daemon::wait_for_exit(std::chrono::milliseconds timeout) {
    const auto status = process_.wait(timeout);
    if (!status) {
        return std::nullopt;
    }
    return exit_code_of(*status);
}

std::string Daemon::log() const {
    return read_file(log_path_);
}

std::vector<std::string> Daemon::notifications() {
    char buffer[4096];
    for (;;) {
        const ssize_t n = recv(notify_socket_.get(), buffer, sizeof buffer, 0);
        if (n < 0) {
            break;
        }
        // One datagram may carry several newline-separated assignments.
        std::string datagram(buffer, static_cast<size_t>(n));
        size_t start = 0;
        while (start < datagram.size()) {
            const size_t end = datagram.find('\n', start);
            const auto line = datagram.substr(start, end == std::string::npos ? end : end - start);
            if (!line.empty()) {
                notifications_.push_back(line);
            }
            if (end == std::string::npos) {
                break;
            }
            start = end + 1;
        }
    }
    return notifications_;
}

}  // namespace apikeyd::test
